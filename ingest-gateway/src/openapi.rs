//! The ingestion routes' part of the OpenAPI document, generated from the
//! code: the SDK batch's request type is the parser's own (`sdk::RawBatch`),
//! the responses are the types the handlers serialize. The OTLP routes
//! carry the OpenTelemetry protocol's messages (one handler serves the
//! three signals, so each path is described here).

use agentvista_shared::error::ErrorBody;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(paths(crate::ingest::ingest_batch, otlp_traces, otlp_metrics, otlp_logs))]
struct IngestionDoc;

/// The ingestion routes (paths under `/api/v1`) and their schemas.
pub fn openapi() -> utoipa::openapi::OpenApi {
    IngestionDoc::openapi()
}

/// Every ingestion route as (METHOD, path under `/api/v1`), from the
/// document. The OTLP routes are also served at `/v1/…` on the root.
pub fn routes() -> Vec<(String, String)> {
    let doc = serde_json::to_value(openapi()).expect("documents serialize");
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            for method in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The JSON answer to an OTLP traces export: the OTLP response fields
/// (`partialSuccess` when spans were rejected) plus AgentVista's counts.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct OtlpTracesAccepted {
    accepted_traces: u64,
    accepted_spans: u64,
    rejected_spans: u64,
    /// `{"rejectedSpans": n, "errorMessage": "..."}` when spans were rejected.
    #[serde(rename = "partialSuccess")]
    #[schema(value_type = Option<Object>)]
    partial_success: Option<serde_json::Value>,
}

/// The JSON answer to an OTLP metrics export.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct OtlpMetricsAccepted {
    accepted_data_points: u64,
    rejected_data_points: u64,
    /// `{"rejectedDataPoints": n, "errorMessage": "..."}` when points were rejected.
    #[serde(rename = "partialSuccess")]
    #[schema(value_type = Option<Object>)]
    partial_success: Option<serde_json::Value>,
}

/// The JSON answer to an OTLP logs export.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct OtlpLogsAccepted {
    accepted_log_records: u64,
    rejected_log_records: u64,
    /// `{"rejectedLogRecords": n, "errorMessage": "..."}` when records were rejected.
    #[serde(rename = "partialSuccess")]
    #[schema(value_type = Option<Object>)]
    partial_success: Option<serde_json::Value>,
}

/// OTLP/HTTP traces export (`ExportTraceServiceRequest`, protobuf or JSON,
/// optionally gzip). Spans outside the ingestion window are rejected in
/// `partial_success`; the rest are stored.
#[utoipa::path(operation_id = "otlp_traces", post, path = "/otlp/v1/traces", tag = "ingestion",
    request_body(content((Vec<u8> = "application/x-protobuf"), (Object = "application/json")),
                 description = "ExportTraceServiceRequest"),
    responses(
        (status = 200, description = "Accepted; the OTLP Export response in the request's encoding",
         content((OtlpTracesAccepted = "application/json"), (Vec<u8> = "application/x-protobuf"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "The key lacks `write`", body = ErrorBody),
        (status = 413, description = "Body or decompressed size over the limit", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
        (status = 429, description = "Monthly event limit exceeded", body = ErrorBody),
        (status = 503, description = "Queue unavailable; retry", body = ErrorBody)))]
#[allow(dead_code)]
fn otlp_traces() {}

/// OTLP/HTTP metrics export (`ExportMetricsServiceRequest`). Metric points
/// are not events: they do not count against the monthly limit.
#[utoipa::path(operation_id = "otlp_metrics", post, path = "/otlp/v1/metrics", tag = "ingestion",
    request_body(content((Vec<u8> = "application/x-protobuf"), (Object = "application/json")),
                 description = "ExportMetricsServiceRequest"),
    responses(
        (status = 200, description = "Accepted; the OTLP Export response in the request's encoding",
         content((OtlpMetricsAccepted = "application/json"), (Vec<u8> = "application/x-protobuf"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "The key lacks `write`", body = ErrorBody),
        (status = 413, description = "Body or decompressed size over the limit", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
        (status = 503, description = "Queue unavailable; retry", body = ErrorBody)))]
#[allow(dead_code)]
fn otlp_metrics() {}

/// OTLP/HTTP logs export (`ExportLogsServiceRequest`). Log records are not
/// events: they do not count against the monthly limit.
#[utoipa::path(operation_id = "otlp_logs", post, path = "/otlp/v1/logs", tag = "ingestion",
    request_body(content((Vec<u8> = "application/x-protobuf"), (Object = "application/json")),
                 description = "ExportLogsServiceRequest"),
    responses(
        (status = 200, description = "Accepted; the OTLP Export response in the request's encoding",
         content((OtlpLogsAccepted = "application/json"), (Vec<u8> = "application/x-protobuf"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "The key lacks `write`", body = ErrorBody),
        (status = 413, description = "Body or decompressed size over the limit", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
        (status = 503, description = "Queue unavailable; retry", body = ErrorBody)))]
#[allow(dead_code)]
fn otlp_logs() {}
