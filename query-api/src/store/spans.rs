//! Spans (`spans` table): the spans of one trace.

use crate::error::AppResult;
use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The most spans one trace detail returns by default
/// (`Config::trace_max_spans`).
pub const MAX_TRACE_SPANS: i64 = 10_000;

/// A span as read back.
#[derive(Debug, Row, Deserialize)]
pub struct StoredSpan {
    #[serde(with = "clickhouse::serde::uuid")]
    pub span_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub parent_span_id: Option<Uuid>,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub agent_name: String,
    pub span_type: String,
    pub name: String,
    pub status: String,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::micros::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub duration_ms: Option<i64>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    /// Nano-dollars (`Decimal64(9)`).
    pub cost: Option<i64>,
    pub cost_computed: bool,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub resource_attributes: Vec<(String, String)>,
    pub kind: String,
    pub source: String,
    pub scope: String,
    /// JSON text.
    pub events: String,
    pub links: String,
}

/// The first spans of a trace by start (at most `max`), and how many the
/// trace holds in all (counted only when there are more).
pub async fn of_trace(
    ch: &clickhouse::Client,
    org_id: Uuid,
    trace_id: Uuid,
    max: i64,
) -> AppResult<(Vec<StoredSpan>, u64)> {
    // One more than the cap tells whether there are more.
    let mut spans: Vec<StoredSpan> = ch
        .query(
            "SELECT ?fields FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) \
             ORDER BY started_at, span_id LIMIT ?",
        )
        .bind(org_id.to_string())
        .bind(trace_id.to_string())
        .bind(max + 1)
        .fetch_all()
        .await?;
    if spans.len() as i64 <= max {
        let n = spans.len() as u64;
        return Ok((spans, n));
    }
    spans.truncate(max as usize);
    let total: u64 = ch
        .query(
            "SELECT count() FROM (SELECT span_id FROM spans FINAL \
             WHERE org_id = toUUID(?) AND trace_id = toUUID(?))",
        )
        .bind(org_id.to_string())
        .bind(trace_id.to_string())
        .fetch_one()
        .await?;
    Ok((spans, total.max(max as u64)))
}
