//! `POST /traces/batch`: parse, validate and normalize an SDK batch.
//!
//! Pure code, no I/O: a body goes in, normalized [`TraceRecord`]s and
//! [`SpanRecord`]s or a 400 naming the offending field come out.

use agentvista_shared::error::ApiError;
use agentvista_shared::ids;
use agentvista_shared::model::{RunStatus, SpanRecord, SpanType, TraceRecord};
use agentvista_shared::pricing::Price;
use agentvista_shared::window::IngestWindow;
use agentvista_shared::{money, prompts, time_fmt};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// At most this many spans across all traces of one request.
pub const MAX_SPANS_PER_BATCH: usize = 100;
/// At most this many traces in one request.
pub const MAX_TRACES_PER_BATCH: usize = 100;
pub const MAX_NAME_LEN: usize = 256;
pub const MAX_SPAN_NAME_LEN: usize = 1024;
pub const MAX_ATTRIBUTES: usize = 256;
/// Tokens above this are refused as implausible.
pub const MAX_TOKENS: i64 = 1_000_000_000_000;

#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub traces: Vec<TraceRecord>,
    pub spans: Vec<SpanRecord>,
}

/// `POST /traces/batch`: traces, each with its spans (at most 100 spans
/// in all).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TraceBatch)]
pub(crate) struct RawBatch {
    /// Required; at most 100.
    traces: Option<Vec<RawEntry>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TraceBatchEntry)]
struct RawEntry {
    /// Required.
    trace: Option<RawTrace>,
    #[serde(default)]
    spans: Option<Vec<RawSpan>>,
}

/// A run (the trace header).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SdkTrace)]
struct RawTrace {
    /// Required: a UUID, or 32 hex characters (a W3C trace id).
    trace_id: Option<String>,
    /// The agent's name (agents are created on first use).
    agent: Option<String>,
    /// Alias of `agent`.
    agent_name: Option<String>,
    /// `running`, `completed` (default), `failed` or `timed_out`.
    #[schema(value_type = Option<agentvista_shared::model::RunStatus>)]
    status: Option<String>,
    /// RFC 3339 with a time zone.
    started_at: Option<String>,
    ended_at: Option<String>,
    duration_ms: Option<i64>,
    success: Option<bool>,
    /// At most 256 characters.
    outcome: Option<String>,
    total_tokens: Option<i64>,
    /// A decimal string of US dollars (a number is accepted).
    #[schema(value_type = Option<String>)]
    total_cost_usd: Option<Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
}

/// A step inside a trace.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SdkSpan)]
struct RawSpan {
    /// Required: a UUID, or 16 hex characters (a W3C span id).
    span_id: Option<String>,
    /// Default: the entry's trace.
    trace_id: Option<String>,
    parent_span_id: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<agentvista_shared::model::SpanType>)]
    span_type: Option<String>,
    /// Alias of `type`.
    #[schema(value_type = Option<agentvista_shared::model::SpanType>)]
    span_type_alias: Option<String>,
    name: Option<String>,
    #[schema(value_type = Option<agentvista_shared::model::RunStatus>)]
    status: Option<String>,
    /// Required: RFC 3339 with a time zone.
    started_at: Option<String>,
    ended_at: Option<String>,
    duration_ms: Option<i64>,
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    total_tokens: Option<i64>,
    /// A decimal string of US dollars; computed from the price table when
    /// absent and the model and tokens are known.
    #[schema(value_type = Option<String>)]
    cost_usd: Option<Value>,
    /// Any JSON; stored as text.
    #[schema(value_type = Option<Object>)]
    input: Option<Value>,
    #[schema(value_type = Option<Object>)]
    output: Option<Value>,
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// The prompt this span used (with `prompt_version`): links the run to
    /// that prompt version, as `POST /dashboard/prompts/usage` would.
    prompt_name: Option<String>,
    /// An integer from 1.
    #[schema(value_type = Option<i64>)]
    prompt_version: Option<Value>,
}

/// Parse and normalize a batch body; spans with a model and tokens but no
/// cost are priced with `prices` (see [`crate::prices`]). Every time must lie
/// in `window`; a `trace_id` may appear once per batch, and a `span_id` once
/// per trace (a 400 names the duplicate: the response's counts, the quota
/// charged and what is stored always agree).
pub fn parse(
    body: &[u8],
    prices: &HashMap<String, Price>,
    window: &IngestWindow,
) -> Result<Batch, ApiError> {
    // Path tracking (which captures every key as a `String`) only for a
    // refused body, parsed again for the error that names the field.
    let fast = RawBatch::deserialize(&mut serde_json::Deserializer::from_slice(body));
    let de = &mut serde_json::Deserializer::from_slice(body);
    let raw: RawBatch = fast
        .or_else(|_| serde_path_to_error::deserialize(de))
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() || path == "." {
                ApiError::bad_request(format!("Malformed JSON body: {inner}"))
            } else {
                ApiError::invalid_field(path, strip_position(&inner.to_string()))
            }
        })?;
    let entries = raw
        .traces
        .ok_or_else(|| ApiError::invalid_field("traces", "is required"))?;
    if entries.len() > MAX_TRACES_PER_BATCH {
        return Err(ApiError::invalid_field(
            "traces",
            format!("at most {MAX_TRACES_PER_BATCH} traces per batch"),
        ));
    }
    let span_total: usize = entries
        .iter()
        .map(|e| e.spans.as_ref().map_or(0, Vec::len))
        .sum();
    if span_total > MAX_SPANS_PER_BATCH {
        return Err(ApiError::bad_request(format!(
            "A batch accepts at most {MAX_SPANS_PER_BATCH} spans in total; this one has {span_total}."
        )));
    }

    let mut batch = Batch::default();
    let mut trace_at: HashMap<Uuid, usize> = HashMap::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("traces[{i}]");
        let raw_trace = entry
            .trace
            .ok_or_else(|| ApiError::invalid_field(format!("{at}.trace"), "is required"))?;
        let first = batch.spans.len();
        let header = TraceHeader::parse(&at, &raw_trace)?;
        if let Some(earlier) = trace_at.insert(header.trace_id, i) {
            return Err(ApiError::invalid_field(
                format!("{at}.trace.trace_id"),
                format!(
                    "duplicates traces[{earlier}].trace.trace_id; send each trace once per batch"
                ),
            ));
        }
        let mut span_at: HashMap<Uuid, usize> = HashMap::new();
        for (j, span) in entry.spans.unwrap_or_default().into_iter().enumerate() {
            let here = format!("{at}.spans[{j}]");
            let span = normalize_span(&here, span, &header, window)?;
            if let Some(earlier) = span_at.insert(span.span_id, j) {
                return Err(ApiError::invalid_field(
                    format!("{here}.span_id"),
                    format!("duplicates {at}.spans[{earlier}].span_id; send each span once"),
                ));
            }
            batch.spans.push(span);
        }
        crate::prices::apply(&mut batch.spans[first..], prices);
        batch
            .traces
            .push(header.finish(&at, raw_trace, &batch.spans[first..], window)?);
    }
    Ok(batch)
}

/// serde_json appends " at line L column C"; the path already locates it.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

struct TraceHeader {
    trace_id: Uuid,
    agent_id: Uuid,
    agent_name: String,
}

impl TraceHeader {
    fn parse(at: &str, raw: &RawTrace) -> Result<Self, ApiError> {
        let trace_id = required_uuid(&format!("{at}.trace.trace_id"), raw.trace_id.as_deref())?;
        let name = raw
            .agent
            .as_deref()
            .or(raw.agent_name.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid_field(format!("{at}.trace.agent"), "is required"))?;
        check_len(&format!("{at}.trace.agent"), name, MAX_NAME_LEN)?;
        // The agent id is derived from the organization at the gateway; a
        // placeholder namespace here keeps this function pure.
        Ok(TraceHeader {
            trace_id,
            agent_id: Uuid::nil(),
            agent_name: name.to_string(),
        })
    }

    fn finish(
        self,
        at: &str,
        raw: RawTrace,
        spans: &[SpanRecord],
        window: &IngestWindow,
    ) -> Result<TraceRecord, ApiError> {
        let field = |f: &str| format!("{at}.trace.{f}");
        let status = parse_status(&field("status"), raw.status.as_deref())?;
        let started = match raw.started_at.as_deref() {
            Some(s) => parse_time(&field("started_at"), s, window)?,
            None => spans
                .iter()
                .map(|s| s.started_at_us)
                .min()
                .ok_or_else(|| ApiError::invalid_field(field("started_at"), "is required"))?,
        };
        let ended = raw
            .ended_at
            .as_deref()
            .map(|s| parse_time(&field("ended_at"), s, window))
            .transpose()?;
        let duration_ms = duration(&field, started, ended, raw.duration_ms)?;
        if let Some(o) = &raw.outcome {
            check_len(&field("outcome"), o, MAX_NAME_LEN)?;
        }
        let total_tokens = match raw.total_tokens {
            Some(t) => Some(tokens(&field("total_tokens"), t)?),
            None => sum_opt(spans.iter().map(|s| s.total_tokens)),
        };
        let total_cost_nanos = match &raw.total_cost_usd {
            Some(v) if !v.is_null() => Some(cost(&field("total_cost_usd"), v)?),
            _ => sum_opt(spans.iter().map(|s| s.cost_nanos)).map(|c| c.min(money::MAX_TOTAL_NANOS)),
        };
        Ok(TraceRecord {
            trace_id: self.trace_id,
            agent_id: self.agent_id,
            agent_name: self.agent_name,
            status,
            started_at_us: started,
            ended_at_us: ended,
            duration_ms,
            success: raw.success,
            outcome: raw.outcome.filter(|o| !o.is_empty()),
            total_tokens,
            total_cost_nanos,
            metadata: flatten(&field("metadata"), raw.metadata)?,
            derived: false,
        })
    }
}

fn normalize_span(
    at: &str,
    raw: RawSpan,
    trace: &TraceHeader,
    window: &IngestWindow,
) -> Result<SpanRecord, ApiError> {
    let field = |f: &str| format!("{at}.{f}");
    let span_id = span_uuid(&field("span_id"), raw.span_id.as_deref())?;
    if let Some(t) = raw.trace_id.as_deref() {
        let t = required_uuid(&field("trace_id"), Some(t))?;
        if t != trace.trace_id {
            return Err(ApiError::invalid_field(
                field("trace_id"),
                "does not match the trace_id of its trace",
            ));
        }
    }
    let parent_span_id = match raw.parent_span_id.as_deref() {
        None | Some("") => None,
        Some(p) => Some(span_uuid(&field("parent_span_id"), Some(p))?),
    };
    let span_type = match raw.span_type.as_deref().or(raw.span_type_alias.as_deref()) {
        None => SpanType::Custom,
        Some(t) => SpanType::parse(t).ok_or_else(|| {
            ApiError::invalid_field(
                field("type"),
                format!(
                    "unknown value {t:?}, expected one of {}",
                    SpanType::EXPECTED
                ),
            )
        })?,
    };
    let name = raw.name.unwrap_or_default();
    check_len(&field("name"), &name, MAX_SPAN_NAME_LEN)?;
    let status = parse_status(&field("status"), raw.status.as_deref())?;
    let started = parse_time(
        &field("started_at"),
        raw.started_at
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field(field("started_at"), "is required"))?,
        window,
    )?;
    let ended = raw
        .ended_at
        .as_deref()
        .map(|s| parse_time(&field("ended_at"), s, window))
        .transpose()?;
    let duration_ms = duration(&field, started, ended, raw.duration_ms)?;
    if let Some(m) = &raw.model {
        check_len(&field("model"), m, MAX_NAME_LEN)?;
    }
    let input_tokens = raw
        .input_tokens
        .map(|t| tokens(&field("input_tokens"), t))
        .transpose()?;
    let output_tokens = raw
        .output_tokens
        .map(|t| tokens(&field("output_tokens"), t))
        .transpose()?;
    let total_tokens = match raw.total_tokens {
        Some(t) => Some(tokens(&field("total_tokens"), t)?),
        None => sum_opt([input_tokens, output_tokens].into_iter()),
    };
    let cost_nanos = match &raw.cost_usd {
        Some(v) if !v.is_null() => Some(cost(&field("cost_usd"), v)?),
        _ => None,
    };
    let mut attributes = flatten(&field("attributes"), raw.attributes)?;
    attributes.extend(flatten(&field("metadata"), raw.metadata)?);
    if let Some((name, version)) = prompt_reference(&field, raw.prompt_name, raw.prompt_version)? {
        attributes.retain(|(k, _)| k != prompts::NAME_ATTR && k != prompts::VERSION_ATTR);
        attributes.push((prompts::NAME_ATTR.to_string(), name));
        attributes.push((prompts::VERSION_ATTR.to_string(), version.to_string()));
    }
    Ok(SpanRecord {
        trace_id: trace.trace_id,
        span_id,
        parent_span_id,
        agent_id: trace.agent_id,
        agent_name: trace.agent_name.clone(),
        span_type,
        name,
        status,
        started_at_us: started,
        ended_at_us: ended,
        duration_ms,
        model: raw.model.filter(|m| !m.is_empty()),
        input_tokens,
        output_tokens,
        total_tokens,
        cost_nanos,
        input: raw.input.and_then(value_to_text),
        output: raw.output.and_then(value_to_text),
        error: raw.error.and_then(value_to_text),
        attributes,
        source: Default::default(),
        kind: String::new(),
        provider: None,
        cached_tokens: None,
        cost_computed: false,
        status_message: None,
        resource_attributes: Vec::new(),
        scope: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    })
}

/// The span's `prompt_name` / `prompt_version`: both or neither.
fn prompt_reference(
    field: &impl Fn(&str) -> String,
    name: Option<String>,
    version: Option<Value>,
) -> Result<Option<(String, u32)>, ApiError> {
    let version = version.filter(|v| !v.is_null());
    match (name, version) {
        (None, None) => Ok(None),
        (Some(name), Some(version)) => {
            prompts::check_name(&name)
                .map_err(|m| ApiError::invalid_field(field("prompt_name"), m))?;
            let parsed = match &version {
                Value::Number(n) => prompts::parse_version(&n.to_string()),
                _ => None,
            };
            let version = parsed.ok_or_else(|| {
                ApiError::invalid_field(
                    field("prompt_version"),
                    format!("must be an integer from 1 to {}", prompts::MAX_VERSION),
                )
            })?;
            Ok(Some((name, version)))
        }
        (Some(_), None) => Err(ApiError::invalid_field(
            field("prompt_version"),
            "is required with prompt_name",
        )),
        (None, Some(_)) => Err(ApiError::invalid_field(
            field("prompt_name"),
            "is required with prompt_version",
        )),
    }
}

/// A span id: a UUID, or a W3C span id (16 hex characters), which becomes
/// the UUID an OTLP span with that id gets, so that SDK and OpenTelemetry
/// spans of one trace can be each other's parents.
fn span_uuid(field: &str, v: Option<&str>) -> Result<Uuid, ApiError> {
    match v {
        Some(s) if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let bytes = hex::decode(s).map_err(|_| ApiError::invalid_field(field, "is not hex"))?;
            ids::span_id_from_otlp(&bytes)
                .ok_or_else(|| ApiError::invalid_field(field, "must not be all zeros"))
        }
        _ => required_uuid(field, v),
    }
}

fn required_uuid(field: &str, v: Option<&str>) -> Result<Uuid, ApiError> {
    let s = v.ok_or_else(|| ApiError::invalid_field(field, "is required"))?;
    Uuid::parse_str(s).map_err(|_| ApiError::invalid_field(field, format!("{s:?} is not a UUID")))
}

fn parse_status(field: &str, v: Option<&str>) -> Result<RunStatus, ApiError> {
    match v {
        None => Ok(RunStatus::Completed),
        Some(s) => RunStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!(
                    "unknown value {s:?}, expected one of {}",
                    RunStatus::EXPECTED
                ),
            )
        }),
    }
}

fn parse_time(field: &str, s: &str, window: &IngestWindow) -> Result<i64, ApiError> {
    let t = time_fmt::parse(s).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!("{s:?} is not an ISO 8601 timestamp with a time zone"),
        )
    })?;
    let us = i64::try_from(t.unix_timestamp_nanos() / 1_000)
        .map_err(|_| ApiError::invalid_field(field, "is out of range"))?;
    window
        .check_us(us)
        .map_err(|m| ApiError::invalid_field(field, m))?;
    Ok(us)
}

fn duration(
    field: &dyn Fn(&str) -> String,
    started: i64,
    ended: Option<i64>,
    given: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    if let Some(e) = ended {
        if e < started {
            return Err(ApiError::invalid_field(
                field("ended_at"),
                "is before started_at",
            ));
        }
    }
    match given {
        Some(d) if d < 0 => Err(ApiError::invalid_field(
            field("duration_ms"),
            "must not be negative",
        )),
        Some(d) => Ok(Some(d)),
        None => Ok(ended.map(|e| (e - started) / 1_000)),
    }
}

fn tokens(field: &str, t: i64) -> Result<i64, ApiError> {
    if !(0..=MAX_TOKENS).contains(&t) {
        return Err(ApiError::invalid_field(
            field,
            "must be a non-negative integer",
        ));
    }
    Ok(t)
}

fn cost(field: &str, v: &Value) -> Result<i64, ApiError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(ApiError::invalid_field(
                field,
                "must be a decimal string such as \"0.004500\"",
            ))
        }
    };
    money::parse_usd(&text).map_err(|m| ApiError::invalid_field(field, m))
}

fn check_len(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn sum_opt(it: impl Iterator<Item = Option<i64>>) -> Option<i64> {
    it.fold(None, |acc, v| match (acc, v) {
        (None, v) => v,
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, None) => a,
    })
}

fn value_to_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn flatten(
    field: &str,
    map: Option<Map<String, Value>>,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(map) = map else {
        return Ok(Vec::new());
    };
    if map.len() > MAX_ATTRIBUTES {
        return Err(ApiError::invalid_field(
            field,
            format!("at most {MAX_ATTRIBUTES} keys"),
        ));
    }
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| value_to_text(v).map(|v| (k, v)))
        .collect())
}

/// Fill in the organization-scoped agent ids.
pub fn assign_agent_ids(batch: &mut Batch, org_id: Uuid) {
    for t in &mut batch.traces {
        t.agent_id = ids::agent_id(org_id, &t.agent_name);
    }
    for s in &mut batch.spans {
        s.agent_id = ids::agent_id(org_id, &s.agent_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The contract's documented example batch (tests/fixtures).
    fn doc_example() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/doc-example-batch.json")).unwrap()
    }

    /// The window around the documented example's day.
    fn window() -> IngestWindow {
        IngestWindow::around(1_705_312_800_000_000)
    }

    fn parse_value(v: &Value) -> Result<Batch, ApiError> {
        parse(&serde_json::to_vec(v).unwrap(), &HashMap::new(), &window())
    }

    #[test]
    fn a_client_cost_wins_and_a_missing_one_is_computed() {
        let mut v = doc_example();
        let b = parse_value(&v).unwrap();
        assert_eq!(b.spans[0].cost_nanos, Some(3_200_000));
        assert!(!b.spans[0].cost_computed);
        v["traces"][0]["spans"][0]
            .as_object_mut()
            .unwrap()
            .remove("cost_usd");
        v["traces"][0]["spans"][0]["input_tokens"] = json!(1000);
        v["traces"][0]["trace"]
            .as_object_mut()
            .unwrap()
            .remove("total_cost_usd");
        let b = parse_value(&v).unwrap();
        // gpt-4o: 1000 * $2.50/M + 120 * $10/M = 0.0025 + 0.0012
        assert_eq!(b.spans[0].cost_nanos, Some(3_700_000));
        assert!(b.spans[0].cost_computed);
        assert_eq!(b.traces[0].total_cost_nanos, Some(3_700_000));
        let mut overrides = HashMap::new();
        overrides.insert(
            "gpt-4o".to_string(),
            Price::from_usd("1", "1", "1").unwrap(),
        );
        let b = parse(&serde_json::to_vec(&v).unwrap(), &overrides, &window()).unwrap();
        assert_eq!(b.spans[0].cost_nanos, Some(1_120_000));
    }

    #[test]
    fn documented_example_parses() {
        let b = parse_value(&doc_example()).unwrap();
        assert_eq!(b.traces.len(), 1);
        assert_eq!(b.spans.len(), 1);
        let t = &b.traces[0];
        assert_eq!(t.agent_name, "lead-qualifier");
        assert_eq!(t.total_cost_nanos, Some(4_500_000));
        assert_eq!(t.duration_ms, Some(2000));
        assert_eq!(t.success, Some(true));
        let s = &b.spans[0];
        assert_eq!(s.span_type, SpanType::Llm);
        assert_eq!(s.cost_nanos, Some(3_200_000));
        assert_eq!(s.started_at_us, 1_705_312_800_100_000);
        assert_eq!(s.model.as_deref(), Some("gpt-4o"));
    }

    #[test]
    fn a_prompt_reference_becomes_the_link_attributes() {
        let mut v = doc_example();
        v["traces"][0]["spans"][0]["prompt_name"] = json!("classify-intent");
        v["traces"][0]["spans"][0]["prompt_version"] = json!(3);
        v["traces"][0]["spans"][0]["attributes"] = json!({"agentvista.prompt.version": "9"});
        let b = parse_value(&v).unwrap();
        assert_eq!(
            prompts::reference(&b.spans[0].attributes),
            Some(("classify-intent".to_string(), 3)),
            "the fields win over a stale attribute"
        );
        let refused = |name: Value, version: Value, field: &str| {
            let mut v = doc_example();
            v["traces"][0]["spans"][0]["prompt_name"] = name;
            v["traces"][0]["spans"][0]["prompt_version"] = version;
            let e = parse_value(&v).unwrap_err();
            assert_eq!(
                e.errors[0].field,
                format!("traces[0].spans[0].{field}"),
                "{e:?}"
            );
        };
        refused(json!("p"), Value::Null, "prompt_version");
        refused(Value::Null, json!(1), "prompt_name");
        refused(json!("p"), json!(0), "prompt_version");
        refused(json!("p"), json!("1"), "prompt_version");
        refused(json!("p"), json!(1.5), "prompt_version");
        refused(json!("a/b"), json!(1), "prompt_name");
        refused(json!("x".repeat(129)), json!(1), "prompt_name");
    }

    #[test]
    fn w3c_span_ids_are_the_uuids_otlp_spans_get() {
        let mut v = doc_example();
        v["traces"][0]["trace"]["trace_id"] = json!("4bf92f3577b34da6a3ce929d0e0e4736");
        v["traces"][0]["spans"][0]["trace_id"] = json!("4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
        v["traces"][0]["spans"][0]["span_id"] = json!("00f067aa0ba902b7");
        v["traces"][0]["spans"][0]["parent_span_id"] = json!("00000000000000a1");
        let b = parse_value(&v).unwrap();
        assert_eq!(
            b.spans[0].span_id.to_string(),
            "00000000-0000-0000-00f0-67aa0ba902b7"
        );
        assert_eq!(
            b.spans[0].parent_span_id.unwrap().to_string(),
            "00000000-0000-0000-0000-0000000000a1"
        );
        v["traces"][0]["spans"][0]["span_id"] = json!("0000000000000000");
        assert!(parse_value(&v).is_err());
    }

    #[test]
    fn agent_name_alias_and_defaults() {
        let mut v = doc_example();
        let t = v["traces"][0]["trace"].as_object_mut().unwrap();
        t.remove("agent");
        t.insert("agent_name".into(), json!("alias"));
        t.remove("status");
        t.remove("total_tokens");
        t.remove("total_cost_usd");
        let b = parse_value(&v).unwrap();
        assert_eq!(b.traces[0].agent_name, "alias");
        assert_eq!(b.traces[0].status, RunStatus::Completed);
        // totals follow from the spans when the header has none
        assert_eq!(b.traces[0].total_tokens, Some(920));
        assert_eq!(b.traces[0].total_cost_nanos, Some(3_200_000));
    }

    /// Each row: a mutation of the documented example and the field the 400
    /// must name.
    #[test]
    fn invalid_bodies_name_the_field() {
        type Mutation = fn(&mut Value);
        let cases: Vec<(&str, Mutation)> = vec![
            ("traces[0].trace.trace_id: is required", |v| {
                v["traces"][0]["trace"]
                    .as_object_mut()
                    .unwrap()
                    .remove("trace_id");
            }),
            ("traces[0].trace.trace_id: \"nope\" is not a UUID", |v| {
                v["traces"][0]["trace"]["trace_id"] = json!("nope");
            }),
            ("traces[0].trace.status: unknown value \"done\"", |v| {
                v["traces"][0]["trace"]["status"] = json!("done");
            }),
            ("traces[0].spans[0].status: unknown value \"ok\"", |v| {
                v["traces"][0]["spans"][0]["status"] = json!("ok");
            }),
            ("traces[0].trace.started_at: \"yesterday\" is not", |v| {
                v["traces"][0]["trace"]["started_at"] = json!("yesterday");
            }),
            (
                "traces[0].spans[0].ended_at: \"2024-13-01T00:00:00Z\"",
                |v| {
                    v["traces"][0]["spans"][0]["ended_at"] = json!("2024-13-01T00:00:00Z");
                },
            ),
            (
                "traces[0].trace.total_cost_usd: must be a decimal string",
                |v| {
                    v["traces"][0]["trace"]["total_cost_usd"] = json!("cheap");
                },
            ),
            ("traces[0].spans[0].cost_usd: must not be negative", |v| {
                v["traces"][0]["spans"][0]["cost_usd"] = json!("-1.0");
            }),
            ("traces[0].spans[0].type: unknown value \"robot\"", |v| {
                v["traces"][0]["spans"][0]["type"] = json!("robot");
            }),
            ("traces[0].spans[0].span_id: is required", |v| {
                v["traces"][0]["spans"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("span_id");
            }),
            ("traces[0].spans[0].trace_id: does not match", |v| {
                v["traces"][0]["spans"][0]["trace_id"] =
                    json!("00000000-0000-0000-0000-000000000001");
            }),
            ("traces[0].spans[0].duration_ms: invalid type", |v| {
                v["traces"][0]["spans"][0]["duration_ms"] = json!("fast");
            }),
            ("traces[0].trace.agent: is required", |v| {
                v["traces"][0]["trace"]["agent"] = json!("  ");
            }),
            (
                "traces[0].spans[0].input_tokens: must be a non-negative",
                |v| {
                    v["traces"][0]["spans"][0]["input_tokens"] = json!(-5);
                },
            ),
            ("traces[0].trace.ended_at: is before started_at", |v| {
                v["traces"][0]["trace"]["ended_at"] = json!("2020-01-01T00:00:00Z");
            }),
            (
                "traces[0].trace.started_at: is more than 1826 days (five years) in the past",
                |v| {
                    v["traces"][0]["trace"]["started_at"] = json!("0001-01-01T00:00:00Z");
                },
            ),
            (
                "traces[0].spans[0].started_at: is more than one day in the future",
                |v| {
                    v["traces"][0]["spans"][0]["started_at"] = json!("2150-01-01T00:00:00Z");
                    v["traces"][0]["spans"][0]["ended_at"] = json!("2150-01-01T00:00:01Z");
                },
            ),
            (
                "traces[0].spans[0].ended_at: is more than one day in the future",
                |v| {
                    v["traces"][0]["spans"][0]["ended_at"] = json!("9999-12-31T23:59:59Z");
                },
            ),
            (
                "traces[0].spans[0].cost_usd: is too large (at most 1000000 USD)",
                |v| {
                    v["traces"][0]["spans"][0]["cost_usd"] = json!("1000000.01");
                },
            ),
            (
                "traces[1].trace.trace_id: duplicates traces[0].trace.trace_id",
                |v| {
                    let again = v["traces"][0].clone();
                    v["traces"].as_array_mut().unwrap().push(again);
                },
            ),
            (
                "traces[0].spans[1].span_id: duplicates traces[0].spans[0].span_id",
                |v| {
                    let again = v["traces"][0]["spans"][0].clone();
                    v["traces"][0]["spans"].as_array_mut().unwrap().push(again);
                },
            ),
            ("traces: is required", |v| {
                *v = json!({"spans": []});
            }),
            ("traces: invalid type", |v| {
                *v = json!({"traces": "all of them"});
            }),
        ];
        for (want, mutate) in cases {
            let mut v = doc_example();
            mutate(&mut v);
            let err = parse_value(&v).expect_err(want);
            assert_eq!(err.status_code(), 400);
            assert!(
                err.detail.starts_with(want),
                "want {want:?}, got {:?}",
                err.detail
            );
        }
    }

    #[test]
    fn malformed_json_is_a_400() {
        for body in [&b"{"[..], b"not json", b"", b"[1,2]", b"{\"traces\": [}"] {
            let err = parse(body, &HashMap::new(), &window()).unwrap_err();
            assert_eq!(err.status_code(), 400, "{body:?}");
        }
    }

    #[test]
    fn more_than_100_spans_is_refused() {
        let mut v = doc_example();
        let span = v["traces"][0]["spans"][0].clone();
        let spans: Vec<Value> = (0..101)
            .map(|i| {
                let mut s = span.clone();
                s["span_id"] = json!(Uuid::from_u128(i).to_string());
                s
            })
            .collect();
        v["traces"][0]["spans"] = json!(spans.clone());
        let err = parse_value(&v).unwrap_err();
        assert!(err.detail.contains("at most 100 spans"), "{}", err.detail);
        v["traces"][0]["spans"] = json!(spans[..100]);
        assert_eq!(parse_value(&v).unwrap().spans.len(), 100);
    }

    #[test]
    fn agent_ids_are_per_org() {
        let mut b = parse_value(&doc_example()).unwrap();
        let org = Uuid::new_v4();
        assign_agent_ids(&mut b, org);
        assert_eq!(b.traces[0].agent_id, ids::agent_id(org, "lead-qualifier"));
        assert_eq!(b.spans[0].agent_id, b.traces[0].agent_id);
    }
}
