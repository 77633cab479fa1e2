//! The JSON of the main responses, pinned (insta snapshots under
//! `views/snapshots/`): a change to a response's shape shows up here as a
//! diff to review, next to the OpenAPI document generated from the same
//! types. Fixture rows are built in code, so no service is needed.

use super::agents::{AgentDetail, AgentStats, AgentSummary, DayStats};
use super::logs::{Log, LogSearch};
use super::metrics::{MetricQuery, Point};
use super::runs::{AgentComparison, Comparison, Run, TraceDetail, TraceList};
use crate::store::agents::StoredAgent;
use crate::store::logs::StoredLog;
use crate::store::metrics::StoredPoint;
use crate::store::run_stats::Totals;
use crate::store::runs::StoredRun;
use crate::store::spans::StoredSpan;
use time::macros::datetime;
use time::Duration;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn run() -> StoredRun {
    StoredRun {
        trace_id: id(1),
        agent_id: id(2),
        agent_name: "support-bot".into(),
        status: "completed".into(),
        started_at: datetime!(2026-11-01 12:00:00.250 UTC),
        ended_at: Some(datetime!(2026-11-01 12:00:01.750 UTC)),
        duration_ms: Some(1500),
        success: Some(true),
        outcome: Some("resolved".into()),
        total_tokens: Some(1200),
        total_cost: Some(4_500_000),
    }
}

fn span(
    n: u128,
    parent: Option<u128>,
    kind: &str,
    tokens: Option<i64>,
    cost: Option<i64>,
) -> StoredSpan {
    let start = datetime!(2026-11-01 12:00:00.250 UTC) + Duration::milliseconds(n as i64 * 10);
    StoredSpan {
        span_id: id(100 + n),
        parent_span_id: parent.map(|p| id(100 + p)),
        agent_id: id(2),
        agent_name: "support-bot".into(),
        span_type: kind.into(),
        name: format!("{kind}-{n}"),
        status: "completed".into(),
        started_at: start,
        ended_at: Some(start + Duration::milliseconds(5)),
        duration_ms: Some(5),
        model: (kind == "llm").then(|| "gpt-4o".into()),
        provider: (kind == "llm").then(|| "openai".into()),
        input_tokens: tokens.map(|t| t / 2),
        output_tokens: tokens.map(|t| t - t / 2),
        total_tokens: tokens,
        cached_tokens: None,
        cost,
        cost_computed: kind == "llm",
        input: Some("\"hello\"".into()),
        output: None,
        error: None,
        attributes: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        resource_attributes: vec![("service.name".into(), "support-bot".into())],
        kind: String::new(),
        source: "sdk".into(),
        scope: String::new(),
        events: "[]".into(),
        links: "[]".into(),
    }
}

fn log() -> StoredLog {
    StoredLog {
        log_id: id(7),
        timestamp: datetime!(2026-11-01 12:00:00.123456789 UTC),
        observed_timestamp: datetime!(2026-11-01 12:00:00.2 UTC),
        severity: "error".into(),
        severity_number: 17,
        severity_text: "ERROR".into(),
        service_name: "support-bot".into(),
        body: "tool call failed".into(),
        trace_id: Some(id(1)),
        span_id: Some(id(102)),
        attributes: vec![("code".into(), "500".into())],
        resource_attributes: vec![],
        scope: "app".into(),
    }
}

fn totals(day: u16) -> Totals {
    Totals {
        agent_id: id(2),
        whole: day == 0,
        day,
        runs: 4,
        successful: 2,
        unsuccessful: 1,
        with_signal: 3,
        failed_status: 1,
        cost_runs: 2,
        cost_nanos: 9_000_000,
        completed_cost_runs: 2,
        completed_cost_nanos: 9_000_000,
        tokens: 4800,
        duration_sum: 6000,
        duration_runs: 4,
        completed_duration_runs: 3,
        last_run_us: 1_793_534_400_000_000,
        durations: vec![1400.0, 2100.0, 2190.0],
        completed_durations: vec![1300.0, 1900.0, 1990.0],
        outcomes: vec![("resolved".into(), 2), ("escalated".into(), 1)],
        outcome_cost_runs: vec![("resolved".into(), 2)],
        outcome_cost_nanos: vec![("resolved".into(), 9_000_000)],
    }
}

#[test]
fn trace_list() {
    let list = TraceList {
        traces: vec![Run::from(&run())],
        total: 51,
        page_size: 1,
        has_more: true,
        next_cursor: Some(format!("1793534400250000_{}", id(1))),
    };
    insta::assert_json_snapshot!(list);
}

#[test]
fn trace_detail_with_its_tree_and_logs() {
    // root -> (llm, tool -> llm); one orphan whose parent is elsewhere.
    let spans = vec![
        span(1, None, "agent", None, None),
        span(2, Some(1), "llm", Some(300), Some(1_500_000)),
        span(3, Some(1), "tool", None, None),
        span(4, Some(3), "llm", Some(900), Some(3_000_000)),
        span(5, Some(99), "custom", None, None),
    ];
    let detail = TraceDetail::build(
        Some(&run()),
        id(1),
        &spans,
        spans.len() as u64,
        vec![Log::from(&log())],
    )
    .unwrap();
    insta::assert_json_snapshot!(detail);
}

#[test]
fn a_trace_without_a_run_is_summarized_from_its_spans() {
    let mut failed = span(2, Some(1), "llm", Some(300), Some(1_500_000));
    failed.status = "failed".into();
    let spans = vec![span(1, None, "agent", Some(10), None), failed];
    let detail = TraceDetail::build(None, id(1), &spans, spans.len() as u64, vec![]).unwrap();
    insta::assert_json_snapshot!(detail.trace);
    assert!(TraceDetail::build(None, id(1), &[], 0, vec![]).is_none());
}

#[test]
fn agents() {
    let agent = StoredAgent {
        agent_id: id(2),
        name: "support-bot".into(),
        created_us: 1_790_000_000_000_000,
    };
    let t = totals(0);
    insta::assert_json_snapshot!("agent_summary", AgentSummary::build(&agent, Some(&t)));
    insta::assert_json_snapshot!("agent_without_runs", AgentSummary::build(&agent, None));
    insta::assert_json_snapshot!("agent_detail", AgentDetail::build(&agent, Some(&t)));
    let stats = AgentStats {
        agent_id: id(2),
        agent_name: "support-bot".into(),
        window: "7d".into(),
        days: vec![
            DayStats::build(time::macros::date!(2026 - 11 - 01), Some(&totals(20758))),
            DayStats::build(time::macros::date!(2026 - 11 - 02), None),
        ],
    };
    insta::assert_json_snapshot!("agent_stats", stats);
    let compare = Comparison {
        start: "2026-11-01T00:00:00Z".into(),
        end: "2026-11-02T23:59:59Z".into(),
        agents: vec![AgentComparison::build(
            id(2),
            Some("support-bot".into()),
            Some(&t),
            &[&totals(20758)],
            20758..=20759,
        )],
    };
    insta::assert_json_snapshot!("comparison", compare);
}

#[test]
fn log_search() {
    let search = LogSearch {
        total: 1,
        limit: 100,
        offset: 0,
        logs: vec![Log::from(&log())],
    };
    insta::assert_json_snapshot!(search);
}

#[test]
fn metric_points_of_every_type() {
    let base = StoredPoint {
        time: datetime!(2026-11-01 12:00:00 UTC),
        start_time: time::OffsetDateTime::UNIX_EPOCH,
        metric_type: String::new(),
        service_name: "support-bot".into(),
        attributes: vec![("route".into(), "/chat".into())],
        value: None,
        temporality: String::new(),
        is_monotonic: false,
        count: None,
        sum: None,
        min: None,
        max: None,
        bucket_counts: vec![],
        explicit_bounds: vec![],
        exp_scale: 0,
        exp_zero_count: 0,
        exp_positive_offset: 0,
        exp_positive_counts: vec![],
        exp_negative_offset: 0,
        exp_negative_counts: vec![],
        quantiles: vec![],
        quantile_values: vec![],
    };
    let points = [
        StoredPoint {
            metric_type: "gauge".into(),
            value: Some(0.5),
            ..base.clone()
        },
        StoredPoint {
            metric_type: "sum".into(),
            value: Some(42.0),
            temporality: "cumulative".into(),
            is_monotonic: true,
            start_time: datetime!(2026-11-01 11:53:20 UTC),
            ..base.clone()
        },
        StoredPoint {
            metric_type: "histogram".into(),
            count: Some(3),
            sum: Some(12.5),
            min: Some(1.0),
            max: Some(9.0),
            bucket_counts: vec![1, 1, 1],
            explicit_bounds: vec![2.0, 5.0],
            temporality: "delta".into(),
            ..base.clone()
        },
        StoredPoint {
            metric_type: "exponential_histogram".into(),
            count: Some(2),
            sum: Some(3.0),
            exp_scale: 2,
            exp_zero_count: 1,
            exp_positive_offset: -1,
            exp_positive_counts: vec![1],
            temporality: "delta".into(),
            ..base.clone()
        },
        StoredPoint {
            metric_type: "summary".into(),
            count: Some(10),
            sum: Some(100.0),
            quantiles: vec![0.5, 0.99],
            quantile_values: vec![9.0, 20.0],
            ..base.clone()
        },
    ];
    let answer = MetricQuery {
        name: "llm.latency".into(),
        metric_type: "gauge".into(),
        unit: "ms".into(),
        description: "Latency".into(),
        points: Some(points.iter().map(Point::from).collect()),
        step: None,
        agg: None,
        buckets: None,
    };
    insta::assert_json_snapshot!(answer);
}

#[test]
fn prompt_version_and_comparison() {
    use super::prompts::{Prompt, PromptComparison, VersionComparison};
    use crate::store::prompt_stats::VersionTotals;
    use crate::store::prompts::StoredPrompt;
    let version = |v: i32, active: bool| StoredPrompt {
        id: id(40 + v as u128),
        name: "classify-intent".into(),
        version: v,
        template_text: format!("v{v}: classify {{{{inquiry}}}} for {{{{ customer.tier }}}}"),
        description: (v == 2).then(|| "adds escalation".into()),
        is_active: active,
        created_at: datetime!(2026-11-01 12:00:00 UTC) + Duration::days(i64::from(v)),
        variables: None,
    };
    insta::assert_json_snapshot!("prompt_version", Prompt::from(version(2, true)));
    let totals = VersionTotals {
        prompt_version: 2,
        runs: 3,
        successful: 2,
        unsuccessful: 1,
        with_signal: 3,
        failed_status: 1,
        cost_runs: 2,
        cost_nanos: 9_000_000,
        tokens: 3_001,
        duration_sum: 4_500,
        duration_runs: 3,
        durations: vec![1_500.0, 2_400.0],
        first_us: 1_761_998_400_000_000,
        last_us: 1_762_084_800_500_000,
        outcomes: vec![("escalated".into(), 1), ("resolved".into(), 2)],
    };
    let answer = PromptComparison {
        name: "classify-intent".into(),
        start: None,
        end: Some("2026-11-30T00:00:00Z".into()),
        versions: vec![
            VersionComparison::build(&version(2, true), Some(&totals)),
            VersionComparison::build(&version(1, false), None),
        ],
    };
    insta::assert_json_snapshot!("prompt_comparison", answer);
}
