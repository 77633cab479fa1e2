//! Log records (`logs` table, and `log_traces` to find a trace's records).

use crate::error::AppResult;
use crate::sql::{self, Bind, Filter};
use agentvista_shared::model::Severity;
use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The most log records one trace detail returns.
pub const MAX_TRACE_LOGS: i64 = 500;

/// A log record as read back.
#[derive(Debug, Row, Deserialize)]
pub struct StoredLog {
    #[serde(with = "clickhouse::serde::uuid")]
    pub log_id: Uuid,
    #[serde(with = "clickhouse::serde::time::datetime64::nanos")]
    pub timestamp: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::nanos")]
    pub observed_timestamp: OffsetDateTime,
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

/// What the log search filters on.
#[derive(Debug, Default)]
pub struct LogFilter {
    pub org_id: Uuid,
    /// Every term occurs in the body (case-insensitive).
    pub terms: Vec<String>,
    pub service_name: Option<String>,
    pub severity: Option<Severity>,
    pub trace_id: Option<Uuid>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
}

impl LogFilter {
    fn to_sql(&self) -> Filter {
        let mut f = Filter::org(self.org_id);
        for term in &self.terms {
            // The LIKE on the lowercased body is what the n-gram index
            // (`idx_body_ngrams`) can answer, skipping granules that cannot
            // hold the term; the position test keeps the exact semantics.
            f.push(
                "lowerUTF8(body) LIKE concat('%', lowerUTF8(?), '%') AND positionCaseInsensitiveUTF8(body, ?) > 0",
                [Bind::Str(sql::like_escape(term)), Bind::Str(term.clone())],
            );
        }
        if let Some(s) = &self.service_name {
            f.push("service_name = ?", [Bind::Str(s.clone())]);
        }
        if let Some(s) = self.severity {
            f.push("severity = ?", [Bind::Str(s.as_str().to_string())]);
        }
        if let Some(t) = self.trace_id {
            f.push("trace_id = toUUID(?)", [Bind::Str(t.to_string())]);
        }
        if let Some(us) = self.start_us {
            f.push("timestamp >= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
        }
        if let Some(us) = self.end_us {
            f.push("timestamp <= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
        }
        f
    }
}

/// The total of matching records and one page, newest first (the two
/// reads run at once).
pub async fn search(
    ch: &clickhouse::Client,
    filter: &LogFilter,
    limit: i64,
    offset: i64,
) -> AppResult<(u64, Vec<StoredLog>)> {
    let f = filter.to_sql();
    let total = f
        .apply(ch.query(&format!("SELECT count() FROM logs FINAL WHERE {}", f.sql())))
        .fetch_one::<u64>();
    let rows = f
        .apply(ch.query(&format!(
            "SELECT ?fields FROM logs FINAL WHERE {} ORDER BY timestamp DESC, log_id DESC LIMIT ? OFFSET ?",
            f.sql()
        )))
        .bind(limit)
        .bind(offset)
        .fetch_all::<StoredLog>();
    Ok(tokio::try_join!(total, rows)?)
}

/// The records linked to a trace (at most [`MAX_TRACE_LOGS`]), oldest
/// first: located through `log_traces`, a table keyed by trace.
pub async fn of_trace(
    ch: &clickhouse::Client,
    org_id: Uuid,
    trace_id: Uuid,
) -> AppResult<Vec<StoredLog>> {
    let (org, tid) = (org_id.to_string(), trace_id.to_string());
    Ok(ch
        .query(
            "SELECT ?fields FROM logs FINAL WHERE org_id = toUUID(?) \
               AND (timestamp, log_id) IN (SELECT timestamp, log_id FROM log_traces \
                                           WHERE org_id = toUUID(?) AND trace_id = toUUID(?)) \
               AND trace_id = toUUID(?) \
             ORDER BY timestamp LIMIT ?",
        )
        .bind(&org)
        .bind(&org)
        .bind(&tid)
        .bind(&tid)
        .bind(MAX_TRACE_LOGS)
        .fetch_all()
        .await?)
}
