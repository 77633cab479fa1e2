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
    agentvista_shared::openapi::operations(&openapi())
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

/// One OTLP/HTTP export route's document entry: the three signals share
/// the handler, the encodings and the refusals; they differ in the
/// request message and the JSON answer's counts.
macro_rules! otlp_path {
    ($(#[$doc:meta])* $fn:ident, $path:literal, $request:literal, $accepted:ty) => {
        $(#[$doc])*
        #[utoipa::path(operation_id = stringify!($fn), post, path = $path, tag = "ingestion",
            request_body(content((Vec<u8> = "application/x-protobuf"), (Object = "application/json")),
                         description = $request),
            responses(
                (status = 200, description = "Accepted; the OTLP Export response in the request's encoding",
                 content(($accepted = "application/json"), (Vec<u8> = "application/x-protobuf"))),
                (status = 400, description = "Malformed body", body = ErrorBody),
                (status = 401, description = "Missing or invalid key", body = ErrorBody),
                (status = 403, description = "The key lacks `write`", body = ErrorBody),
                (status = 413, description = "Body or decompressed size over the limit", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
                (status = 429, description = "Monthly event limit exceeded (spans only)", body = ErrorBody),
                (status = 503, description = "Queue unavailable; retry", body = ErrorBody)))]
        #[allow(dead_code)]
        fn $fn() {}
    };
}

otlp_path!(
    /// OTLP/HTTP traces export (protobuf or JSON, optionally gzip). Spans
    /// outside the ingestion window are rejected in `partial_success`; the
    /// rest are stored.
    otlp_traces, "/otlp/v1/traces", "ExportTraceServiceRequest", OtlpTracesAccepted
);
otlp_path!(
    /// OTLP/HTTP metrics export. Metric points are not events: they do not
    /// count against the monthly limit.
    otlp_metrics, "/otlp/v1/metrics", "ExportMetricsServiceRequest", OtlpMetricsAccepted
);
otlp_path!(
    /// OTLP/HTTP logs export. Log records are not events: they do not count
    /// against the monthly limit.
    otlp_logs, "/otlp/v1/logs", "ExportLogsServiceRequest", OtlpLogsAccepted
);
