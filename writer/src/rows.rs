//! ClickHouse row types and their construction from queue messages.

use agentvista_shared::model::{SpanRecord, TraceRecord};
use agentvista_shared::queue::IngestMessage;
use clickhouse::Row;
use serde::Serialize;
use uuid::Uuid;

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

/// Rows waiting for the next flush.
#[derive(Default)]
pub struct Buffer {
    pub traces: Vec<TraceRow>,
    pub spans: Vec<SpanRow>,
    pub agents: Vec<AgentRow>,
}

impl Buffer {
    pub fn len(&self) -> usize {
        self.traces.len() + self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty() && self.spans.is_empty() && self.agents.is_empty()
    }

    pub fn clear(&mut self) {
        self.traces.clear();
        self.spans.clear();
        self.agents.clear();
    }

    /// Append the rows of one message.
    pub fn push(&mut self, msg: IngestMessage) {
        let IngestMessage {
            org_id,
            version,
            retention_days,
            traces,
            spans,
            ..
        } = msg;
        for t in traces {
            if !self
                .agents
                .iter()
                .any(|a| a.org_id == org_id && a.agent_id == t.agent_id)
            {
                self.agents.push(AgentRow {
                    org_id,
                    agent_id: t.agent_id,
                    name: t.agent_name.clone(),
                    created_at: (version / 1_000) as i64,
                });
            }
            self.traces
                .push(trace_row(org_id, version, retention_days, t));
        }
        self.spans.extend(
            spans
                .into_iter()
                .map(|s| span_row(org_id, version, retention_days, s)),
        );
    }
}

fn trace_row(org_id: Uuid, version: u64, retention_days: u16, t: TraceRecord) -> TraceRow {
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
    }
}
