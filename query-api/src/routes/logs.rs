//! `/dashboard/logs/search`: full text over the body (terms ANDed,
//! case-insensitive) and exact filters, newest first.

use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::sql::{self, Bind, Filter};
use crate::telemetry_store::{fmt_ns, map_json};
use crate::AppState;
use agentvista_shared::error::ApiError;
use axum::extract::State;
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub const SEVERITIES: [&str; 7] = [
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "fatal",
    "unspecified",
];
pub const MAX_LIMIT: i64 = 1000;
pub const MAX_OFFSET: i64 = 100_000;

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    service_name: Option<String>,
    severity: Option<String>,
    trace_id: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Row, Deserialize)]
pub struct LogRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub log_id: Uuid,
    pub ts: i64,
    pub observed_ts: i64,
    pub severity: String,
    pub severity_number: u8,
    pub severity_text: String,
    pub service_name: String,
    pub body: String,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub trace_id: Option<Uuid>,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub span_id: Option<Uuid>,
    pub attributes: Vec<(String, String)>,
    pub resource_attributes: Vec<(String, String)>,
    pub scope: String,
}

pub const LOG_COLUMNS: &str = "log_id, toInt64(toUnixTimestamp64Nano(timestamp)) AS ts, \
    toInt64(toUnixTimestamp64Nano(observed_timestamp)) AS observed_ts, severity, severity_number, severity_text, \
    service_name, body, trace_id, span_id, attributes, resource_attributes, scope";

pub fn log_json(r: &LogRow) -> Value {
    json!({
        "id": r.log_id,
        "timestamp": fmt_ns(r.ts),
        "observed_timestamp": fmt_ns(r.observed_ts),
        "severity": r.severity,
        "severity_number": r.severity_number,
        "severity_text": r.severity_text,
        "service_name": r.service_name,
        "body": r.body,
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "attributes": map_json(&r.attributes),
        "resource_attributes": map_json(&r.resource_attributes),
        "scope": r.scope,
    })
}

/// `GET /dashboard/logs/search`.
pub async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<SearchParams>,
) -> AppResult<Json<Value>> {
    let principal = principal.reader()?;
    let mut f = Filter::org(principal.org_id);
    if let Some(q) = p.q.as_deref() {
        for term in sql::terms("q", q)? {
            // The LIKE on the lowercased body is what the n-gram index
            // (`idx_body_ngrams`) can answer, skipping granules that cannot
            // hold the term; the position test keeps the exact semantics.
            f.push(
                "lowerUTF8(body) LIKE concat('%', lowerUTF8(?), '%') AND positionCaseInsensitiveUTF8(body, ?) > 0",
                [Bind::Str(sql::like_escape(&term)), Bind::Str(term)],
            );
        }
    }
    if let Some(s) = p.service_name.as_deref().filter(|s| !s.is_empty()) {
        f.push("service_name = ?", [Bind::Str(s.to_string())]);
    }
    if let Some(s) = p.severity.as_deref().filter(|s| !s.is_empty()) {
        let s = sql::enum_param("severity", s, &SEVERITIES)?;
        f.push("severity = ?", [Bind::Str(s.to_string())]);
    }
    if let Some(t) = p.trace_id.as_deref().filter(|s| !s.is_empty()) {
        let t = sql::uuid_param("trace_id", t)?;
        f.push("trace_id = toUUID(?)", [Bind::Str(t.to_string())]);
    }
    if let Some(us) = sql::time_param("start", p.start.as_deref())? {
        f.push("timestamp >= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
    }
    if let Some(us) = sql::time_param("end", p.end.as_deref())? {
        f.push("timestamp <= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            ApiError::invalid_field("limit", format!("must be between 1 and {MAX_LIMIT}")).into(),
        );
    }
    let offset = p.offset.unwrap_or(0);
    if !(0..=MAX_OFFSET).contains(&offset) {
        return Err(ApiError::invalid_field(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}"),
        )
        .into());
    }
    let ch = &state.0.ch;
    // The total and the page are independent reads: run them at once.
    let total = f
        .apply(ch.query(&format!("SELECT count() FROM logs FINAL WHERE {}", f.sql())))
        .fetch_one::<u64>();
    let rows = f
        .apply(ch.query(&format!(
            "SELECT {LOG_COLUMNS} FROM logs FINAL WHERE {} ORDER BY timestamp DESC, log_id DESC LIMIT ? OFFSET ?",
            f.sql()
        )))
        .bind(limit)
        .bind(offset)
        .fetch_all::<LogRow>();
    let (total, rows) = tokio::try_join!(total, rows)?;
    Ok(Json(json!({
        "total": total,
        "limit": limit,
        "offset": offset,
        "logs": rows.iter().map(log_json).collect::<Vec<_>>(),
    })))
}
