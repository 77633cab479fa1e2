//! Runs (trace headers), the trace list, one trace with its span tree, and
//! the comparison of agents.

use super::logs::Log;
use super::{attributes, cost_total, percent, rfc3339, rounded_ms, usd_number, usd_string};
use crate::spantree::SpanTree;
use crate::store::run_stats::{self, Totals};
use crate::store::runs::StoredRun;
use crate::store::spans::StoredSpan;
use agentvista_shared::model::{RunStatus, SpanType};
use agentvista_shared::promoted;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// One run of an agent (the trace header).
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    pub trace_id: Uuid,
    pub agent_id: Uuid,
    pub agent_name: String,
    #[schema(value_type = RunStatus)]
    pub status: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// Whether the run achieved its goal (set by the SDK or `PATCH`).
    pub success: Option<bool>,
    pub outcome: Option<String>,
    pub total_tokens: Option<i64>,
    /// Decimal string of US dollars, e.g. `"0.004500"`.
    pub total_cost_usd: Option<String>,
}

impl From<&StoredRun> for Run {
    fn from(r: &StoredRun) -> Self {
        Run {
            trace_id: r.trace_id,
            agent_id: r.agent_id,
            agent_name: r.agent_name.clone(),
            status: r.status.clone(),
            started_at: rfc3339(r.started_at),
            ended_at: r.ended_at.map(rfc3339),
            duration_ms: r.duration_ms,
            success: r.success,
            outcome: r.outcome.clone(),
            total_tokens: r.total_tokens,
            total_cost_usd: r.total_cost.map(usd_string),
        }
    }
}

impl From<&agentvista_shared::model::TraceRecord> for Run {
    /// A run as ingested (the webhook events' `data`).
    fn from(t: &agentvista_shared::model::TraceRecord) -> Self {
        Run {
            trace_id: t.trace_id,
            agent_id: t.agent_id,
            agent_name: t.agent_name.clone(),
            status: t.status.as_str().to_string(),
            started_at: super::fmt_us(t.started_at_us),
            ended_at: t.ended_at_us.map(super::fmt_us),
            duration_ms: t.duration_ms,
            success: t.success,
            outcome: t.outcome.clone(),
            total_tokens: t.total_tokens,
            total_cost_usd: t.total_cost_nanos.map(usd_string),
        }
    }
}

impl Run {
    /// A trace whose spans arrived without any run header, summarized from
    /// its spans: the first span's agent, the earliest start, the latest
    /// end, failed when a span failed, token and cost sums. `spans` is not
    /// empty.
    pub fn summarized(trace_id: Uuid, spans: &[StoredSpan]) -> Option<Self> {
        let first = spans.iter().min_by_key(|s| s.started_at)?;
        let end = spans.iter().filter_map(|s| s.ended_at).max();
        let failed = spans.iter().any(|s| s.status == RunStatus::Failed.as_str());
        Some(Run {
            trace_id,
            agent_id: first.agent_id,
            agent_name: first.agent_name.clone(),
            status: if failed {
                RunStatus::Failed
            } else {
                RunStatus::Completed
            }
            .as_str()
            .to_string(),
            started_at: rfc3339(first.started_at),
            ended_at: end.map(rfc3339),
            duration_ms: end.map(|e| (e - first.started_at).whole_milliseconds() as i64),
            success: None,
            outcome: None,
            total_tokens: spans
                .iter()
                .filter_map(|s| s.total_tokens)
                .reduce(|a, b| a.saturating_add(b)),
            total_cost_usd: spans
                .iter()
                .filter_map(|s| s.cost.map(i128::from))
                .reduce(|a, b| a + b)
                .map(usd_string),
        })
    }
}

/// `GET /dashboard/traces`: one page, newest first by default.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceList {
    pub traces: Vec<Run>,
    /// Runs matching the filters (all pages).
    pub total: u64,
    pub page_size: i64,
    pub has_more: bool,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One span in a trace's tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanNode {
    pub span_id: Uuid,
    pub parent_span_id: Option<Uuid>,
    /// 0 for a root.
    pub depth: usize,
    /// The ids of the span's children, in tree order.
    pub children: Vec<Uuid>,
    pub agent_id: Uuid,
    pub agent_name: String,
    #[serde(rename = "type")]
    #[schema(value_type = SpanType)]
    pub span_type: String,
    /// OTLP span kind; empty for SDK spans.
    pub kind: String,
    /// `sdk` or `otlp`.
    pub source: String,
    pub name: String,
    #[schema(value_type = RunStatus)]
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_usd: Option<String>,
    /// True when the cost was computed from the price table rather than
    /// sent by the client.
    pub cost_computed: bool,
    /// Tokens of the span and all its descendants.
    pub subtree_tokens: i64,
    pub subtree_cost_usd: String,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub resource_attributes: BTreeMap<String, String>,
    /// Instrumentation scope as `name` or `name@version`.
    pub scope: String,
    /// Span events (`time`, `name`, `attributes`), as stored.
    #[schema(value_type = Vec<Object>)]
    pub events: serde_json::Value,
    /// Links to other spans (`trace_id`, `span_id`, `attributes`).
    #[schema(value_type = Vec<Object>)]
    pub links: serde_json::Value,
}

/// `GET /dashboard/traces/{trace_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceDetail {
    pub trace: Run,
    /// The spans in `spans` (at most 10,000 by default:
    /// `AV_TRACE_MAX_SPANS`).
    pub span_count: usize,
    /// The spans the trace holds in all; more than `span_count` when the
    /// trace is larger than one answer holds.
    pub total_spans: u64,
    /// Whether `spans` holds only the trace's first spans (by start):
    /// `total_spans` says how many there are.
    pub truncated: bool,
    /// Depth first from the roots.
    pub spans: Vec<SpanNode>,
    /// Log records linked to the trace, oldest first.
    pub logs: Vec<Log>,
}

impl TraceDetail {
    /// The trace's answer from its run (or `None`: summarized from the
    /// spans), its spans in any order, and its logs.
    pub fn build(
        header: Option<&StoredRun>,
        trace_id: Uuid,
        spans: &[StoredSpan],
        total_spans: u64,
        logs: Vec<Log>,
    ) -> Option<Self> {
        let trace = match header {
            Some(h) => Run::from(h),
            None => Run::summarized(trace_id, spans)?,
        };
        let tree = SpanTree::build(spans.iter().map(|s| (s.span_id, s.parent_span_id)));
        // Subtree roll-ups (128-bit money: a trace's spans may add up
        // beyond 64 bits of nano-dollars).
        let tokens = tree.subtree_sums(
            spans.iter().map(|s| s.total_tokens.unwrap_or(0)),
            i64::saturating_add,
        );
        let costs = tree.subtree_sums(
            spans.iter().map(|s| i128::from(s.cost.unwrap_or(0))),
            |a, b| a + b,
        );
        let nodes = tree
            .order
            .iter()
            .map(|&i| {
                let s = &spans[i];
                SpanNode {
                    span_id: s.span_id,
                    parent_span_id: s.parent_span_id,
                    depth: tree.depth[i],
                    children: tree.children[i].iter().map(|&c| spans[c].span_id).collect(),
                    agent_id: s.agent_id,
                    agent_name: s.agent_name.clone(),
                    span_type: s.span_type.clone(),
                    kind: s.kind.clone(),
                    source: s.source.clone(),
                    name: s.name.clone(),
                    status: s.status.clone(),
                    started_at: rfc3339(s.started_at),
                    ended_at: s.ended_at.map(rfc3339),
                    duration_ms: s.duration_ms,
                    model: s.model.clone(),
                    provider: s.provider.clone(),
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    total_tokens: s.total_tokens,
                    cached_tokens: s.cached_tokens,
                    cost_usd: s.cost.map(usd_string),
                    cost_computed: s.cost_computed,
                    subtree_tokens: tokens[i],
                    subtree_cost_usd: usd_string(costs[i]),
                    input: s.input.clone(),
                    output: s.output.clone(),
                    error: s.error.clone(),
                    attributes: {
                        // Message text stored once: put it back under the
                        // attribute it came in (shared::promoted).
                        let mut a = s.attributes.clone();
                        promoted::restore(&mut a, s.input.as_deref(), s.output.as_deref());
                        attributes(&a)
                    },
                    resource_attributes: attributes(&s.resource_attributes),
                    scope: s.scope.clone(),
                    events: serde_json::from_str(&s.events).unwrap_or_default(),
                    links: serde_json::from_str(&s.links).unwrap_or_default(),
                }
            })
            .collect();
        Some(TraceDetail {
            trace,
            span_count: spans.len(),
            total_spans: total_spans.max(spans.len() as u64),
            truncated: total_spans > spans.len() as u64,
            spans: nodes,
            logs,
        })
    }
}

/// `GET /dashboard/traces/compare`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    /// The window compared (RFC 3339).
    pub start: String,
    pub end: String,
    /// In the order of `agent_ids`.
    pub agents: Vec<AgentComparison>,
}

/// One agent's figures over the compared window.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentComparison {
    pub agent_id: Uuid,
    pub agent_name: Option<String>,
    pub runs: u64,
    /// Percent of runs with a success signal that succeeded.
    pub success_rate: Option<f64>,
    pub failure_rate: Option<f64>,
    /// Percent of runs whose status is `failed`.
    pub error_rate: Option<f64>,
    pub p50_duration_ms: Option<i64>,
    pub p95_duration_ms: Option<i64>,
    pub p99_duration_ms: Option<i64>,
    /// US dollars; null when no run carries a cost.
    pub total_cost: Option<f64>,
    pub avg_cost_per_run: Option<f64>,
    pub total_tokens: i64,
    pub avg_tokens_per_run: Option<f64>,
    /// Runs by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Every UTC day of the window, days without runs included.
    pub daily: Vec<ComparisonDay>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComparisonDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub runs: u64,
    pub success_rate: Option<f64>,
    pub total_cost: Option<f64>,
}

impl AgentComparison {
    /// One agent's comparison from its window totals and its days
    /// (`first_day..=last_day`, day numbers).
    pub fn build(
        agent_id: Uuid,
        agent_name: Option<String>,
        whole: Option<&Totals>,
        daily: &[&Totals],
        days: std::ops::RangeInclusive<i64>,
    ) -> Self {
        let r = whole;
        AgentComparison {
            agent_id,
            agent_name,
            runs: r.map_or(0, |r| r.runs),
            success_rate: r.and_then(|r| percent(r.successful, r.with_signal)),
            failure_rate: r.and_then(|r| percent(r.unsuccessful, r.with_signal)),
            error_rate: r.and_then(|r| percent(r.failed_status, r.runs)),
            p50_duration_ms: rounded_ms(r.and_then(|r| r.duration_quantile(0))),
            p95_duration_ms: rounded_ms(r.and_then(|r| r.duration_quantile(1))),
            p99_duration_ms: rounded_ms(r.and_then(|r| r.duration_quantile(2))),
            total_cost: r.and_then(|r| cost_total(r.cost_runs, r.cost_nanos)),
            avg_cost_per_run: r
                .filter(|r| r.cost_runs > 0)
                .map(|r| usd_number(r.cost_nanos / i128::from(r.cost_runs))),
            total_tokens: r.map_or(0, |r| r.tokens),
            avg_tokens_per_run: r
                .filter(|r| r.runs > 0)
                .map(|r| r.tokens as f64 / r.runs as f64),
            outcomes: r
                .map(|r| r.outcomes.iter().cloned().collect())
                .unwrap_or_default(),
            daily: days
                .map(|day| {
                    let d = daily.iter().find(|d| i64::from(d.day) == day);
                    ComparisonDay {
                        date: run_stats::date_of(day as u16).to_string(),
                        runs: d.map_or(0, |d| d.runs),
                        success_rate: d.and_then(|d| percent(d.successful, d.with_signal)),
                        total_cost: d.and_then(|d| cost_total(d.cost_runs, d.cost_nanos)),
                    }
                })
                .collect(),
        }
    }
}
