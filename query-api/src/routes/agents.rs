//! `/agents`: list with summary statistics, detail, daily stats, run history.
//! Read-only; agents are created by ingestion.

use super::clamp_page;
use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::telemetry_store::{fmt_us, fmt_us_opt, percent, usd_number, usd_string};
use crate::AppState;
use agentvista_shared::error::ApiError;
use axum::extract::{Path, State};
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[derive(Row, Deserialize)]
struct AgentSummaryRow {
    #[serde(with = "clickhouse::serde::uuid")]
    agent_id: Uuid,
    name: String,
    created_us: i64,
    total_runs: u64,
    successful: u64,
    unsuccessful: u64,
    with_signal: u64,
    cost_known: u64,
    cost_total_nanos: i64,
    completed_cost_runs: u64,
    cost_completed_nanos: i64,
    last_run_us: i64,
    p95_ms: f64,
}

const SUMMARY_SQL: &str = "
SELECT a.agent_id, a.name, a.created_us,
       s.total_runs, s.successful, s.unsuccessful, s.with_signal, s.cost_known,
       s.cost_total_nanos, s.completed_cost_runs, s.cost_completed_nanos, s.last_run_us, s.p95_ms
FROM (
    SELECT agent_id, argMin(name, created_at) AS name, toInt64(toUnixTimestamp64Micro(min(created_at))) AS created_us
    FROM agents WHERE org_id = toUUID(?) {agent_filter} GROUP BY agent_id
) AS a
LEFT JOIN (
    SELECT agent_id,
           count() AS total_runs,
           countIf(success = true) AS successful,
           countIf(success = false) AS unsuccessful,
           countIf(isNotNull(success)) AS with_signal,
           countIf(isNotNull(total_cost)) AS cost_known,
           toInt64(sum(ifNull(total_cost, 0)) * 1000000000) AS cost_total_nanos,
           countIf(status = 'completed' AND isNotNull(total_cost)) AS completed_cost_runs,
           toInt64(sumIf(ifNull(total_cost, 0), status = 'completed') * 1000000000) AS cost_completed_nanos,
           toInt64(toUnixTimestamp64Micro(max(started_at))) AS last_run_us,
           toFloat64(ifNull(quantileIf(0.95)(duration_ms, status = 'completed'), nan)) AS p95_ms
    FROM traces FINAL WHERE org_id = toUUID(?) {agent_filter} GROUP BY agent_id
) AS s ON s.agent_id = a.agent_id
ORDER BY a.name
";

fn summary_sql(one_agent: bool) -> String {
    SUMMARY_SQL.replace(
        "{agent_filter}",
        if one_agent {
            "AND agent_id = toUUID(?)"
        } else {
            ""
        },
    )
}

fn summary_json(r: &AgentSummaryRow) -> Value {
    let has_runs = r.total_runs > 0;
    json!({
        "id": r.agent_id,
        "name": r.name,
        "total_runs": r.total_runs,
        "success_rate": percent(r.successful, r.with_signal),
        "total_cost": if r.cost_known > 0 { usd_number(r.cost_total_nanos) } else { Value::Null },
        "avg_cost_per_run": if r.completed_cost_runs > 0 {
            usd_number(r.cost_completed_nanos / r.completed_cost_runs as i64)
        } else { Value::Null },
        "last_run_at": if has_runs { json!(fmt_us(r.last_run_us)) } else { Value::Null },
        "created_at": fmt_us(r.created_us),
    })
}

/// `GET /agents`: every agent of the organization, by name.
pub async fn list(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    let p = principal.reader()?;
    let org = p.org_id.to_string();
    let rows: Vec<AgentSummaryRow> = state
        .0
        .ch
        .query(&summary_sql(false))
        .bind(&org)
        .bind(&org)
        .fetch_all()
        .await?;
    Ok(Json(Value::Array(rows.iter().map(summary_json).collect())))
}

async fn load_agent(state: &AppState, org_id: Uuid, agent_id: &str) -> AppResult<AgentSummaryRow> {
    let agent_id = Uuid::parse_str(agent_id).map_err(|_| ApiError::not_found("Agent"))?;
    let (org, agent) = (org_id.to_string(), agent_id.to_string());
    state
        .0
        .ch
        .query(&summary_sql(true))
        .bind(&org)
        .bind(&agent)
        .bind(&org)
        .bind(&agent)
        .fetch_optional::<AgentSummaryRow>()
        .await?
        .ok_or_else(|| ApiError::not_found("Agent").into())
}

/// `GET /agents/{agent_id}`: the summary plus run counts by success and
/// outcome, and p95 latency of completed runs.
pub async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
) -> AppResult<Json<Value>> {
    let p = principal.reader()?;
    let row = load_agent(&state, p.org_id, &agent_id).await?;
    let outcomes: Vec<(String, u64)> = state
        .0
        .ch
        .query(
            "SELECT assumeNotNull(outcome), count() FROM traces FINAL \
             WHERE org_id = toUUID(?) AND agent_id = toUUID(?) AND isNotNull(outcome) \
             GROUP BY outcome ORDER BY count() DESC, outcome",
        )
        .bind(p.org_id.to_string())
        .bind(row.agent_id.to_string())
        .fetch_all()
        .await?;
    let mut body = summary_json(&row);
    body["successful_runs"] = json!(row.successful);
    body["failed_runs"] = json!(row.unsuccessful);
    body["runs_without_signal"] = json!(row.total_runs - row.with_signal);
    body["p95_duration_ms"] = if row.p95_ms.is_finite() {
        json!(row.p95_ms.round() as i64)
    } else {
        Value::Null
    };
    body["outcomes"] = Value::Object(outcomes.into_iter().map(|(o, n)| (o, json!(n))).collect());
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct StatsParams {
    days: Option<String>,
}

#[derive(Row, Deserialize)]
struct DayRow {
    day: u16,
    runs: u64,
    successful: u64,
    unsuccessful: u64,
    with_signal: u64,
    failed_status: u64,
    cost_nanos: i64,
    tokens: i64,
    avg_ms: f64,
    p95_ms: f64,
}

/// `GET /agents/{agent_id}/stats?days=7|30|90`: one entry per UTC day of the
/// window, oldest first, days without runs included with zeros. Any other
/// `days` value is treated as 7.
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    Query(params): Query<StatsParams>,
) -> AppResult<Json<Value>> {
    let p = principal.reader()?;
    let agent = load_agent(&state, p.org_id, &agent_id).await?;
    let days: i64 = match params.days.as_deref() {
        Some("30") => 30,
        Some("90") => 90,
        _ => 7,
    };
    let today = OffsetDateTime::now_utc().date();
    let first = today - Duration::days(days - 1);
    let first_us = first.midnight().assume_utc().unix_timestamp() * 1_000_000;
    let rows: Vec<DayRow> = state
        .0
        .ch
        .query(
            "SELECT toUInt16(toDate(started_at)) AS day, count() AS runs, \
                    countIf(success = true) AS successful, countIf(success = false) AS unsuccessful, \
                    countIf(isNotNull(success)) AS with_signal, countIf(status = 'failed') AS failed_status, \
                    toInt64(sum(ifNull(total_cost, 0)) * 1000000000) AS cost_nanos, \
                    toInt64(sum(ifNull(total_tokens, 0))) AS tokens, \
                    toFloat64(ifNull(avg(duration_ms), nan)) AS avg_ms, \
                    toFloat64(ifNull(quantile(0.95)(duration_ms), nan)) AS p95_ms \
             FROM traces FINAL \
             WHERE org_id = toUUID(?) AND agent_id = toUUID(?) AND started_at >= fromUnixTimestamp64Micro(?) \
             GROUP BY day ORDER BY day",
        )
        .bind(p.org_id.to_string())
        .bind(agent.agent_id.to_string())
        .bind(first_us)
        .fetch_all()
        .await?;
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).expect("valid date");
    let series: Vec<Value> = (0..days)
        .map(|i| {
            let date = first + Duration::days(i);
            let day_no = (date - epoch).whole_days() as u16;
            let r = rows.iter().find(|r| r.day == day_no);
            let num = |v: f64| {
                if v.is_finite() {
                    json!(v.round() as i64)
                } else {
                    Value::Null
                }
            };
            json!({
                "date": date.to_string(),
                "runs": r.map_or(0, |r| r.runs),
                "successful_runs": r.map_or(0, |r| r.successful),
                "failed_runs": r.map_or(0, |r| r.unsuccessful),
                "error_runs": r.map_or(0, |r| r.failed_status),
                "success_rate": r.map_or(Value::Null, |r| percent(r.successful, r.with_signal)),
                "total_cost": usd_number(r.map_or(0, |r| r.cost_nanos)),
                "total_tokens": r.map_or(0, |r| r.tokens),
                "avg_duration_ms": r.map_or(Value::Null, |r| num(r.avg_ms)),
                "p95_duration_ms": r.map_or(Value::Null, |r| num(r.p95_ms)),
            })
        })
        .collect();
    Ok(Json(json!({
        "agent_id": agent.agent_id,
        "agent_name": agent.name,
        "window": format!("{days}d"),
        "days": series,
    })))
}

#[derive(Deserialize)]
pub struct RunsParams {
    page: Option<i64>,
    page_size: Option<i64>,
}

#[derive(Row, Deserialize)]
pub struct RunRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub trace_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub agent_name: String,
    pub status: String,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub duration_ms: Option<i64>,
    pub success: Option<bool>,
    pub outcome: Option<String>,
    pub total_tokens: Option<i64>,
    pub total_cost: Option<i64>,
}

pub const RUN_COLUMNS: &str = "trace_id, agent_id, agent_name, status, toUnixTimestamp64Micro(started_at) AS started_us, \
    toUnixTimestamp64Micro(ended_at) AS ended_us, duration_ms, success, outcome, total_tokens, total_cost";

pub fn run_json(r: &RunRow) -> Value {
    json!({
        "trace_id": r.trace_id,
        "agent_id": r.agent_id,
        "agent_name": r.agent_name,
        "status": r.status,
        "started_at": fmt_us(r.started_us),
        "ended_at": fmt_us_opt(r.ended_us),
        "duration_ms": r.duration_ms,
        "success": r.success,
        "outcome": r.outcome,
        "total_tokens": r.total_tokens,
        "total_cost_usd": usd_string(r.total_cost),
    })
}

/// `GET /agents/{agent_id}/runs`: newest first; `page` from 1, `page_size`
/// clamped to 1..=100 (default 20).
pub async fn runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    Query(params): Query<RunsParams>,
) -> AppResult<Json<Value>> {
    let p = principal.reader()?;
    let agent_id = Uuid::parse_str(&agent_id).map_err(|_| ApiError::not_found("Agent"))?;
    let (org, agent) = (p.org_id.to_string(), agent_id.to_string());
    let exists: u64 = state
        .0
        .ch
        .query("SELECT count() FROM agents WHERE org_id = toUUID(?) AND agent_id = toUUID(?)")
        .bind(&org)
        .bind(&agent)
        .fetch_one()
        .await?;
    if exists == 0 {
        return Err(ApiError::not_found("Agent").into());
    }
    let (page, size) = clamp_page(params.page, params.page_size, 20, 100);
    let total: u64 = state
        .0
        .ch
        .query("SELECT count() FROM traces FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?)")
        .bind(&org)
        .bind(&agent)
        .fetch_one()
        .await?;
    let rows: Vec<RunRow> = state
        .0
        .ch
        .query(&format!(
            "SELECT {RUN_COLUMNS} FROM traces FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?) \
             ORDER BY started_at DESC, trace_id DESC LIMIT ? OFFSET ?"
        ))
        .bind(&org)
        .bind(&agent)
        .bind(size)
        .bind((page - 1) * size)
        .fetch_all()
        .await?;
    Ok(Json(json!({
        "runs": rows.iter().map(run_json).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": size,
        "has_more": (page * size) < total as i64,
    })))
}
