//! OTLP/HTTP ingestion: `/otlp/v1/{traces,metrics,logs}` under the API base
//! path and the same handlers at `/v1/…` and `/api/v1/v1/…` (so
//! `OTEL_EXPORTER_OTLP_ENDPOINT` can be the host or the API's base URL),
//! and the API's base URL itself (`POST /api/v1`, where an exporter given
//! that URL as its signal endpoint posts verbatim), whose signal is read
//! off the body ([`sniff`]).
//!
//! Bodies are `application/x-protobuf` or `application/json`, each with or
//! without `Content-Encoding: gzip`. The answer uses the request's content
//! type: the OTLP `Export*ServiceResponse` (with `partial_success` when
//! records were rejected); in JSON also AgentVista's counts. Errors to a
//! protobuf request are a `google.rpc.Status` message.

pub mod attrs;
pub mod json;
pub mod json_metrics;
pub mod json_stream;
pub mod json_values;
pub mod logs;
pub mod metrics;
pub mod traces;

use agentvista_shared::error::{ApiError, ErrorKind};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn from_path(path: &str) -> Option<Signal> {
        let rest = path
            .strip_prefix("/api/v1/otlp/v1/")
            .or_else(|| path.strip_prefix("/api/v1/v1/"))
            .or_else(|| path.strip_prefix("/v1/"))?;
        match rest.trim_end_matches('/') {
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            "logs" => Some(Signal::Logs),
            _ => None,
        }
    }

    /// Whether `path` is the API's base URL, where any signal may be
    /// posted (its kind is read off the body).
    pub fn is_base_path(path: &str) -> bool {
        matches!(path, "/api/v1" | "/api/v1/")
    }

    fn root_field(self) -> &'static str {
        match self {
            Signal::Traces => "resourceSpans",
            Signal::Metrics => "resourceMetrics",
            Signal::Logs => "resourceLogs",
        }
    }
}

/// The media type of `Content-Type`, lowercased, without parameters
/// (empty when absent).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The request's encoding from `Content-Type`; 415 for anything else.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    match media_type(headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "Unsupported Content-Type; OTLP/HTTP takes application/x-protobuf or application/json.",
        )),
    }
}

/// Decode a body of `signal` in `enc`.
pub fn decode<T: Message + Default + DeserializeOwned>(
    signal: Signal,
    enc: Encoding,
    body: &[u8],
) -> Result<T, ApiError> {
    match enc {
        Encoding::Protobuf => T::decode(body)
            .map_err(|e| ApiError::bad_request(format!("Malformed OTLP protobuf body: {e}"))),
        Encoding::Json => {
            let mut v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("Malformed JSON body: {e}")))?;
            let field = signal.root_field();
            match v.get(field) {
                Some(Value::Array(_)) => {}
                Some(_) => return Err(ApiError::invalid_field(field, "must be an array")),
                None => return Err(ApiError::invalid_field(field, "is required")),
            }
            match signal {
                Signal::Traces => json::normalize_traces(&mut v),
                Signal::Metrics => json::normalize_metrics(&mut v),
                Signal::Logs => json::normalize_logs(&mut v),
            }
            serde_path_to_error::deserialize(v).map_err(|e| {
                ApiError::bad_request(format!("Invalid OTLP JSON at {}: {}", e.path(), e.inner()))
            })
        }
    }
}

/// Decode a traces export: protobuf, or OTLP/JSON streamed into the
/// request ([`json_stream`], no `serde_json::Value` tree) with the errors
/// of [`decode`].
pub fn decode_traces(enc: Encoding, body: &[u8]) -> Result<TracesRequest, ApiError> {
    match enc {
        Encoding::Protobuf => decode(Signal::Traces, enc, body),
        Encoding::Json => decode_streamed::<json_stream::JResourceSpans, _>(Signal::Traces, body),
    }
}

/// [`decode_traces`] for metrics ([`json_metrics`]).
pub fn decode_metrics(enc: Encoding, body: &[u8]) -> Result<MetricsRequest, ApiError> {
    match enc {
        Encoding::Protobuf => decode(Signal::Metrics, enc, body),
        Encoding::Json => {
            decode_streamed::<json_metrics::JResourceMetrics, _>(Signal::Metrics, body)
        }
    }
}

/// [`decode_traces`] for logs.
pub fn decode_logs(enc: Encoding, body: &[u8]) -> Result<LogsRequest, ApiError> {
    match enc {
        Encoding::Protobuf => decode(Signal::Logs, enc, body),
        Encoding::Json => decode_streamed::<json_stream::JResourceLogs, _>(Signal::Logs, body),
    }
}

pub(crate) fn decode_streamed<J, R>(signal: Signal, body: &[u8]) -> Result<R, ApiError>
where
    J: DeserializeOwned + json_stream::RootField,
    R: From<json_stream::Root<J>>,
{
    // Without path tracking first: it captures every key as a `String`, a
    // tenth of the JSON path's CPU. Only a refused body is parsed again
    // with it (the same input fails the same way), for the error that
    // names where.
    let mut de = serde_json::Deserializer::from_slice(body);
    if let Ok(r) = <json_stream::Root<J> as serde::Deserialize>::deserialize(&mut de) {
        return match de.end() {
            Ok(()) => Ok(r.into()),
            Err(e) => Err(ApiError::bad_request(format!("Malformed JSON body: {e}"))),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Result<json_stream::Root<J>, _> = serde_path_to_error::deserialize(&mut de);
    match parsed {
        // Trailing characters after the object.
        Ok(r) => match de.end() {
            Ok(()) => Ok(r.into()),
            Err(e) => Err(ApiError::bad_request(format!("Malformed JSON body: {e}"))),
        },
        Err(e) => {
            let inner = e.inner();
            let field = signal.root_field();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError::bad_request(format!(
                    "Malformed JSON body: {inner}"
                )))
            } else if inner.to_string().starts_with(json_stream::MISSING) {
                Err(ApiError::invalid_field(field, "is required"))
            } else if inner.to_string().starts_with(json_stream::NOT_AN_ARRAY) {
                Err(ApiError::invalid_field(field, "must be an array"))
            } else {
                Err(ApiError::bad_request(format!(
                    "Invalid OTLP JSON at {}: {}",
                    e.path(),
                    inner
                )))
            }
        }
    }
}

/// The signal of an export posted to the base URL, read off its body: in
/// JSON, its root field (`resourceSpans`, `resourceMetrics` or
/// `resourceLogs`); in protobuf, the first of the three request types the
/// body decodes as with a plausible content (spans with 16-byte trace and
/// 8-byte span ids; metrics that carry data; log records). The three
/// messages share field numbers, so a body may decode as more than one;
/// the checks tell them apart. A body that is none of them is taken for
/// traces, whose decoding then answers it (an empty export is accepted,
/// a malformed one gets the usual 400).
pub fn sniff(enc: Encoding, body: &[u8]) -> Signal {
    match enc {
        Encoding::Json => {
            #[derive(serde::Deserialize)]
            struct Roots {
                #[serde(rename = "resourceSpans")]
                spans: Option<serde::de::IgnoredAny>,
                #[serde(rename = "resourceMetrics")]
                metrics: Option<serde::de::IgnoredAny>,
                #[serde(rename = "resourceLogs")]
                logs: Option<serde::de::IgnoredAny>,
            }
            match serde_json::from_slice::<Roots>(body) {
                Ok(Roots { spans: Some(_), .. }) => Signal::Traces,
                Ok(Roots {
                    metrics: Some(_), ..
                }) => Signal::Metrics,
                Ok(Roots { logs: Some(_), .. }) => Signal::Logs,
                _ => Signal::Traces,
            }
        }
        Encoding::Protobuf => {
            if let Ok(t) = TracesRequest::decode(body) {
                let spans = t
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans);
                let mut any = false;
                let mut plausible = true;
                for s in spans {
                    any = true;
                    plausible &= s.trace_id.len() == 16 && s.span_id.len() == 8;
                }
                if any && plausible {
                    return Signal::Traces;
                }
            }
            if let Ok(m) = MetricsRequest::decode(body) {
                let mut metrics = m
                    .resource_metrics
                    .iter()
                    .flat_map(|r| &r.scope_metrics)
                    .flat_map(|s| &s.metrics)
                    .peekable();
                if metrics.peek().is_some() && metrics.all(|m| m.data.is_some()) {
                    return Signal::Metrics;
                }
            }
            if let Ok(l) = LogsRequest::decode(body) {
                if l.resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .any(|s| !s.log_records.is_empty())
                {
                    return Signal::Logs;
                }
            }
            Signal::Traces
        }
    }
}

/// What one export produced, for the response.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub accepted: u64,
    pub rejected: u64,
    /// Runs (traces) accepted, for the traces signal.
    pub traces: u64,
    pub error: Option<String>,
}

/// The success body in the request's encoding.
pub fn success_body(signal: Signal, enc: Encoding, o: &Outcome) -> Vec<u8> {
    let message = o.error.clone().unwrap_or_default();
    match enc {
        Encoding::Protobuf => match signal {
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: (o.rejected > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: o.rejected as i64,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse {
                partial_success: (o.rejected > 0).then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: o.rejected as i64,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: (o.rejected > 0).then_some(ExportLogsPartialSuccess {
                    rejected_log_records: o.rejected as i64,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
        },
        Encoding::Json => {
            let (rejected_key, mut body) = match signal {
                Signal::Traces => (
                    "rejectedSpans",
                    json!({"accepted_traces": o.traces, "accepted_spans": o.accepted, "rejected_spans": o.rejected}),
                ),
                Signal::Metrics => (
                    "rejectedDataPoints",
                    json!({"accepted_data_points": o.accepted, "rejected_data_points": o.rejected}),
                ),
                Signal::Logs => (
                    "rejectedLogRecords",
                    json!({"accepted_log_records": o.accepted, "rejected_log_records": o.rejected}),
                ),
            };
            if o.rejected > 0 {
                body["partialSuccess"] =
                    json!({rejected_key: o.rejected.to_string(), "errorMessage": message});
            }
            body.to_string().into_bytes()
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP error to a protobuf request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// An error body in the request's encoding: `{"detail": ...}` for JSON, a
/// `google.rpc.Status` for protobuf.
pub fn error_body(enc: Encoding, e: &ApiError) -> (Vec<u8>, HeaderValue) {
    match enc {
        Encoding::Json => (e.body(), HeaderValue::from_static("application/json")),
        Encoding::Protobuf => {
            let code = match e.kind {
                ErrorKind::BadRequest | ErrorKind::UnsupportedMediaType => 3, // INVALID_ARGUMENT
                ErrorKind::Unauthorized => 16,                                // UNAUTHENTICATED
                ErrorKind::Forbidden => 7,                                    // PERMISSION_DENIED
                ErrorKind::NotFound => 5,
                ErrorKind::PayloadTooLarge | ErrorKind::TooManyRequests => 8, // RESOURCE_EXHAUSTED
                ErrorKind::Unavailable => 14,
                ErrorKind::Conflict => 6,
                ErrorKind::Internal => 13,
            };
            let body = RpcStatus {
                code,
                message: e.detail.clone(),
            }
            .encode_to_vec();
            (body, HeaderValue::from_static("application/x-protobuf"))
        }
    }
}

pub type TracesRequest = ExportTraceServiceRequest;
pub type MetricsRequest = ExportMetricsServiceRequest;
pub type LogsRequest = ExportLogsServiceRequest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            Signal::from_path("/api/v1/otlp/v1/traces"),
            Some(Signal::Traces)
        );
        assert_eq!(Signal::from_path("/v1/metrics"), Some(Signal::Metrics));
        assert_eq!(Signal::from_path("/v1/logs/"), Some(Signal::Logs));
        assert_eq!(Signal::from_path("/v1/other"), None);
        assert_eq!(Signal::from_path("/api/v1/traces/batch"), None);
        assert_eq!(Signal::from_path("/api/v1/v1/logs"), Some(Signal::Logs));
        assert!(Signal::is_base_path("/api/v1"));
        assert!(Signal::is_base_path("/api/v1/"));
        assert!(!Signal::is_base_path("/api/v1/traces"));
    }

    #[test]
    fn the_base_path_reads_the_signal_off_the_body() {
        use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use opentelemetry_proto::tonic::metrics::v1::{
            metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        };
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let traces = TracesRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "chat".into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        // Names of 16 and descriptions of 8 bytes, as a span's ids would be.
        let metric = |data| Metric {
            name: "sixteen-bytes-nm".into(),
            description: "eight-bt".into(),
            unit: "1".into(),
            data: Some(data),
            ..Default::default()
        };
        let point = NumberDataPoint {
            time_unix_nano: 5,
            ..Default::default()
        };
        let metrics = MetricsRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(metric::Data::Gauge(Gauge {
                            data_points: vec![point.clone()],
                        })),
                        metric(metric::Data::Sum(Sum {
                            data_points: vec![point],
                            ..Default::default()
                        })),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let logs = LogsRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        time_unix_nano: 7,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("hello".into())),
                        }),
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let pb = Encoding::Protobuf;
        assert_eq!(sniff(pb, &traces.encode_to_vec()), Signal::Traces);
        assert_eq!(sniff(pb, &metrics.encode_to_vec()), Signal::Metrics);
        assert_eq!(sniff(pb, &logs.encode_to_vec()), Signal::Logs);
        assert_eq!(sniff(pb, b""), Signal::Traces);
        assert_eq!(sniff(pb, b"\xff\xff not protobuf"), Signal::Traces);
        let js = Encoding::Json;
        assert_eq!(sniff(js, br#"{"resourceSpans": []}"#), Signal::Traces);
        assert_eq!(
            sniff(js, br#"{"resourceMetrics": [{"scopeMetrics": []}]}"#),
            Signal::Metrics
        );
        assert_eq!(sniff(js, br#"{"resourceLogs": []}"#), Signal::Logs);
        assert_eq!(sniff(js, b"not json"), Signal::Traces);
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(encoding(&h).unwrap_err().status_code(), 415);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(encoding(&h).unwrap(), Encoding::Json);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert_eq!(encoding(&h).unwrap(), Encoding::Protobuf);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(encoding(&h).unwrap_err().status_code(), 415);
    }

    /// Bad bodies of each content type get a 400, never a panic.
    #[test]
    fn bad_bodies_are_400() {
        let bodies: &[&[u8]] = &[
            b"",
            b"{",
            b"null",
            b"[]",
            b"{\"resourceSpans\": 5}",
            b"\xff\xfe\x00garbage",
            b"{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"traceId\": \"zz\"}]}]}]}",
        ];
        for body in bodies {
            let r = decode::<TracesRequest>(Signal::Traces, Encoding::Json, body);
            assert_eq!(r.unwrap_err().status_code(), 400, "{body:?}");
        }
        let r =
            decode::<TracesRequest>(Signal::Traces, Encoding::Protobuf, b"\xff\xff\xff\xff\xff");
        assert_eq!(r.unwrap_err().status_code(), 400);
        let missing = decode::<LogsRequest>(Signal::Logs, Encoding::Json, b"{}").unwrap_err();
        assert_eq!(missing.detail, "resourceLogs: is required");
    }

    #[test]
    fn json_with_numbers_and_strings_decodes() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
            "scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "name":"x","kind":2,"startTimeUnixNano":1700000000000000000,"endTimeUnixNano":"1700000001000000000",
            "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}}],"status":{"code":2}}]}]}]}"#;
        let req: TracesRequest = decode(Signal::Traces, Encoding::Json, body).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.kind, 2);
    }
}
