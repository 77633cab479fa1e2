//! OTLP/JSON traces and logs decoded straight into `opentelemetry-proto`'s
//! types, without an intermediate `serde_json::Value` tree (the tree cost a
//! map per attribute and most of the JSON path's CPU and memory).
//!
//! It accepts what [`super::json`]'s normalization followed by the crate's
//! serde accepts, and nothing else: 64-bit times as strings or numbers, span
//! kinds, status codes and severities by number or by name, trace and span
//! ids in hex; attributes and log bodies through [`super::json_values`]
//! (the crate's rules without its `flatten` buffer); resources, scopes and
//! links through the crate's own serde, unchanged. The unit tests hold the
//! two paths to the same answer on generated exports
//! (`same_as_the_value_path`).
//! Metrics: [`super::json_metrics`], on the same helpers.

use super::json::{enum_number, severity_number_by_name, SPAN_KINDS, STATUS_CODES};
use super::json_values::{key_values, some_any_value};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// What a request that is not an object, or whose root field is missing,
/// fails with, and one whose root field is not an array (mapped to the
/// usual field errors).
pub const MISSING: &str = "the root field is required";
pub const NOT_AN_ARRAY: &str = "the root field must be an array";

/// An export's elements under its root field (`resourceSpans`,
/// `resourceLogs`).
pub trait RootField {
    const FIELD: &'static str;
}

/// The request: an object whose root field is an array of `T`; other
/// fields are ignored.
pub struct Root<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de> + RootField> Deserialize<'de> for Root<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + RootField> Visitor<'de> for Object<T> {
            type Value = Root<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an OTLP export object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Root<T>, A::Error> {
                let mut items = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == T::FIELD {
                        items = Some(map.next_value::<Array<T>>()?.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                items.map(Root).ok_or_else(|| de::Error::custom(MISSING))
            }
        }
        d.deserialize_any(Object(PhantomData))
            .map_err(|e: D::Error| match e.to_string() {
                // Any other JSON value than an object: no root field.
                m if m.starts_with("invalid type") => de::Error::custom(MISSING),
                _ => e,
            })
    }
}

/// The root field's value: an array, or the field error.
struct Array<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Elements<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Elements<T> {
            type Value = Array<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Array<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(r) = seq.next_element()? {
                    out.push(r);
                }
                Ok(Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Array<T>, A::Error> {
                Err(de::Error::custom(NOT_AN_ARRAY))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Array<T>, E> {
                Err(E::custom(NOT_AN_ARRAY))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Array<T>, E> {
                Err(E::custom(NOT_AN_ARRAY))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Array<T>, E> {
                Err(E::custom(NOT_AN_ARRAY))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Array<T>, E> {
                Err(E::custom(NOT_AN_ARRAY))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Array<T>, E> {
                Err(E::custom(NOT_AN_ARRAY))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Array<T>, E> {
                Err(E::custom(NOT_AN_ARRAY))
            }
        }
        d.deserialize_any(Elements(PhantomData))
    }
}

impl From<Root<JResourceSpans>> for ExportTraceServiceRequest {
    fn from(r: Root<JResourceSpans>) -> Self {
        ExportTraceServiceRequest {
            resource_spans: r.0.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Root<JResourceLogs>> for ExportLogsServiceRequest {
    fn from(r: Root<JResourceLogs>) -> Self {
        ExportLogsServiceRequest {
            resource_logs: r.0.into_iter().map(Into::into).collect(),
        }
    }
}

impl RootField for JResourceSpans {
    const FIELD: &'static str = "resourceSpans";
}

impl RootField for JResourceLogs {
    const FIELD: &'static str = "resourceLogs";
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct JResourceSpans {
    resource: Option<Resource>,
    scope_spans: Vec<JScopeSpans>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JScopeSpans {
    scope: Option<InstrumentationScope>,
    spans: Vec<JSpan>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JSpan {
    #[serde(deserialize_with = "hex_bytes")]
    trace_id: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    span_id: Vec<u8>,
    trace_state: String,
    #[serde(deserialize_with = "hex_bytes")]
    parent_span_id: Vec<u8>,
    flags: u32,
    name: String,
    #[serde(deserialize_with = "span_kind")]
    kind: i32,
    #[serde(deserialize_with = "nanos")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    end_time_unix_nano: u64,
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    events: Vec<JEvent>,
    dropped_events_count: u32,
    links: Vec<span::Link>,
    dropped_links_count: u32,
    status: Option<JStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JEvent {
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    name: String,
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JStatus {
    message: String,
    #[serde(deserialize_with = "status_code")]
    code: i32,
}

impl From<JResourceSpans> for ResourceSpans {
    fn from(r: JResourceSpans) -> Self {
        ResourceSpans {
            resource: r.resource,
            scope_spans: r.scope_spans.into_iter().map(Into::into).collect(),
            schema_url: r.schema_url,
        }
    }
}

impl From<JScopeSpans> for ScopeSpans {
    fn from(s: JScopeSpans) -> Self {
        ScopeSpans {
            scope: s.scope,
            spans: s.spans.into_iter().map(Into::into).collect(),
            schema_url: s.schema_url,
        }
    }
}

impl From<JSpan> for Span {
    fn from(s: JSpan) -> Self {
        Span {
            trace_id: s.trace_id,
            span_id: s.span_id,
            trace_state: s.trace_state,
            parent_span_id: s.parent_span_id,
            flags: s.flags,
            name: s.name,
            kind: s.kind,
            start_time_unix_nano: s.start_time_unix_nano,
            end_time_unix_nano: s.end_time_unix_nano,
            attributes: s.attributes,
            dropped_attributes_count: s.dropped_attributes_count,
            events: s
                .events
                .into_iter()
                .map(|e| span::Event {
                    time_unix_nano: e.time_unix_nano,
                    name: e.name,
                    attributes: e.attributes,
                    dropped_attributes_count: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events_count: s.dropped_events_count,
            links: s.links,
            dropped_links_count: s.dropped_links_count,
            status: s.status.map(|st| Status {
                message: st.message,
                code: st.code,
            }),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct JResourceLogs {
    resource: Option<Resource>,
    scope_logs: Vec<JScopeLogs>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JScopeLogs {
    scope: Option<InstrumentationScope>,
    log_records: Vec<JLogRecord>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JLogRecord {
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    observed_time_unix_nano: u64,
    #[serde(deserialize_with = "severity_number")]
    severity_number: i32,
    severity_text: String,
    #[serde(deserialize_with = "some_any_value")]
    body: Option<AnyValue>,
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    flags: u32,
    #[serde(deserialize_with = "hex_bytes")]
    trace_id: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    span_id: Vec<u8>,
    event_name: String,
}

impl From<JResourceLogs> for ResourceLogs {
    fn from(r: JResourceLogs) -> Self {
        ResourceLogs {
            resource: r.resource,
            scope_logs: r
                .scope_logs
                .into_iter()
                .map(|s| ScopeLogs {
                    scope: s.scope,
                    log_records: s.log_records.into_iter().map(Into::into).collect(),
                    schema_url: s.schema_url,
                })
                .collect(),
            schema_url: r.schema_url,
        }
    }
}

impl From<JLogRecord> for LogRecord {
    fn from(l: JLogRecord) -> Self {
        LogRecord {
            time_unix_nano: l.time_unix_nano,
            observed_time_unix_nano: l.observed_time_unix_nano,
            severity_number: l.severity_number,
            severity_text: l.severity_text,
            body: l.body,
            attributes: l.attributes,
            dropped_attributes_count: l.dropped_attributes_count,
            flags: l.flags,
            trace_id: l.trace_id,
            span_id: l.span_id,
            event_name: l.event_name,
        }
    }
}

/// Bytes from a hex string (trace and span ids, as the OTLP JSON mapping
/// has them).
pub(crate) fn hex_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct Hex;
    impl Visitor<'_> for Hex {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string representing hex-encoded bytes")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            hex::decode(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Hex)
}

/// A 64-bit time in nanoseconds: a string of digits or a non-negative
/// integer.
pub(crate) fn nanos<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Nanos;
    impl Visitor<'_> for Nanos {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a 64-bit unsigned integer as a string or a number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse::<u64>().map_err(E::custom)
        }
    }
    d.deserialize_any(Nanos)
}

/// An enum value: a 32-bit integer, or a name that `by_name` knows (or a
/// number in a string); a string it does not know is refused.
pub(crate) struct EnumValue(pub fn(&str) -> Option<i64>);

impl Visitor<'_> for EnumValue {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an enum number or name")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
        i32::try_from(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
        i32::try_from(v).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
        let n = (self.0)(v).ok_or_else(|| E::invalid_type(de::Unexpected::Str(v), &self))?;
        i32::try_from(n).map_err(E::custom)
    }
}

/// A span kind by number or name (`SPAN_KIND_CLIENT`, `client`).
fn span_kind<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(EnumValue(|s| enum_number(s, SPAN_KINDS)))
}

/// A status code by number or name (`STATUS_CODE_ERROR`, `error`).
fn status_code<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(EnumValue(|s| enum_number(s, STATUS_CODES)))
}

/// A log severity: a 32-bit integer, or a name (`ERROR`, `WARN2`,
/// `SEVERITY_NUMBER_INFO`; anything else is 0, unspecified).
fn severity_number<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(EnumValue(|s| Some(severity_number_by_name(s))))
}

#[cfg(test)]
mod tests {
    use super::super::{
        decode, decode_logs, decode_traces, Encoding, LogsRequest, Signal, TracesRequest,
    };
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn streamed(body: &[u8]) -> Result<TracesRequest, String> {
        decode_traces(Encoding::Json, body).map_err(|e| e.detail)
    }

    fn via_value(body: &[u8]) -> Result<TracesRequest, String> {
        decode::<TracesRequest>(Signal::Traces, Encoding::Json, body).map_err(|e| e.detail)
    }

    /// A value that a field may hold in an export: the well-formed ones
    /// and the quirks and mistakes clients send.
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(1_700_000_000_123_456_789u64)),
            Just(json!("1700000000123456789")),
            Just(json!(-5)),
            Just(json!(2.5)),
            Just(json!("2")),
            Just(json!("SPAN_KIND_CLIENT")),
            Just(json!("server")),
            Just(json!("STATUS_CODE_ERROR")),
            Just(json!("ok")),
            Just(json!("nonsense")),
            Just(json!(4_000_000_000u64)),
            Just(json!(null)),
            Just(json!(true)),
            Just(json!([])),
            Just(json!({})),
            Just(json!("5b8efff798038103d269b633813fc60c")),
            Just(json!("eee19b7ec3c1b174")),
            Just(json!("zz")),
            Just(json!("")),
        ]
    }

    fn attribute() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!({"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}})),
            Just(json!({"key": "n", "value": {"intValue": "42"}})),
            Just(json!({"key": "n", "value": {"intValue": 42}})),
            Just(json!({"key": "d", "value": {"doubleValue": 0.5}})),
            Just(json!({"key": "b", "value": {"boolValue": true}})),
            Just(json!({"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}})),
            Just(json!({"key": "bad", "value": {"unknown": 1}})),
            Just(json!({"key": "s", "value": {"stringValue": "x"}})),
            Just(json!({"key": "s", "value": {"stringValue": "y"}})),
            Just(json!({"key": "none"})),
            Just(json!({"key": "null", "value": null})),
            Just(json!({"key": "f", "value": {"intValue": 2.5}})),
            Just(json!({"key": "big", "value": {"intValue": 18_446_744_073_709_551_615u64}})),
            Just(json!({"key": "neg", "value": {"intValue": "-7"}})),
            Just(json!({"key": "two", "value": {"stringValue": "a", "intValue": "3"}})),
            Just(json!({"key": "skip", "value": {"other": [1], "boolValue": false}})),
            Just(
                json!({"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"doubleValue": 1}}]}}})
            ),
            Just(json!({"key": "kv0", "value": {"kvlistValue": {}}})),
            Just(json!({"key": "arr0", "value": {"arrayValue": {}}})),
            Just(json!({"key": "arrn", "value": {"arrayValue": {"values": [null]}}})),
            Just(json!({"key": "bytes", "value": {"bytesValue": "aGVsbG8="}})),
            Just(json!({"key": "badbytes", "value": {"bytesValue": "!!"}})),
            Just(json!({"key": "snull", "value": {"stringValue": null}})),
            Just(json!({"key": "btext", "value": {"boolValue": "true"}})),
            Just(json!({"key": 5, "value": {"stringValue": "x"}})),
            Just(json!({"value": {"stringValue": "no key"}})),
            Just(json!({"key": "plain", "value": "text"})),
            Just(json!({"key": "extra", "value": {"stringValue": "x"}, "other": 1})),
        ]
    }

    /// A value for a field: mostly one that field accepts (so that many
    /// exports decode), sometimes any value at all.
    fn value_for(field: &'static str) -> BoxedStrategy<Value> {
        let valid: Vec<Value> = match field {
            "traceId" => vec![json!("5b8efff798038103d269b633813fc60c"), json!("")],
            "spanId" | "parentSpanId" => vec![json!("eee19b7ec3c1b174"), json!("")],
            "kind" | "code" => vec![
                json!(2),
                json!("2"),
                json!("SPAN_KIND_SERVER"),
                json!("client"),
                json!("STATUS_CODE_OK"),
                json!("Error"),
                json!("UNSET"),
            ],
            "startTimeUnixNano" | "endTimeUnixNano" | "timeUnixNano" => vec![
                json!(1_700_000_000_000_000_000u64),
                json!("1700000000000000001"),
                json!(0),
                json!("+7"),
            ],
            "flags" | "droppedAttributesCount" => vec![json!(0), json!(257)],
            _ => vec![json!("chat gpt-4o"), json!(""), json!("a\"b\u{e9}")],
        };
        prop_oneof![3 => proptest::sample::select(valid), 1 => scalar()].boxed()
    }

    fn span() -> impl Strategy<Value = Value> {
        const FIELDS: [&str; 10] = [
            "traceId",
            "spanId",
            "parentSpanId",
            "name",
            "kind",
            "startTimeUnixNano",
            "endTimeUnixNano",
            "flags",
            "droppedAttributesCount",
            "traceState",
        ];
        let set = proptest::collection::vec(
            proptest::sample::select(FIELDS.to_vec()).prop_flat_map(|f| (Just(f), value_for(f))),
            0..4,
        );
        (
            set,
            proptest::collection::vec(attribute(), 0..3),
            proptest::option::of((value_for("name"), value_for("code"))),
            proptest::option::of(value_for("timeUnixNano")),
            proptest::bool::weighted(0.8),
        )
            .prop_map(|(set, attrs, status, event_time, well_formed)| {
                let mut s = if well_formed {
                    json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                           "name": "chat", "kind": 3, "startTimeUnixNano": "1700000000000000000",
                           "endTimeUnixNano": 1_700_000_001_000_000_000u64})
                } else {
                    json!({})
                };
                for (field, v) in set {
                    s[field] = v;
                }
                s["attributes"] = json!(attrs);
                if let Some((message, code)) = status {
                    s["status"] = json!({"message": message, "code": code});
                }
                if let Some(t) = event_time {
                    s["events"] = json!([{"timeUnixNano": t, "name": "e"}]);
                }
                s
            })
    }

    fn export() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => proptest::collection::vec(span(), 0..4).prop_map(|spans| json!({
                "resourceSpans": [{
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeSpans": [{"scope": {"name": "s", "version": "1"}, "spans": spans}]
                }]
            })),
            1 => scalar().prop_map(|v| json!({"resourceSpans": v})),
            1 => scalar(),
        ]
    }

    fn log_record() -> impl Strategy<Value = Value> {
        const FIELDS: [&str; 8] = [
            "timeUnixNano",
            "observedTimeUnixNano",
            "severityNumber",
            "severityText",
            "traceId",
            "spanId",
            "flags",
            "eventName",
        ];
        let set = proptest::collection::vec(
            proptest::sample::select(FIELDS.to_vec()).prop_flat_map(|f| {
                let valid: Vec<Value> = match f {
                    "severityNumber" => vec![
                        json!(17),
                        json!("ERROR"),
                        json!("SEVERITY_NUMBER_WARN2"),
                        json!("info4"),
                        json!("loud"),
                        json!("99999999999"),
                    ],
                    "traceId" => vec![json!("5b8efff798038103d269b633813fc60c")],
                    "spanId" => vec![json!("eee19b7ec3c1b174")],
                    _ => vec![],
                };
                let v = if valid.is_empty() {
                    value_for(f)
                } else {
                    prop_oneof![3 => proptest::sample::select(valid), 1 => scalar()].boxed()
                };
                (Just(f), v)
            }),
            0..4,
        );
        (
            set,
            proptest::collection::vec(attribute(), 0..3),
            proptest::option::of(prop_oneof![
                Just(json!({"stringValue": "CRM lookup slow"})),
                Just(
                    json!({"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "1"}}]}})
                ),
                Just(json!({})),
                Just(json!("plain")),
            ]),
        )
            .prop_map(|(set, attrs, body)| {
                let mut r = json!({"timeUnixNano": "1709287200500000000", "severityNumber": 9});
                for (field, v) in set {
                    r[field] = v;
                }
                r["attributes"] = json!(attrs);
                if let Some(b) = body {
                    r["body"] = b;
                }
                r
            })
    }

    fn logs_export() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => proptest::collection::vec(log_record(), 0..4).prop_map(|records| json!({
                "resourceLogs": [{
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeLogs": [{"scope": {"name": "s"}, "logRecords": records}]
                }]
            })),
            1 => scalar().prop_map(|v| json!({"resourceLogs": v})),
            1 => scalar(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Logs: the streamed decoder and the `Value` path agree.
        #[test]
        fn logs_same_as_the_value_path(doc in logs_export()) {
            let body = serde_json::to_vec(&doc).unwrap();
            let streamed = decode_logs(Encoding::Json, &body).map_err(|e| e.detail);
            let via_value = decode::<LogsRequest>(Signal::Logs, Encoding::Json, &body)
                .map_err(|e| e.detail);
            match (streamed, via_value) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{doc}: streamed {a:?}, via value {b:?}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The streamed decoder and the `Value` path agree: the same
        /// request, or both a 400.
        #[test]
        fn same_as_the_value_path(doc in export()) {
            let body = serde_json::to_vec(&doc).unwrap();
            match (streamed(&body), via_value(&body)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{doc}: streamed {a:?}, via value {b:?}"),
            }
        }
    }

    #[test]
    fn root_errors_name_the_field_as_before() {
        for (body, detail) in [
            (&b"{}"[..], "resourceSpans: is required"),
            (b"[]", "resourceSpans: is required"),
            (
                b"{\"resourceSpans\": {}}",
                "resourceSpans: must be an array",
            ),
        ] {
            assert_eq!(streamed(body).unwrap_err(), detail);
            assert_eq!(via_value(body).unwrap_err(), detail);
        }
        assert!(streamed(b"{\"resourceSpans\": [")
            .unwrap_err()
            .starts_with("Malformed JSON body"));
        for (body, detail) in [
            (&b"{\"resourceSpans\": []}"[..], "resourceLogs: is required"),
            (b"{\"resourceLogs\": 7}", "resourceLogs: must be an array"),
        ] {
            assert_eq!(
                decode_logs(Encoding::Json, body).unwrap_err().detail,
                detail
            );
        }
    }
}
