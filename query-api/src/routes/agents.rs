//! `/agents`: list with summary statistics, detail, daily stats, run history.
//! Read-only; agents are created by ingestion.

use super::page_params;
use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::store::run_stats::{self, Grouping, Scope, Totals};
use crate::store::{agents, runs};
use crate::views::agents::{
    AgentDaily, AgentDetail, AgentRuns, AgentStats, AgentSummary, AgentsDaily, DayStats,
};
use crate::views::runs::Run;
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody};
use axum::extract::{Path, State};
use serde::Deserialize;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use utoipa::IntoParams;
use uuid::Uuid;

/// An agent id from a path: anything but a UUID is an unknown agent.
fn agent_id_param(agent_id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(agent_id).map_err(|_| ApiError::not_found("Agent"))
}

/// One agent of the organization, or 404.
async fn agent(state: &AppState, org_id: Uuid, agent_id: &str) -> AppResult<agents::StoredAgent> {
    agents::get(&state.0.ch, org_id, agent_id_param(agent_id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("Agent").into())
}

/// All-time totals per agent (from the run rollup).
async fn all_time(
    state: &AppState,
    org_id: Uuid,
    only: Option<&[Uuid]>,
) -> AppResult<HashMap<Uuid, Totals>> {
    let ch = &state.0.ch;
    let scope = Scope {
        org_id,
        agents: only,
        start_us: None,
        end_us: None,
    };
    let totals = run_stats::cells(ch, &scope)
        .await?
        .totals(ch, Grouping::Agent)
        .await?;
    Ok(totals.into_iter().map(|t| (t.agent_id, t)).collect())
}

/// Every agent of the organization, by name, with all-time totals.
#[utoipa::path(operation_id = "agents_list", get, path = "/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentSummary>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<AgentSummary>>> {
    let p = principal.reader()?;
    // The agents and their totals are read at once.
    let (agents, totals) = tokio::try_join!(
        agents::list(&state.0.ch, p.org_id, None),
        all_time(&state, p.org_id, None)
    )?;
    Ok(Json(
        agents
            .iter()
            .map(|a| AgentSummary::build(a, totals.get(&a.agent_id)))
            .collect(),
    ))
}

/// One agent: the summary plus run counts by success and outcome, and the
/// p95 latency of completed runs.
#[utoipa::path(operation_id = "agents_detail", get, path = "/agents/{agent_id}", tag = "agents",
    params(("agent_id" = Uuid, Path, description = "The agent id")),
    responses((status = 200, body = AgentDetail), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
) -> AppResult<Json<AgentDetail>> {
    let p = principal.reader()?;
    let id = agent_id_param(&agent_id)?;
    let only = [id];
    let (agent, totals) = tokio::try_join!(
        agents::get(&state.0.ch, p.org_id, id),
        all_time(&state, p.org_id, Some(&only))
    )?;
    let agent = agent.ok_or_else(|| ApiError::not_found("Agent"))?;
    Ok(Json(AgentDetail::build(&agent, totals.get(&id))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `7` (default), `30` or `90`; any other value is treated as 7.
    days: Option<String>,
}

/// The window of `days` (7, 30 or 90; anything else is 7): its length and
/// first UTC day, today being the last.
fn stats_window(days: Option<&str>) -> (i64, time::Date) {
    let days: i64 = match days {
        Some("30") => 30,
        Some("90") => 90,
        _ => 7,
    };
    (
        days,
        OffsetDateTime::now_utc().date() - Duration::days(days - 1),
    )
}

fn midnight_us(date: time::Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1_000_000
}

/// Every agent's runs, success rate and cost per UTC day of the window, in
/// columns (for the overview's sparklines): one read for all agents.
#[utoipa::path(operation_id = "agents_daily", get, path = "/agents/daily", tag = "agents",
    params(StatsParams),
    responses((status = 200, body = AgentsDaily), (status = 401, body = ErrorBody)))]
pub async fn daily(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<StatsParams>,
) -> AppResult<Json<AgentsDaily>> {
    let p = principal.reader()?;
    let (days, first) = stats_window(params.days.as_deref());
    let ch = &state.0.ch;
    let scope = Scope {
        org_id: p.org_id,
        agents: None,
        start_us: Some(midnight_us(first)),
        end_us: None,
    };
    let (agents, rows) = tokio::try_join!(agents::list(ch, p.org_id, None), async {
        run_stats::cells(ch, &scope)
            .await?
            .totals(ch, Grouping::AgentDay)
            .await
    })?;
    let mut by_agent: HashMap<Uuid, Vec<&Totals>> = HashMap::new();
    for r in rows.iter().filter(|r| r.runs > 0) {
        by_agent.entry(r.agent_id).or_default().push(r);
    }
    let first_day = run_stats::day_number(first);
    let len = usize::try_from(days).unwrap_or(7);
    Ok(Json(AgentsDaily {
        window: format!("{days}d"),
        first_day: first.to_string(),
        agents: agents
            .iter()
            .filter_map(|a| {
                let rows = by_agent.get(&a.agent_id)?;
                Some(AgentDaily::build(
                    a.agent_id,
                    a.name.clone(),
                    first_day,
                    len,
                    rows,
                ))
            })
            .collect(),
    }))
}

/// Daily statistics: one entry per UTC day of the window, oldest first,
/// days without runs included with zeros.
#[utoipa::path(operation_id = "agents_stats", get, path = "/agents/{agent_id}/stats", tag = "agents",
    params(("agent_id" = Uuid, Path, description = "The agent id"), StatsParams),
    responses((status = 200, body = AgentStats), (status = 404, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    Query(params): Query<StatsParams>,
) -> AppResult<Json<AgentStats>> {
    let p = principal.reader()?;
    let agent = agent(&state, p.org_id, &agent_id).await?;
    let (days, first) = stats_window(params.days.as_deref());
    let ch = &state.0.ch;
    let ids = [agent.agent_id];
    let scope = Scope {
        org_id: p.org_id,
        agents: Some(&ids),
        start_us: Some(midnight_us(first)),
        end_us: None,
    };
    let rows = run_stats::cells(ch, &scope)
        .await?
        .totals(ch, Grouping::AgentDay)
        .await?;
    let series = (0..days)
        .map(|i| {
            let date = first + Duration::days(i);
            let day = run_stats::day_number(date);
            DayStats::build(date, rows.iter().find(|r| i64::from(r.day) == day))
        })
        .collect();
    Ok(Json(AgentStats {
        agent_id: agent.agent_id,
        agent_name: agent.name,
        window: format!("{days}d"),
        days: series,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// From 1 (default) to 10000.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i64>,
    /// Clamped to 1..=100 (default 20).
    page_size: Option<i64>,
}

/// The agent's runs, newest first.
#[utoipa::path(operation_id = "agents_runs", get, path = "/agents/{agent_id}/runs", tag = "agents",
    params(("agent_id" = Uuid, Path, description = "The agent id"), RunsParams),
    responses((status = 200, body = AgentRuns), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    Query(params): Query<RunsParams>,
) -> AppResult<Json<AgentRuns>> {
    let p = principal.reader()?;
    let agent_id = agent(&state, p.org_id, &agent_id).await?.agent_id;
    let (page, size) = page_params(params.page, params.page_size, 20, 100)?;
    let (total, rows) = runs::of_agent(&state.0.ch, p.org_id, agent_id, page, size).await?;
    Ok(Json(AgentRuns {
        runs: rows.iter().map(Run::from).collect(),
        total,
        page,
        page_size: size,
        has_more: (page * size) < total as i64,
    }))
}
