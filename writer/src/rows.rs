//! ClickHouse row types and their construction from queue messages.

use agentvista_shared::model::{MetricPoint, SpanRecord, TraceRecord};
use agentvista_shared::prompts;
use agentvista_shared::queue::IngestMessage;
use clickhouse::Row;
use serde::Serialize;
use std::collections::HashSet;
use std::ops::Range;
use uuid::Uuid;

/// The partition (`toYYYYMM` of the event time) a row lands in; inserts are
/// shaped so that none touches more partitions than ClickHouse allows.
pub trait Partitioned {
    /// `YYYYMM`, or 0 for unpartitioned tables.
    fn partition(&self) -> i32;
}

/// `YYYYMM` of a time in microseconds since the epoch (UTC).
pub fn month_of_us(us: i64) -> i32 {
    let days = us.div_euclid(86_400_000_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 100 + month).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

impl Partitioned for TraceRow {
    fn partition(&self) -> i32 {
        month_of_us(self.started_at)
    }
}

impl Partitioned for SpanRow {
    fn partition(&self) -> i32 {
        month_of_us(self.started_at)
    }
}

impl Partitioned for LogRow {
    fn partition(&self) -> i32 {
        month_of_us(self.timestamp.div_euclid(1_000))
    }
}

impl Partitioned for MetricRow {
    fn partition(&self) -> i32 {
        month_of_us(self.time.div_euclid(1_000))
    }
}

impl Partitioned for AgentRow {
    fn partition(&self) -> i32 {
        0
    }
}

impl Partitioned for PromptLinkRow {
    fn partition(&self) -> i32 {
        0
    }
}

/// Where one message's rows sit in a [`Buffer`]: a range per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    pub agents: Range<usize>,
    pub spans: Range<usize>,
    pub logs: Range<usize>,
    pub metrics: Range<usize>,
    pub prompt_links: Range<usize>,
    pub traces: Range<usize>,
}

#[derive(Debug, Row, Serialize)]
pub struct TraceRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub trace_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub agent_name: String,
    pub status: &'static str,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub success: Option<bool>,
    pub outcome: Option<String>,
    pub total_tokens: Option<i64>,
    pub total_cost: Option<i64>,
    pub metadata: Vec<(String, String)>,
    pub retention_days: u16,
    pub version: u64,
}

#[derive(Debug, Row, Serialize)]
pub struct SpanRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub trace_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub span_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub parent_span_id: Option<Uuid>,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub agent_name: String,
    pub span_type: &'static str,
    pub name: String,
    pub status: &'static str,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost: Option<i64>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub retention_days: u16,
    pub version: u64,
    pub source: &'static str,
    pub kind: String,
    pub provider: Option<String>,
    pub cached_tokens: Option<i64>,
    pub cost_computed: bool,
    pub status_message: Option<String>,
    pub resource_attributes: Vec<(String, String)>,
    pub scope: String,
    /// JSON array of `{time, name, attributes}`.
    pub events: String,
    /// JSON array of `{trace_id, span_id, attributes}`.
    pub links: String,
}

#[derive(Debug, Row, Serialize)]
pub struct LogRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub log_id: Uuid,
    pub timestamp: i64,
    pub observed_timestamp: i64,
    pub severity_number: u8,
    pub severity_text: String,
    pub severity: String,
    pub body: String,
    pub service_name: String,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub trace_id: Option<Uuid>,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub span_id: Option<Uuid>,
    pub attributes: Vec<(String, String)>,
    pub resource_attributes: Vec<(String, String)>,
    pub scope: String,
    pub retention_days: u16,
    pub version: u64,
}

#[derive(Debug, Row, Serialize)]
pub struct MetricRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    pub metric_name: String,
    pub series_id: u64,
    pub time: i64,
    pub start_time: i64,
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    pub service_name: String,
    pub attributes: Vec<(String, String)>,
    pub resource_attributes: Vec<(String, String)>,
    pub scope: String,
    pub value: Option<f64>,
    pub temporality: String,
    pub is_monotonic: bool,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub exp_scale: i32,
    pub exp_zero_count: u64,
    pub exp_positive_offset: i32,
    pub exp_positive_counts: Vec<u64>,
    pub exp_negative_offset: i32,
    pub exp_negative_counts: Vec<u64>,
    pub quantiles: Vec<f64>,
    pub quantile_values: Vec<f64>,
    pub retention_days: u16,
    pub version: u64,
}

#[derive(Debug, Row, Serialize)]
pub struct AgentRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub name: String,
    pub created_at: i64,
}

/// A run's use of a prompt version, from a span that names one
/// ([`prompts::reference`]).
#[derive(Debug, Row, Serialize)]
pub struct PromptLinkRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    pub prompt_name: String,
    pub prompt_version: u32,
    #[serde(with = "clickhouse::serde::uuid")]
    pub trace_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid::option")]
    pub span_id: Option<Uuid>,
    pub source: &'static str,
    pub retention_days: u16,
    pub version: u64,
}

/// Rows waiting for the next flush.
#[derive(Default)]
pub struct Buffer {
    pub traces: Vec<TraceRow>,
    pub spans: Vec<SpanRow>,
    pub agents: Vec<AgentRow>,
    pub logs: Vec<LogRow>,
    pub metrics: Vec<MetricRow>,
    pub prompt_links: Vec<PromptLinkRow>,
    seen_agents: HashSet<(Uuid, Uuid)>,
}

impl Buffer {
    pub fn len(&self) -> usize {
        self.traces.len()
            + self.spans.len()
            + self.logs.len()
            + self.metrics.len()
            + self.prompt_links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.agents.is_empty()
    }

    pub fn clear(&mut self) {
        self.traces.clear();
        self.spans.clear();
        self.agents.clear();
        self.logs.clear();
        self.metrics.clear();
        self.prompt_links.clear();
        self.seen_agents.clear();
    }

    fn agent(&mut self, org_id: Uuid, agent_id: Uuid, name: &str, created_us: i64) {
        if self.seen_agents.insert((org_id, agent_id)) {
            self.agents.push(AgentRow {
                org_id,
                agent_id,
                name: name.to_string(),
                created_at: created_us,
            });
        }
    }

    /// Append the rows of one message; returns where they are.
    pub fn push(&mut self, msg: IngestMessage) -> Ranges {
        let before = self.ends();
        self.push_rows(msg);
        let after = self.ends();
        Ranges {
            agents: before.agents.end..after.agents.end,
            spans: before.spans.end..after.spans.end,
            logs: before.logs.end..after.logs.end,
            metrics: before.metrics.end..after.metrics.end,
            prompt_links: before.prompt_links.end..after.prompt_links.end,
            traces: before.traces.end..after.traces.end,
        }
    }

    /// Every row of the buffer, as ranges.
    pub fn ends(&self) -> Ranges {
        Ranges {
            agents: 0..self.agents.len(),
            spans: 0..self.spans.len(),
            logs: 0..self.logs.len(),
            metrics: 0..self.metrics.len(),
            prompt_links: 0..self.prompt_links.len(),
            traces: 0..self.traces.len(),
        }
    }

    fn push_rows(&mut self, msg: IngestMessage) {
        let IngestMessage {
            org_id,
            version,
            retention_days,
            traces,
            spans,
            logs,
            metrics,
            ..
        } = msg;
        let created_us = (version / 1_000) as i64;
        for t in traces {
            self.agent(org_id, t.agent_id, &t.agent_name, created_us);
            self.traces
                .push(trace_row(org_id, version, retention_days, t));
        }
        for s in spans {
            self.agent(org_id, s.agent_id, &s.agent_name, created_us);
            if let Some((prompt_name, prompt_version)) = prompts::reference(&s.attributes) {
                self.prompt_links.push(PromptLinkRow {
                    org_id,
                    prompt_name,
                    prompt_version,
                    trace_id: s.trace_id,
                    span_id: Some(s.span_id),
                    source: "span",
                    retention_days,
                    version,
                });
            }
            self.spans
                .push(span_row(org_id, version, retention_days, s));
        }
        self.logs.extend(logs.into_iter().map(|l| LogRow {
            org_id,
            log_id: l.log_id,
            timestamp: l.time_ns,
            observed_timestamp: l.observed_time_ns,
            severity_number: l.severity_number,
            severity_text: l.severity_text,
            severity: l.severity,
            body: l.body,
            service_name: l.service_name,
            trace_id: l.trace_id,
            span_id: l.span_id,
            attributes: l.attributes,
            resource_attributes: l.resource_attributes,
            scope: l.scope,
            retention_days,
            version,
        }));
        self.metrics.extend(
            metrics
                .into_iter()
                .map(|m| metric_row(org_id, version, retention_days, m)),
        );
    }
}

fn metric_row(org_id: Uuid, version: u64, retention_days: u16, m: MetricPoint) -> MetricRow {
    MetricRow {
        org_id,
        metric_name: m.name,
        series_id: m.series_id,
        time: m.time_ns,
        start_time: m.start_time_ns,
        metric_type: m.metric_type,
        unit: m.unit,
        description: m.description,
        service_name: m.service_name,
        attributes: m.attributes,
        resource_attributes: m.resource_attributes,
        scope: m.scope,
        value: m.value,
        temporality: m.temporality,
        is_monotonic: m.is_monotonic,
        count: m.count,
        sum: m.sum,
        min: m.min,
        max: m.max,
        bucket_counts: m.bucket_counts,
        explicit_bounds: m.explicit_bounds,
        exp_scale: m.exp_scale,
        exp_zero_count: m.exp_zero_count,
        exp_positive_offset: m.exp_positive_offset,
        exp_positive_counts: m.exp_positive_counts,
        exp_negative_offset: m.exp_negative_offset,
        exp_negative_counts: m.exp_negative_counts,
        quantiles: m.quantiles,
        quantile_values: m.quantile_values,
        retention_days,
        version,
    }
}

fn trace_row(org_id: Uuid, version: u64, retention_days: u16, t: TraceRecord) -> TraceRow {
    // A run derived from OTLP spans yields to an SDK header of the same
    // trace: half the receive time is below every real receive time.
    let version = if t.derived { version / 2 } else { version };
    TraceRow {
        org_id,
        trace_id: t.trace_id,
        agent_id: t.agent_id,
        agent_name: t.agent_name,
        status: t.status.as_str(),
        started_at: t.started_at_us,
        ended_at: t.ended_at_us,
        duration_ms: t.duration_ms,
        success: t.success,
        outcome: t.outcome,
        total_tokens: t.total_tokens,
        total_cost: t.total_cost_nanos,
        metadata: t.metadata,
        retention_days,
        version,
    }
}

fn span_row(org_id: Uuid, version: u64, retention_days: u16, s: SpanRecord) -> SpanRow {
    SpanRow {
        org_id,
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        agent_id: s.agent_id,
        agent_name: s.agent_name,
        span_type: s.span_type.as_str(),
        name: s.name,
        status: s.status.as_str(),
        started_at: s.started_at_us,
        ended_at: s.ended_at_us,
        duration_ms: s.duration_ms,
        model: s.model,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        total_tokens: s.total_tokens,
        cost: s.cost_nanos,
        input: s.input,
        output: s.output,
        error: s.error,
        attributes: s.attributes,
        retention_days,
        version,
        source: s.source.as_str(),
        kind: s.kind,
        provider: s.provider,
        cached_tokens: s.cached_tokens,
        cost_computed: s.cost_computed,
        status_message: s.status_message,
        resource_attributes: s.resource_attributes,
        scope: s.scope,
        events: serde_json::Value::Array(
            s.events
                .into_iter()
                .map(|e| serde_json::json!({"time_us": e.time_us, "name": e.name, "attributes": pairs(e.attributes)}))
                .collect(),
        )
        .to_string(),
        links: serde_json::Value::Array(
            s.links
                .into_iter()
                .map(|l| serde_json::json!({"trace_id": l.trace_id, "span_id": l.span_id, "attributes": pairs(l.attributes)}))
                .collect(),
        )
        .to_string(),
    }
}

fn pairs(list: Vec<(String, String)>) -> serde_json::Map<String, serde_json::Value> {
    list.into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_of_times() {
        assert_eq!(month_of_us(0), 197001);
        assert_eq!(month_of_us(-1), 196912);
        assert_eq!(month_of_us(1_705_312_800_000_000), 202401); // 2024-01-15
        assert_eq!(month_of_us(1_709_251_199_999_999), 202402); // 2024-02-29T23:59:59.999999
        assert_eq!(month_of_us(1_709_251_200_000_000), 202403);
        assert_eq!(month_of_us(5_680_281_600_000_000), 215001); // 2150-01-01
        assert!(month_of_us(i64::MAX) > 0 && month_of_us(i64::MIN) < 0);
    }
}
