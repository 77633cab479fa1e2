//! Domain types: the normalized trace and span records that travel on the
//! queue and are stored in ClickHouse.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A closed vocabulary of the contract: a Rust enum, its wire strings, the
/// list of them for error messages, and its OpenAPI schema, written once.
/// Wire strings are the snake_case variant names (serde and the schema
/// derive them; a test checks they equal the listed strings).
macro_rules! contract_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire values, comma-separated (for error messages).
            pub const EXPECTED: &'static str = contract_enum!(@join $($wire),+);

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (@join $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}

contract_enum!(
    /// Status of a run (trace) or a span.
    RunStatus {
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        TimedOut => "timed_out",
    }
);

contract_enum!(
    /// The kind of work a span represents.
    SpanType {
        Agent => "agent",
        Llm => "llm",
        Tool => "tool",
        Http => "http",
        Db => "db",
        Custom => "custom",
    }
);

contract_enum!(
    /// OTLP span kind; SDK spans have none (stored as an empty string).
    SpanKind {
        Unspecified => "unspecified",
        Internal => "internal",
        Server => "server",
        Client => "client",
        Producer => "producer",
        Consumer => "consumer",
    }
);

contract_enum!(
    /// A log record's severity, from its OTLP `severity_number` (1-4 trace,
    /// 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal) or text.
    Severity {
        Trace => "trace",
        Debug => "debug",
        Info => "info",
        Warn => "warn",
        Error => "error",
        Fatal => "fatal",
        Unspecified => "unspecified",
    }
);

contract_enum!(
    /// A metric's OTLP type name.
    MetricType {
        Gauge => "gauge",
        Sum => "sum",
        Histogram => "histogram",
        ExponentialHistogram => "exponential_histogram",
        Summary => "summary",
    }
);

contract_enum!(
    /// The aggregation temporality of sums and histograms (gauges and
    /// summaries have none: stored as an empty string).
    Temporality {
        Delta => "delta",
        Cumulative => "cumulative",
    }
);

contract_enum!(
    /// Where a span came from.
    Source {
        Sdk => "sdk",
        Otlp => "otlp",
    }
);

contract_enum!(
    /// A user's role in an organization: `admin` manages members, keys of
    /// the organization's settings and webhook endpoints; `member` reads.
    Role {
        Admin => "admin",
        Member => "member",
    }
);

contract_enum!(
    /// What an alert watches (the threshold's unit follows the type).
    AlertType {
        FailureRate => "failure_rate",
        Inactivity => "inactivity",
        CostThreshold => "cost_threshold",
        LatencyThreshold => "latency_threshold",
        Composite => "composite",
    }
);

contract_enum!(
    /// How an alert notifies.
    AlertChannel {
        Email => "email",
        Webhook => "webhook",
        Both => "both",
    }
);

/// The events a webhook endpoint can subscribe to. (Written out rather
/// than with `contract_enum!`: the wire names are not snake_case.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEventType {
    #[serde(rename = "alert.fired")]
    AlertFired,
    #[serde(rename = "alert.resolved")]
    AlertResolved,
    #[serde(rename = "trace.failed")]
    TraceFailed,
    #[serde(rename = "agent_run.completed")]
    AgentRunCompleted,
}

impl WebhookEventType {
    pub const ALL: &'static [WebhookEventType] = &[
        WebhookEventType::AlertFired,
        WebhookEventType::AlertResolved,
        WebhookEventType::TraceFailed,
        WebhookEventType::AgentRunCompleted,
    ];
    pub const EXPECTED: &'static str =
        "alert.fired, alert.resolved, trace.failed, agent_run.completed";

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::AlertFired => "alert.fired",
            WebhookEventType::AlertResolved => "alert.resolved",
            WebhookEventType::TraceFailed => "trace.failed",
            WebhookEventType::AgentRunCompleted => "agent_run.completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

#[allow(clippy::derivable_impls)] // the enum is defined by `contract_enum!`
impl Default for Source {
    fn default() -> Self {
        Source::Sdk
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
    /// A [`SpanKind`] wire value; empty for SDK spans.
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
    /// A [`Severity`] wire value.
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
    /// A [`MetricType`] wire value.
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
    /// A [`Temporality`] wire value, or empty.
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

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    fn check<T: Serialize + Copy>(all: &[T], wire: impl Fn(T) -> &'static str) {
        for &v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), wire(v));
        }
    }

    #[test]
    fn serde_and_schema_names_are_the_wire_strings() {
        check(RunStatus::ALL, RunStatus::as_str);
        check(SpanType::ALL, SpanType::as_str);
        check(SpanKind::ALL, SpanKind::as_str);
        check(Severity::ALL, Severity::as_str);
        check(MetricType::ALL, MetricType::as_str);
        check(Temporality::ALL, Temporality::as_str);
        check(Source::ALL, Source::as_str);
        check(Role::ALL, Role::as_str);
        check(AlertType::ALL, AlertType::as_str);
        check(AlertChannel::ALL, AlertChannel::as_str);
        check(WebhookEventType::ALL, WebhookEventType::as_str);
        assert_eq!(RunStatus::EXPECTED, "running, completed, failed, timed_out");
        assert_eq!(RunStatus::parse("timed_out"), Some(RunStatus::TimedOut));
        assert_eq!(
            MetricType::parse("exponential_histogram"),
            Some(MetricType::ExponentialHistogram)
        );
    }
}
