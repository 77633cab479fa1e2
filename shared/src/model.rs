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
    /// Derived from an OTLP root span rather than sent by the SDK: stored
    /// with a lower version, so that an SDK header for the trace wins.
    #[serde(default)]
    pub derived: bool,
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
    /// Where the span came from.
    #[serde(default)]
    pub source: Source,
    /// OTLP span kind (`internal`, `server`, `client`, `producer`,
    /// `consumer`); empty for SDK spans.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub cached_tokens: Option<i64>,
    /// True when `cost_nanos` was computed from the price table rather than
    /// sent by the client.
    #[serde(default)]
    pub cost_computed: bool,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub resource_attributes: Vec<(String, String)>,
    /// Instrumentation scope as `name` or `name@version`.
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub events: Vec<SpanEvent>,
    #[serde(default)]
    pub links: Vec<SpanLink>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Sdk,
    Otlp,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sdk => "sdk",
            Source::Otlp => "otlp",
        }
    }
}

/// A timed event inside a span (OTLP span events, e.g. exceptions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub time_us: i64,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// A link from a span to another span, possibly in another trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: Uuid,
    pub span_id: Uuid,
    pub attributes: Vec<(String, String)>,
}

/// One OTLP log record, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Content-derived id: a re-sent record replaces itself.
    pub log_id: Uuid,
    /// Nanoseconds since the epoch (the observed time when the record has none).
    pub time_ns: i64,
    pub observed_time_ns: i64,
    pub severity_number: u8,
    pub severity_text: String,
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal`, or `unspecified`.
    pub severity: String,
    /// String bodies as they are; structured bodies as JSON.
    pub body: String,
    pub service_name: String,
    pub trace_id: Option<Uuid>,
    pub span_id: Option<Uuid>,
    pub attributes: Vec<(String, String)>,
    pub resource_attributes: Vec<(String, String)>,
    pub scope: String,
}

/// One OTLP metric data point, normalized; the fields that do not apply to
/// the point's type are empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub name: String,
    /// `gauge`, `sum`, `histogram`, `exponential_histogram`, `summary`.
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    pub service_name: String,
    /// Hash of the attributes, resource and scope: points of one series
    /// share it, and (series, time) identifies a point.
    pub series_id: u64,
    pub attributes: Vec<(String, String)>,
    pub resource_attributes: Vec<(String, String)>,
    pub scope: String,
    pub start_time_ns: i64,
    pub time_ns: i64,
    /// Gauge and sum value (integers converted to f64).
    pub value: Option<f64>,
    /// `delta`, `cumulative` or empty.
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
}
