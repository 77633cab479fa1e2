//! Runs (`traces` table): the filtered, keyset-paginated list, one run, an
//! agent's run history, and the outcome update (a newer row version).

use super::micros;
use crate::error::AppResult;
use crate::sql::{Bind, Filter};
use agentvista_shared::model::{RunStatus, SpanType};
use agentvista_shared::promoted;
use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A run as read back.
#[derive(Debug, Row, Deserialize)]
pub struct StoredRun {
    #[serde(with = "clickhouse::serde::uuid")]
    pub trace_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub agent_name: String,
    pub status: String,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::micros::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub duration_ms: Option<i64>,
    pub success: Option<bool>,
    pub outcome: Option<String>,
    pub total_tokens: Option<i64>,
    /// Nano-dollars (`Decimal64(9)`).
    pub total_cost: Option<i64>,
}

/// What the trace list filters on; every field is optional but the
/// organization.
#[derive(Debug, Default)]
pub struct RunFilter {
    pub org_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub status: Option<RunStatus>,
    /// `Some(None)`: runs without a success signal.
    pub success: Option<Option<bool>>,
    pub outcome: Option<String>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    pub min_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
    /// Span-level: a span of the trace used this model.
    pub model: Option<String>,
    pub span_type: Option<SpanType>,
    /// Span-level: every term occurs in a span name (case-insensitive).
    pub name_terms: Vec<String>,
    /// Span-level: a span or resource attribute equals this value.
    pub attribute: Option<(String, String)>,
}

/// The list's sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSort {
    StartedAt,
    DurationMs,
    TotalCost,
    TotalTokens,
}

impl RunSort {
    pub const NAMES: [&'static str; 4] =
        ["started_at", "duration_ms", "total_cost", "total_tokens"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "started_at" => RunSort::StartedAt,
            "duration_ms" => RunSort::DurationMs,
            "total_cost" => RunSort::TotalCost,
            "total_tokens" => RunSort::TotalTokens,
            _ => return None,
        })
    }

    /// The sort key as SQL; nulls sort as -1 (0 for cost).
    fn sql(self) -> &'static str {
        match self {
            RunSort::StartedAt => "toInt64(toUnixTimestamp64Micro(started_at))",
            RunSort::DurationMs => "ifNull(duration_ms, -1)",
            RunSort::TotalCost => "reinterpretAsInt64(ifNull(total_cost, 0))",
            RunSort::TotalTokens => "ifNull(total_tokens, -1)",
        }
    }

    /// The sort key of a row, as [`RunSort::sql`] computes it.
    pub fn key(self, r: &StoredRun) -> i64 {
        match self {
            RunSort::StartedAt => micros(r.started_at),
            RunSort::DurationMs => r.duration_ms.unwrap_or(-1),
            RunSort::TotalCost => r.total_cost.unwrap_or(0),
            RunSort::TotalTokens => r.total_tokens.unwrap_or(-1),
        }
    }
}

/// A keyset position: the last row's sort key and trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub trace_id: Uuid,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Self> {
        let (key, id) = s.split_once('_')?;
        Some(Cursor {
            key: key.parse().ok()?,
            trace_id: Uuid::parse_str(id).ok()?,
        })
    }

    pub fn after(sort: RunSort, r: &StoredRun) -> String {
        format!("{}_{}", sort.key(r), r.trace_id)
    }
}

/// One page of the list.
pub struct ListQuery {
    pub filter: RunFilter,
    pub sort: RunSort,
    pub descending: bool,
    pub size: i64,
    pub cursor: Option<Cursor>,
}

impl RunFilter {
    /// The `WHERE` of the runs this filter selects.
    fn to_sql(&self) -> Filter {
        let mut f = Filter::org(self.org_id);
        if let Some(a) = self.agent_id {
            f.push("agent_id = toUUID(?)", [Bind::Str(a.to_string())]);
        }
        if let Some(a) = &self.agent_name {
            f.push("agent_name = ?", [Bind::Str(a.clone())]);
        }
        if let Some(s) = self.status {
            f.push("status = ?", [Bind::Str(s.as_str().to_string())]);
        }
        match self.success {
            None => {}
            Some(Some(true)) => f.push("success = true", []),
            Some(Some(false)) => f.push("success = false", []),
            Some(None) => f.push("isNull(success)", []),
        }
        if let Some(o) = &self.outcome {
            f.push("outcome = ?", [Bind::Str(o.clone())]);
        }
        if let Some(us) = self.start_us {
            f.push("started_at >= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
        }
        if let Some(us) = self.end_us {
            f.push("started_at <= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
        }
        if let Some(v) = self.min_duration_ms {
            f.push("duration_ms >= ?", [Bind::Int(v)]);
        }
        if let Some(v) = self.max_duration_ms {
            f.push("duration_ms <= ?", [Bind::Int(v)]);
        }
        let needs_spans = !self.name_terms.is_empty() || self.attribute.is_some();
        if needs_spans {
            // Name and attribute filters need the spans themselves.
            let mut s = Filter::org(self.org_id);
            if let Some(m) = &self.model {
                s.push("model = ?", [Bind::Str(m.clone())]);
            }
            if let Some(t) = self.span_type {
                s.push("span_type = ?", [Bind::Str(t.as_str().to_string())]);
            }
            for term in &self.name_terms {
                s.push(
                    "positionCaseInsensitiveUTF8(name, ?) > 0",
                    [Bind::Str(term.clone())],
                );
            }
            if let Some((k, v)) = &self.attribute {
                // Message text is stored once, in `input`/`output`, with a
                // marker naming the attribute it came in (shared::promoted).
                let mut binds = vec![
                    Bind::Str(k.clone()),
                    Bind::Str(v.clone()),
                    Bind::Str(k.clone()),
                    Bind::Str(v.clone()),
                ];
                let sql = match promoted::stored_as(k) {
                    Some((marker, column)) => {
                        binds.extend([
                            Bind::Str(marker.to_string()),
                            Bind::Str(k.clone()),
                            Bind::Str(v.clone()),
                        ]);
                        format!(
                            "(attributes[?] = ? OR resource_attributes[?] = ? \
                              OR (attributes[?] = ? AND {column} = ?))"
                        )
                    }
                    None => "(attributes[?] = ? OR resource_attributes[?] = ?)".to_string(),
                };
                s.push(&sql, binds);
            }
            f.push_subquery(
                "trace_id IN (SELECT trace_id FROM spans FINAL WHERE {})",
                &s,
            );
        } else if self.model.is_some() || self.span_type.is_some() {
            // Model and span type alone: a key-range read of the per-trace
            // facets rollup instead of every span (migration 0003).
            let mut s = Filter::org(self.org_id);
            if let Some(m) = &self.model {
                s.push("model = ?", [Bind::Str(m.clone())]);
            }
            if let Some(t) = self.span_type {
                s.push("span_type = ?", [Bind::Str(t.as_str().to_string())]);
            }
            f.push_subquery(
                "trace_id IN (SELECT trace_id FROM span_facets WHERE {})",
                &s,
            );
        }
        f
    }
}

/// The total of runs matching the filter, and one page of them (the two
/// reads run at once). The page holds up to `size + 1` rows: one more than
/// asked tells whether there is a next page.
pub async fn list(ch: &clickhouse::Client, q: &ListQuery) -> AppResult<(u64, Vec<StoredRun>)> {
    let f = q.filter.to_sql();
    let total = f
        .apply(ch.query(&format!(
            "SELECT count() FROM traces FINAL WHERE {}",
            f.sql()
        )))
        .fetch_one::<u64>();
    let mut page = f.clone();
    let order = if q.descending { "DESC" } else { "ASC" };
    let sort = q.sort.sql();
    if let Some(c) = q.cursor {
        let cmp = if q.descending { "<" } else { ">" };
        page.push(
            &format!("({sort}, trace_id) {cmp} (?, toUUID(?))"),
            [Bind::Int(c.key), Bind::Str(c.trace_id.to_string())],
        );
    }
    let rows = page
        .apply(ch.query(&format!(
            "SELECT ?fields FROM traces FINAL WHERE {} ORDER BY {sort} {order}, trace_id {order} LIMIT ?",
            page.sql()
        )))
        .bind(q.size + 1)
        .fetch_all::<StoredRun>();
    Ok(tokio::try_join!(total, rows)?)
}

/// One run of the organization.
pub async fn get(
    ch: &clickhouse::Client,
    org_id: Uuid,
    trace_id: Uuid,
) -> AppResult<Option<StoredRun>> {
    Ok(ch
        .query("SELECT ?fields FROM traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)")
        .bind(org_id.to_string())
        .bind(trace_id.to_string())
        .fetch_optional()
        .await?)
}

/// An agent's runs, newest first, by page; with the agent's run total.
pub async fn of_agent(
    ch: &clickhouse::Client,
    org_id: Uuid,
    agent_id: Uuid,
    page: i64,
    size: i64,
) -> AppResult<(u64, Vec<StoredRun>)> {
    let (org, agent) = (org_id.to_string(), agent_id.to_string());
    let total = ch
        .query("SELECT count() FROM traces FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?)")
        .bind(&org)
        .bind(&agent)
        .fetch_one::<u64>();
    let rows = ch
        .query(
            "SELECT ?fields FROM traces FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?) \
             ORDER BY started_at DESC, trace_id DESC LIMIT ? OFFSET ?",
        )
        .bind(&org)
        .bind(&agent)
        .bind(size)
        .bind((page - 1) * size)
        .fetch_all::<StoredRun>();
    Ok(tokio::try_join!(total, rows)?)
}

/// A change to a run's outcome fields: `None` keeps the value, `Some(None)`
/// clears it.
#[derive(Debug, Default)]
pub struct OutcomeUpdate {
    pub success: Option<Option<bool>>,
    pub outcome: Option<Option<String>>,
}

/// Write `update` as a newer version of the run, so that every later read
/// (statistics included) sees it; returns the run as now stored, or `None`
/// when the trace has neither a run nor spans. A trace of spans without a
/// run (an OTLP export without its root span, which reads summarize) gets
/// a run created from its spans as reads summarize them: first span's
/// agent, earliest start, latest end, failed when a span failed, token and
/// cost sums.
pub async fn update_outcome(
    ch: &clickhouse::Client,
    org_id: Uuid,
    trace_id: Uuid,
    update: &OutcomeUpdate,
) -> AppResult<Option<StoredRun>> {
    let (org, tid) = (org_id.to_string(), trace_id.to_string());
    let current: Option<u64> = ch
        .query("SELECT version FROM traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)")
        .bind(&org)
        .bind(&tid)
        .fetch_optional()
        .await?;
    let now = agentvista_shared::window::now_ns();
    let (version, kept, head, tail, from) = match current {
        Some(current) => (
            now.max(current + 1),
            ("success", "outcome"),
            "org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms",
            "total_tokens, total_cost, metadata, retention_days",
            "traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)",
        ),
        None => (
            now,
            ("CAST(NULL AS Nullable(Bool))", "CAST(NULL AS Nullable(String))"),
            "org_id, trace_id, argMin(agent_id, started_at), argMin(agent_name, started_at), \
             if(countIf(status = 'failed') > 0, 'failed', 'completed'), min(started_at), max(ended_at), \
             if(isNull(max(ended_at)), NULL, toInt64(dateDiff('millisecond', min(started_at), assumeNotNull(max(ended_at)))))",
            "if(countIf(isNotNull(total_tokens)) = 0, NULL, sum(ifNull(total_tokens, 0))), \
             if(countIf(isNotNull(cost)) = 0, NULL, toDecimal64(least(sum(ifNull(cost, 0)), 100000000), 9)), \
             map(), max(retention_days)",
            "spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) GROUP BY org_id, trace_id",
        ),
    };
    // The new values are bound; kept ones are copied by the statement.
    let mut binds = Vec::new();
    let success_sql = match update.success {
        None => kept.0,
        Some(v) => {
            binds.push(v.map_or(Bind::Null, Bind::Bool));
            "CAST(? AS Nullable(Bool))"
        }
    };
    let outcome_sql = match &update.outcome {
        None => kept.1,
        Some(v) => {
            binds.push(v.clone().map_or(Bind::Null, Bind::Str));
            "CAST(? AS Nullable(String))"
        }
    };
    let mut f = Filter::default();
    f.bind_more(binds);
    f.apply(ch.query(&format!(
        "INSERT INTO traces (org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms, \
         success, outcome, total_tokens, total_cost, metadata, retention_days, version) \
         SELECT {head}, {success_sql}, {outcome_sql}, {tail}, ? FROM {from}"
    )))
    .bind(version)
    .bind(&org)
    .bind(&tid)
    .execute()
    .await?;
    get(ch, org_id, trace_id).await
}
