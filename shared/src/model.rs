//! Domain types: the normalized trace and span records that travel on the
//! queue and are stored in ClickHouse.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Status of a run (trace) or a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    TimedOut,
}

impl RunStatus {
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::TimedOut,
    ];
    pub const EXPECTED: &'static str = "running, completed, failed, timed_out";

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The kind of work a span represents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanType {
    Agent,
    Llm,
    Tool,
    Http,
    Db,
    Custom,
}

impl SpanType {
    pub const ALL: [SpanType; 6] = [
        SpanType::Agent,
        SpanType::Llm,
        SpanType::Tool,
        SpanType::Http,
        SpanType::Db,
        SpanType::Custom,
    ];
    pub const EXPECTED: &'static str = "agent, llm, tool, http, db, custom";

    pub fn as_str(self) -> &'static str {
        match self {
            SpanType::Agent => "agent",
            SpanType::Llm => "llm",
            SpanType::Tool => "tool",
            SpanType::Http => "http",
            SpanType::Db => "db",
            SpanType::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One run of an agent: the trace header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    pub trace_id: Uuid,
    pub agent_id: Uuid,
    pub agent_name: String,
    pub status: RunStatus,
    /// Microseconds since the Unix epoch (UTC).
    pub started_at_us: i64,
    pub ended_at_us: Option<i64>,
    pub duration_ms: Option<i64>,
    pub success: Option<bool>,
    pub outcome: Option<String>,
    pub total_tokens: Option<i64>,
    /// Cost in billionths of a US dollar (never a binary float).
    pub total_cost_nanos: Option<i64>,
    /// Free-form metadata as JSON-encoded values.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

/// One step inside a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    pub trace_id: Uuid,
    pub span_id: Uuid,
    pub parent_span_id: Option<Uuid>,
    pub agent_id: Uuid,
    pub agent_name: String,
    pub span_type: SpanType,
    pub name: String,
    pub status: RunStatus,
    pub started_at_us: i64,
    pub ended_at_us: Option<i64>,
    pub duration_ms: Option<i64>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost_nanos: Option<i64>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    /// Attributes as JSON-encoded values (strings stay plain strings).
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
}
