//! `/agents`: list with summary statistics, detail, daily stats, run history.
//! Read-only; agents are created by ingestion.

use super::page_params;
use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::rollup::{self, Grouping, Scope, Totals};
use crate::telemetry_store::{
    cost_total, fmt_us, fmt_us_opt, percent, rounded_ms, usd_number, usd_string,
};
use crate::AppState;
use agentvista_shared::error::ApiError;
use axum::extract::{Path, State};
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[derive(Row, Deserialize)]
struct AgentRow {
    #[serde(with = "clickhouse::serde::uuid")]
    agent_id: Uuid,
    name: String,
    created_us: i64,
}

/// An agent with its all-time totals (from the run rollup).
struct AgentSummary {
    agent: AgentRow,
    totals: Option<Totals>,
}

/// Agents of the organization (one, or all), by name.
async fn agent_rows(state: &AppState, org_id: Uuid, one: Option<Uuid>) -> AppResult<Vec<AgentRow>> {
    let filter = if one.is_some() {
        "AND agent_id = toUUID(?)"
    } else {
        ""
    };
    let mut q = state
        .0
        .ch
        .query(&format!(
            "SELECT agent_id, argMin(name, created_at) AS name, \
                    toInt64(toUnixTimestamp64Micro(min(created_at))) AS created_us \
             FROM agents WHERE org_id = toUUID(?) {filter} GROUP BY agent_id ORDER BY name, agent_id"
        ))
        .bind(org_id.to_string());
    if let Some(a) = one {
        q = q.bind(a.to_string());
    }
    Ok(q.fetch_all().await?)
}

/// An agent id from a path: anything but a UUID is an unknown agent.
fn agent_id_param(agent_id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(agent_id).map_err(|_| ApiError::not_found("Agent"))
}

/// One agent of the organization, or 404.
async fn agent_row(state: &AppState, org_id: Uuid, agent_id: &str) -> AppResult<AgentRow> {
    agent_rows(state, org_id, Some(agent_id_param(agent_id)?))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("Agent").into())
}

/// Agents of the organization (one, or all), by name, with their totals.
async fn summaries(
    state: &AppState,
    org_id: Uuid,
    one: Option<Uuid>,
) -> AppResult<Vec<AgentSummary>> {
    let ch = &state.0.ch;
    let only = one.map(|a| [a]);
    let scope = Scope {
        org_id,
        agents: only.as_ref().map(|a| &a[..]),
        start_us: None,
        end_us: None,
    };
    // The agents and their totals are read at once.
    let totals = async {
        rollup::cells(ch, &scope)
            .await?
            .totals(ch, Grouping::Agent)
            .await
    };
    let (agents, totals) = tokio::try_join!(agent_rows(state, org_id, one), totals)?;
    let mut totals: HashMap<Uuid, Totals> = totals.into_iter().map(|t| (t.agent_id, t)).collect();
    Ok(agents
        .into_iter()
        .map(|agent| AgentSummary {
            totals: totals.remove(&agent.agent_id),
            agent,
        })
        .collect())
}

fn summary_json(s: &AgentSummary) -> Value {
    let t = s.totals.as_ref().filter(|t| t.runs > 0);
    json!({
        "id": s.agent.agent_id,
        "name": s.agent.name,
        "total_runs": t.map_or(0, |t| t.runs),
        "success_rate": t.map_or(Value::Null, |t| percent(t.successful, t.with_signal)),
        "total_cost": t.map_or(Value::Null, |t| cost_total(t.cost_runs, t.cost_nanos)),
        "avg_cost_per_run": t.filter(|t| t.completed_cost_runs > 0).map_or(Value::Null, |t| {
            usd_number(t.completed_cost_nanos / i128::from(t.completed_cost_runs))
        }),
        "last_run_at": t.map_or(Value::Null, |t| json!(fmt_us(t.last_run_us))),
        "created_at": fmt_us(s.agent.created_us),
    })
}

/// `GET /agents`: every agent of the organization, by name.
pub async fn list(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    let p = principal.reader()?;
    let agents = summaries(&state, p.org_id, None).await?;
    Ok(Json(Value::Array(
        agents.iter().map(summary_json).collect(),
    )))
}

/// One agent with its totals, or 404.
async fn load_agent(state: &AppState, org_id: Uuid, agent_id: &str) -> AppResult<AgentSummary> {
    summaries(state, org_id, Some(agent_id_param(agent_id)?))
        .await?
        .pop()
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
    let summary = load_agent(&state, p.org_id, &agent_id).await?;
    let mut body = summary_json(&summary);
    let t = summary.totals.as_ref();
    let count = |f: fn(&Totals) -> u64| t.map_or(0, f);
    body["successful_runs"] = json!(count(|t| t.successful));
    body["failed_runs"] = json!(count(|t| t.unsuccessful));
    body["runs_without_signal"] = json!(count(|t| t.runs - t.with_signal));
    body["p95_duration_ms"] = t
        .and_then(|t| t.completed_duration_quantile(1))
        .map_or(Value::Null, |v| json!(v.round() as i64));
    let mut outcomes: Vec<(String, u64)> = t.map(|t| t.outcomes.clone()).unwrap_or_default();
    outcomes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    body["outcomes"] = Value::Object(outcomes.into_iter().map(|(o, n)| (o, json!(n))).collect());
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct StatsParams {
    days: Option<String>,
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
    let agent = agent_row(&state, p.org_id, &agent_id).await?;
    let days: i64 = match params.days.as_deref() {
        Some("30") => 30,
        Some("90") => 90,
        _ => 7,
    };
    let today = OffsetDateTime::now_utc().date();
    let first = today - Duration::days(days - 1);
    let first_us = first.midnight().assume_utc().unix_timestamp() * 1_000_000;
    let ch = &state.0.ch;
    let ids = [agent.agent_id];
    let scope = Scope {
        org_id: p.org_id,
        agents: Some(&ids),
        start_us: Some(first_us),
        end_us: None,
    };
    let rows = rollup::cells(ch, &scope)
        .await?
        .totals(ch, Grouping::AgentDay)
        .await?;
    let series: Vec<Value> = (0..days)
        .map(|i| {
            let date = first + Duration::days(i);
            let day_no = rollup::day_number(date);
            let r = rows.iter().find(|r| i64::from(r.day) == day_no);
            json!({
                "date": date.to_string(),
                "runs": r.map_or(0, |r| r.runs),
                "successful_runs": r.map_or(0, |r| r.successful),
                "failed_runs": r.map_or(0, |r| r.unsuccessful),
                "error_runs": r.map_or(0, |r| r.failed_status),
                "success_rate": r.map_or(Value::Null, |r| percent(r.successful, r.with_signal)),
                "total_cost": r.map_or(Value::Null, |r| cost_total(r.cost_runs, r.cost_nanos)),
                "total_tokens": r.map_or(0, |r| r.tokens),
                "avg_duration_ms": rounded_ms(r.and_then(Totals::avg_duration_ms)),
                "p95_duration_ms": rounded_ms(r.and_then(|r| r.duration_quantile(1))),
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
    let agent_id = agent_row(&state, p.org_id, &agent_id).await?.agent_id;
    let (org, agent) = (p.org_id.to_string(), agent_id.to_string());
    let (page, size) = page_params(params.page, params.page_size, 20, 100)?;
    let ch = &state.0.ch;
    // The total and the page are independent reads: run them at once.
    let total = ch
        .query("SELECT count() FROM traces FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?)")
        .bind(&org)
        .bind(&agent)
        .fetch_one::<u64>();
    let rows = ch
        .query(&format!(
            "SELECT {RUN_COLUMNS} FROM traces FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?) \
             ORDER BY started_at DESC, trace_id DESC LIMIT ? OFFSET ?"
        ))
        .bind(&org)
        .bind(&agent)
        .bind(size)
        .bind((page - 1) * size)
        .fetch_all::<RunRow>();
    let (total, rows) = tokio::try_join!(total, rows)?;
    Ok(Json(json!({
        "runs": rows.iter().map(run_json).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": size,
        "has_more": (page * size) < total as i64,
    })))
}
