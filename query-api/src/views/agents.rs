//! Agents: summaries with all-time totals, the detail, daily statistics
//! and the run history.

use super::runs::Run;
use super::{cost_total, fmt_us, percent, rounded_ms, usd_number};
use crate::store::agents::StoredAgent;
use crate::store::run_stats::Totals;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// An agent with its all-time totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSummary {
    pub id: Uuid,
    pub name: String,
    pub total_runs: u64,
    /// Percent of runs with a success signal that succeeded.
    pub success_rate: Option<f64>,
    /// US dollars; null when no run carries a cost.
    pub total_cost: Option<f64>,
    /// Over completed runs with a cost.
    pub avg_cost_per_run: Option<f64>,
    /// p95 duration of completed runs.
    pub p95_duration_ms: Option<i64>,
    pub last_run_at: Option<String>,
    pub created_at: String,
}

impl AgentSummary {
    pub fn build(agent: &StoredAgent, totals: Option<&Totals>) -> Self {
        let t = totals.filter(|t| t.runs > 0);
        AgentSummary {
            id: agent.agent_id,
            name: agent.name.clone(),
            total_runs: t.map_or(0, |t| t.runs),
            success_rate: t.and_then(|t| percent(t.successful, t.with_signal)),
            total_cost: t.and_then(|t| cost_total(t.cost_runs, t.cost_nanos)),
            avg_cost_per_run: t
                .filter(|t| t.completed_cost_runs > 0)
                .map(|t| usd_number(t.completed_cost_nanos / i128::from(t.completed_cost_runs))),
            p95_duration_ms: rounded_ms(t.and_then(|t| t.completed_duration_quantile(1))),
            last_run_at: t.map(|t| fmt_us(t.last_run_us)),
            created_at: fmt_us(agent.created_us),
        }
    }
}

/// `GET /agents/{agent_id}`: the summary plus run counts by success and
/// outcome, and the p95 latency of completed runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDetail {
    #[serde(flatten)]
    pub summary: AgentSummary,
    pub successful_runs: u64,
    pub failed_runs: u64,
    pub runs_without_signal: u64,
    /// Runs by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// What each outcome costs: one entry per outcome, most runs first.
    pub cost_by_outcome: Vec<OutcomeCost>,
}

/// The cost of one outcome of an agent's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeCost {
    pub outcome: String,
    /// Runs with this outcome.
    pub runs: u64,
    /// US dollars summed over the runs with this outcome that carry a cost;
    /// null when none does.
    pub total_cost: Option<f64>,
    /// `total_cost` over the runs with this outcome that carry a cost.
    pub avg_cost_per_run: Option<f64>,
}

impl OutcomeCost {
    /// One entry per outcome of `t`, most runs first (then by name).
    pub fn of(t: &Totals) -> Vec<OutcomeCost> {
        let runs_with_cost: BTreeMap<&str, u64> = t
            .outcome_cost_runs
            .iter()
            .map(|(o, n)| (o.as_str(), *n))
            .collect();
        let nanos: BTreeMap<&str, i128> = t
            .outcome_cost_nanos
            .iter()
            .map(|(o, n)| (o.as_str(), *n))
            .collect();
        let mut out: Vec<OutcomeCost> = t
            .outcomes
            .iter()
            .map(|(outcome, runs)| {
                let with_cost = runs_with_cost.get(outcome.as_str()).copied().unwrap_or(0);
                let sum = nanos.get(outcome.as_str()).copied().unwrap_or(0);
                OutcomeCost {
                    outcome: outcome.clone(),
                    runs: *runs,
                    total_cost: cost_total(with_cost, sum),
                    avg_cost_per_run: (with_cost > 0)
                        .then(|| usd_number(sum / i128::from(with_cost))),
                }
            })
            .collect();
        out.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.outcome.cmp(&b.outcome)));
        out
    }
}

impl AgentDetail {
    pub fn build(agent: &StoredAgent, totals: Option<&Totals>) -> Self {
        let count = |f: fn(&Totals) -> u64| totals.map_or(0, f);
        AgentDetail {
            summary: AgentSummary::build(agent, totals),
            successful_runs: count(|t| t.successful),
            failed_runs: count(|t| t.unsuccessful),
            runs_without_signal: count(|t| t.runs - t.with_signal),
            outcomes: totals
                .map(|t| t.outcomes.iter().cloned().collect())
                .unwrap_or_default(),
            cost_by_outcome: totals.map(OutcomeCost::of).unwrap_or_default(),
        }
    }
}

/// `GET /agents/{agent_id}/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentStats {
    pub agent_id: Uuid,
    pub agent_name: String,
    /// `7d`, `30d` or `90d`.
    pub window: String,
    /// One entry per UTC day, oldest first, days without runs included.
    pub days: Vec<DayStats>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayStats {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub runs: u64,
    pub successful_runs: u64,
    pub failed_runs: u64,
    /// Runs whose status is `failed`.
    pub error_runs: u64,
    pub success_rate: Option<f64>,
    pub total_cost: Option<f64>,
    pub total_tokens: i64,
    pub avg_duration_ms: Option<i64>,
    pub p95_duration_ms: Option<i64>,
}

impl DayStats {
    pub fn build(date: time::Date, r: Option<&Totals>) -> Self {
        DayStats {
            date: date.to_string(),
            runs: r.map_or(0, |r| r.runs),
            successful_runs: r.map_or(0, |r| r.successful),
            failed_runs: r.map_or(0, |r| r.unsuccessful),
            error_runs: r.map_or(0, |r| r.failed_status),
            success_rate: r.and_then(|r| percent(r.successful, r.with_signal)),
            total_cost: r.and_then(|r| cost_total(r.cost_runs, r.cost_nanos)),
            total_tokens: r.map_or(0, |r| r.tokens),
            avg_duration_ms: rounded_ms(r.and_then(Totals::avg_duration_ms)),
            p95_duration_ms: rounded_ms(r.and_then(|r| r.duration_quantile(1))),
        }
    }
}

/// `GET /agents/daily`: every agent's daily series over a window, in
/// columns (one value per UTC day, oldest first), for sparklines.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentsDaily {
    /// `7d`, `30d` or `90d`.
    pub window: String,
    /// The window's first day, `YYYY-MM-DD`; the last is today (UTC).
    pub first_day: String,
    /// Agents with at least one run in the window, by name.
    pub agents: Vec<AgentDaily>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDaily {
    pub agent_id: Uuid,
    pub agent_name: String,
    /// Runs per day.
    pub runs: Vec<u64>,
    /// Percent of the day's runs with a success signal that succeeded;
    /// null on a day without one.
    pub success_rate: Vec<Option<f64>>,
    /// US dollars per day; null on a day without a cost.
    pub total_cost: Vec<Option<f64>>,
}

impl AgentDaily {
    /// Columns of `days` values from `first` for an agent's day rows.
    pub fn build(
        agent_id: Uuid,
        agent_name: String,
        first: i64,
        days: usize,
        rows: &[&Totals],
    ) -> Self {
        let mut d = AgentDaily {
            agent_id,
            agent_name,
            runs: vec![0; days],
            success_rate: vec![None; days],
            total_cost: vec![None; days],
        };
        for r in rows {
            let Ok(i) = usize::try_from(i64::from(r.day) - first) else {
                continue;
            };
            if i < days {
                d.runs[i] = r.runs;
                d.success_rate[i] = percent(r.successful, r.with_signal);
                d.total_cost[i] = cost_total(r.cost_runs, r.cost_nanos);
            }
        }
        d
    }
}

/// `GET /agents/{agent_id}/runs`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRuns {
    pub runs: Vec<Run>,
    pub total: u64,
    pub page: i64,
    pub page_size: i64,
    pub has_more: bool,
}
