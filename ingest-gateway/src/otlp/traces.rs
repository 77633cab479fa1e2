//! OTLP spans to AgentVista spans and runs (contract rulings 7 and 9).

use super::attrs::{self, Attrs};
use agentvista_shared::ids;
use agentvista_shared::model::{
    RunStatus, Source, SpanEvent, SpanLink, SpanRecord, SpanType, TraceRecord,
};
use agentvista_shared::money;
use agentvista_shared::pricing::Price;
use agentvista_shared::promoted;
use agentvista_shared::window::IngestWindow;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use std::collections::HashMap;
use uuid::Uuid;

pub use super::attrs::UNKNOWN_SERVICE;

/// `flags` bits of OTLP 1.3: whether the parent's remoteness is known, and
/// whether the parent is remote.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

#[derive(Debug, Default)]
pub struct Translated {
    pub traces: Vec<TraceRecord>,
    pub spans: Vec<SpanRecord>,
    pub rejected: u64,
    pub error: Option<String>,
}

/// Translate an export request for organization `org_id`, pricing LLM
/// spans without a client cost with `prices`. A span is rejected (counted in
/// `partial_success`, with the first reason) when its ids are invalid, a
/// time lies outside `window`, a token count or cost attribute is not a
/// valid value (the same bounds as `/traces/batch`), or it repeats a
/// (trace id, span id) already in this export (the first copy is kept).
pub fn translate(
    req: &ExportTraceServiceRequest,
    org_id: Uuid,
    prices: &HashMap<String, Price>,
    window: &IngestWindow,
) -> Translated {
    let mut out = Translated::default();
    let mut seen: std::collections::HashSet<(Uuid, Uuid)> = std::collections::HashSet::new();
    // Roots of runs, by trace id: (index into out.spans).
    let mut roots: HashMap<Uuid, usize> = HashMap::new();
    for rs in &req.resource_spans {
        let (service, resource_attributes) = attrs::resource_context(rs.resource.as_ref());
        let agent_id = ids::agent_id(org_id, &service);
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().map_or(String::new(), |s| {
                if s.version.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}@{}", s.name, s.version)
                }
            });
            for span in &ss.spans {
                let translated = translate_span(span, agent_id, &service, window).and_then(|rec| {
                    if seen.insert((rec.trace_id, rec.span_id)) {
                        Ok(rec)
                    } else {
                        Err(format!(
                            "span {} of trace {} appears more than once in this export; the first copy was kept",
                            rec.span_id, rec.trace_id
                        ))
                    }
                });
                match translated {
                    Ok(mut rec) => {
                        rec.resource_attributes = resource_attributes.clone();
                        rec.scope = scope.clone();
                        if is_run_root(span) {
                            let better = roots
                                .get(&rec.trace_id)
                                .is_none_or(|&i| out.spans[i].started_at_us > rec.started_at_us);
                            if better {
                                roots.insert(rec.trace_id, out.spans.len());
                            }
                        }
                        out.spans.push(rec);
                    }
                    Err(e) => {
                        out.rejected += 1;
                        out.error.get_or_insert(e);
                    }
                }
            }
        }
    }
    crate::prices::apply(&mut out.spans, prices);
    for (trace_id, i) in roots {
        out.traces
            .push(derive_trace(trace_id, &out.spans[i], &out.spans));
    }
    out
}

fn is_run_root(span: &Span) -> bool {
    span.parent_span_id.is_empty()
        || span.parent_span_id.iter().all(|b| *b == 0)
        || (span.flags & FLAG_HAS_IS_REMOTE != 0 && span.flags & FLAG_IS_REMOTE != 0)
}

/// A run derived from its root span; totals sum the request's spans of the
/// trace. Marked `derived`, so an SDK trace header for the same trace wins.
fn derive_trace(trace_id: Uuid, root: &SpanRecord, spans: &[SpanRecord]) -> TraceRecord {
    let of_trace = || spans.iter().filter(move |s| s.trace_id == trace_id);
    let sum = |f: fn(&SpanRecord) -> Option<i64>| {
        of_trace().filter_map(f).fold(None, |acc: Option<i64>, v| {
            Some(acc.unwrap_or(0).saturating_add(v))
        })
    };
    let attrs = |k: &str| {
        root.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    TraceRecord {
        trace_id,
        agent_id: root.agent_id,
        agent_name: root.agent_name.clone(),
        status: root.status,
        started_at_us: root.started_at_us,
        ended_at_us: root.ended_at_us,
        duration_ms: root.duration_ms,
        success: attrs("agentvista.success").and_then(|v| v.parse().ok()),
        outcome: attrs("agentvista.outcome").filter(|o| !o.is_empty()),
        total_tokens: sum(|s| s.total_tokens),
        total_cost_nanos: sum(|s| s.cost_nanos).map(|c| c.min(money::MAX_TOTAL_NANOS)),
        metadata: Vec::new(),
        derived: true,
    }
}

fn translate_span(
    span: &Span,
    agent_id: Uuid,
    service: &str,
    window: &IngestWindow,
) -> Result<SpanRecord, String> {
    let trace_id = ids::trace_id_from_otlp(&span.trace_id)
        .ok_or_else(|| "span with an invalid trace_id (need 16 non-zero bytes)".to_string())?;
    let span_id = ids::span_id_from_otlp(&span.span_id)
        .ok_or_else(|| "span with an invalid span_id (need 8 non-zero bytes)".to_string())?;
    let parent_span_id = if span.parent_span_id.is_empty() {
        None
    } else {
        Some(
            ids::span_id_from_otlp(&span.parent_span_id)
                .ok_or_else(|| "span with an invalid parent_span_id".to_string())?,
        )
    };
    let a = Attrs(&span.attributes);
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    let started_at_us = (span.start_time_unix_nano / 1_000) as i64;
    window
        .check_us(started_at_us)
        .map_err(|m| format!("span {span_id}: start_time_unix_nano {m}"))?;
    let ended_at_us =
        (span.end_time_unix_nano != 0).then_some((span.end_time_unix_nano / 1_000) as i64);
    let ended_at_us = ended_at_us.filter(|e| *e >= started_at_us);
    if let Some(e) = ended_at_us {
        window
            .check_us(e)
            .map_err(|m| format!("span {span_id}: end_time_unix_nano {m}"))?;
    }
    let code = span.status.as_ref().map_or(0, |s| s.code);
    let status = if code == StatusCode::Error as i32 {
        RunStatus::Failed
    } else if ended_at_us.is_none() {
        RunStatus::Running
    } else {
        RunStatus::Completed
    };
    let status_message = span
        .status
        .as_ref()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty());
    let usage = GenAi::read(&a).map_err(|m| format!("span {span_id}: {m}"))?;
    let events: Vec<SpanEvent> = span
        .events
        .iter()
        .take(attrs::MAX_ATTRIBUTES)
        .map(|e| SpanEvent {
            time_us: (e.time_unix_nano / 1_000).min(i64::MAX as u64) as i64,
            name: e.name.clone(),
            attributes: attrs::flatten(&e.attributes),
        })
        .collect();
    let error = (status == RunStatus::Failed).then(|| {
        status_message.clone().or_else(|| {
            events.iter().find(|e| e.name == "exception").and_then(|e| {
                e.attributes
                    .iter()
                    .find(|(k, _)| k == "exception.message")
                    .map(|(_, v)| v.clone())
            })
        })
    });
    // The message text goes to the input/output columns and, stored once,
    // leaves a marker in the attributes (shared::promoted).
    let text = |keys: &[&'static str]| keys.iter().find_map(|k| a.str(k).map(|v| (*k, v)));
    let (input, output) = (text(&promoted::INPUT_KEYS), text(&promoted::OUTPUT_KEYS));
    let mut attributes = attrs::flatten(&span.attributes);
    promoted::promote(
        &mut attributes,
        input.as_ref().map(|(k, v)| (*k, v.as_str())),
        output.as_ref().map(|(k, v)| (*k, v.as_str())),
    );
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_span_id,
        agent_id,
        agent_name: service.to_string(),
        span_type: span_type(&a, kind),
        name: span
            .name
            .chars()
            .take(crate::sdk::MAX_SPAN_NAME_LEN)
            .collect(),
        status,
        started_at_us,
        ended_at_us,
        duration_ms: ended_at_us.map(|e| (e - started_at_us) / 1_000),
        model: usage.model,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens,
        cost_nanos: usage.cost_nanos,
        input: input.map(|(_, v)| v),
        output: output.map(|(_, v)| v),
        error: error.flatten(),
        attributes,
        source: Source::Otlp,
        kind: kind_name(kind).to_string(),
        provider: usage.provider,
        cached_tokens: usage.cached_tokens,
        cost_computed: false,
        status_message,
        resource_attributes: Vec::new(),
        scope: String::new(),
        events,
        links: span
            .links
            .iter()
            .filter_map(|l| {
                Some(SpanLink {
                    trace_id: ids::trace_id_from_otlp(&l.trace_id)?,
                    span_id: ids::span_id_from_otlp(&l.span_id)?,
                    attributes: attrs::flatten(&l.attributes),
                })
            })
            .collect(),
    })
}

fn kind_name(kind: SpanKind) -> &'static str {
    use agentvista_shared::model::SpanKind as Kind;
    match kind {
        SpanKind::Unspecified => Kind::Unspecified,
        SpanKind::Internal => Kind::Internal,
        SpanKind::Server => Kind::Server,
        SpanKind::Client => Kind::Client,
        SpanKind::Producer => Kind::Producer,
        SpanKind::Consumer => Kind::Consumer,
    }
    .as_str()
}

/// Span type per contract ruling 7, first match wins.
pub fn span_type(a: &Attrs<'_>, kind: SpanKind) -> SpanType {
    let op = a.str("gen_ai.operation.name").unwrap_or_default();
    let oi = a
        .str("openinference.span.kind")
        .unwrap_or_default()
        .to_ascii_uppercase();
    if matches!(
        op.as_str(),
        "chat" | "text_completion" | "generate_content" | "embeddings"
    ) || a.has("gen_ai.request.model")
        || oi == "LLM"
        || oi == "EMBEDDING"
    {
        SpanType::Llm
    } else if op == "execute_tool" || oi == "TOOL" || a.has("gen_ai.tool.name") {
        SpanType::Tool
    } else if matches!(op.as_str(), "invoke_agent" | "create_agent") || oi == "AGENT" {
        SpanType::Agent
    } else if a.has("db.system") || a.has("db.system.name") {
        SpanType::Db
    } else if kind == SpanKind::Client && (a.has("http.request.method") || a.has("http.method")) {
        SpanType::Http
    } else {
        SpanType::Custom
    }
}

/// Model, provider, token and client-cost attributes of the GenAI semantic
/// conventions (current and older names) and OpenInference.
#[derive(Debug, Default, PartialEq)]
pub struct GenAi {
    pub model: Option<String>,
    pub provider: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_nanos: Option<i64>,
}

/// A token count attribute: absent, or an integer in the range
/// `/traces/batch` accepts.
fn token_attr(a: &Attrs<'_>, keys: &[&str]) -> Result<Option<i64>, String> {
    let Some(key) = keys.iter().find(|k| a.has(k)) else {
        return Ok(None);
    };
    match a.int(key) {
        Some(t) if (0..=crate::sdk::MAX_TOKENS).contains(&t) => Ok(Some(t)),
        _ => Err(format!(
            "{key} must be a non-negative integer of at most {}",
            crate::sdk::MAX_TOKENS
        )),
    }
}

impl GenAi {
    /// The usage attributes of a span; an invalid token count or cost is an
    /// error naming the attribute (the span is rejected, as a batch with
    /// such a field is).
    pub fn read(a: &Attrs<'_>) -> Result<GenAi, String> {
        let input_tokens = token_attr(
            a,
            &[
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.prompt_tokens",
                "llm.token_count.prompt",
            ],
        )?;
        let output_tokens = token_attr(
            a,
            &[
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.completion_tokens",
                "llm.token_count.completion",
            ],
        )?;
        let total_tokens = token_attr(
            a,
            &[
                "gen_ai.usage.total_tokens",
                "llm.usage.total_tokens",
                "llm.token_count.total",
            ],
        )?
        .or(match (input_tokens, output_tokens) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
        });
        let cached_tokens = token_attr(
            a,
            &[
                "gen_ai.usage.cache_read_input_tokens",
                "gen_ai.usage.cached_tokens",
                "llm.token_count.prompt_details.cache_read",
            ],
        )?;
        let cost_keys = ["gen_ai.usage.cost", "agentvista.cost_usd", "llm.cost.total"];
        let cost_nanos = match cost_keys.iter().find(|k| a.has(k)) {
            None => None,
            Some(key) => {
                let text = a.str(key).unwrap_or_default();
                Some(money::parse_usd(&text).map_err(|m| format!("{key} {m}"))?)
            }
        };
        Ok(GenAi {
            model: a
                .first_str(&[
                    "gen_ai.response.model",
                    "gen_ai.request.model",
                    "llm.model_name",
                ])
                .map(|m| m.chars().take(crate::sdk::MAX_NAME_LEN).collect()),
            provider: a.first_str(&[
                "gen_ai.provider.name",
                "gen_ai.system",
                "llm.provider",
                "llm.system",
            ]),
            input_tokens,
            output_tokens,
            total_tokens,
            cached_tokens,
            cost_nanos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue, KeyValue};

    fn kv(k: &str, v: Av) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }
    fn s(k: &str, v: &str) -> KeyValue {
        kv(k, Av::StringValue(v.into()))
    }
    fn i(k: &str, v: i64) -> KeyValue {
        kv(k, Av::IntValue(v))
    }

    #[test]
    fn span_type_rules() {
        let cases: Vec<(Vec<KeyValue>, SpanKind, SpanType)> = vec![
            (
                vec![s("gen_ai.operation.name", "chat")],
                SpanKind::Client,
                SpanType::Llm,
            ),
            (
                vec![s("gen_ai.operation.name", "embeddings")],
                SpanKind::Client,
                SpanType::Llm,
            ),
            (
                vec![s("gen_ai.request.model", "gpt-4o")],
                SpanKind::Internal,
                SpanType::Llm,
            ),
            (
                vec![s("openinference.span.kind", "LLM")],
                SpanKind::Internal,
                SpanType::Llm,
            ),
            (
                vec![s("gen_ai.operation.name", "execute_tool")],
                SpanKind::Internal,
                SpanType::Tool,
            ),
            (
                vec![s("openinference.span.kind", "TOOL")],
                SpanKind::Internal,
                SpanType::Tool,
            ),
            (
                vec![s("gen_ai.operation.name", "invoke_agent")],
                SpanKind::Internal,
                SpanType::Agent,
            ),
            (
                vec![s("openinference.span.kind", "AGENT")],
                SpanKind::Internal,
                SpanType::Agent,
            ),
            (
                vec![s("db.system", "postgresql")],
                SpanKind::Client,
                SpanType::Db,
            ),
            (
                vec![s("db.system.name", "redis")],
                SpanKind::Client,
                SpanType::Db,
            ),
            (
                vec![s("http.request.method", "GET")],
                SpanKind::Client,
                SpanType::Http,
            ),
            (
                vec![s("http.method", "GET")],
                SpanKind::Client,
                SpanType::Http,
            ),
            (
                vec![s("http.request.method", "GET")],
                SpanKind::Server,
                SpanType::Custom,
            ),
            (vec![], SpanKind::Internal, SpanType::Custom),
        ];
        for (attrs, kind, want) in cases {
            assert_eq!(span_type(&Attrs(&attrs), kind), want, "{attrs:?} {kind:?}");
        }
    }

    /// Token counts and costs are bounded as `/traces/batch` bounds them; a
    /// bad one names the attribute (the span is rejected in partial_success)
    /// instead of being dropped in silence.
    #[test]
    fn invalid_usage_attributes_name_the_attribute() {
        let cases: Vec<(Vec<KeyValue>, &str)> = vec![
            (
                vec![i("gen_ai.usage.input_tokens", -5)],
                "gen_ai.usage.input_tokens must be a non-negative integer",
            ),
            (
                vec![i("gen_ai.usage.output_tokens", 2_000_000_000_000)],
                "gen_ai.usage.output_tokens must be",
            ),
            (
                vec![s("llm.token_count.total", "many")],
                "llm.token_count.total must be",
            ),
            (
                vec![s("gen_ai.usage.cost", "cheap")],
                "gen_ai.usage.cost must be a decimal string",
            ),
            (
                vec![s("agentvista.cost_usd", "-1")],
                "agentvista.cost_usd must not be negative",
            ),
            (
                vec![s("llm.cost.total", "2000000")],
                "llm.cost.total is too large (at most 1000000 USD)",
            ),
        ];
        for (attrs, want) in cases {
            let err = GenAi::read(&Attrs(&attrs)).expect_err(want);
            assert!(err.starts_with(want), "want {want:?}, got {err:?}");
        }
        let ok = vec![
            i("gen_ai.usage.input_tokens", 0),
            s("gen_ai.usage.cost", "0.5"),
        ];
        let g = GenAi::read(&Attrs(&ok)).unwrap();
        assert_eq!((g.input_tokens, g.cost_nanos), (Some(0), Some(500_000_000)));
    }

    #[test]
    fn genai_attribute_sets() {
        let current = vec![
            s("gen_ai.request.model", "gpt-4o"),
            s("gen_ai.response.model", "gpt-4o-2024-08-06"),
            s("gen_ai.provider.name", "openai"),
            i("gen_ai.usage.input_tokens", 800),
            i("gen_ai.usage.output_tokens", 120),
            i("gen_ai.usage.cache_read_input_tokens", 100),
        ];
        let g = GenAi::read(&Attrs(&current)).unwrap();
        assert_eq!(g.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(g.provider.as_deref(), Some("openai"));
        assert_eq!(
            (g.input_tokens, g.output_tokens, g.total_tokens),
            (Some(800), Some(120), Some(920))
        );
        assert_eq!(g.cached_tokens, Some(100));
        assert_eq!(g.cost_nanos, None);

        let older = vec![
            s("gen_ai.system", "anthropic"),
            i("gen_ai.usage.prompt_tokens", 10),
            i("gen_ai.usage.completion_tokens", 5),
            s("gen_ai.usage.cost", "0.000123"),
        ];
        let g = GenAi::read(&Attrs(&older)).unwrap();
        assert_eq!(g.provider.as_deref(), Some("anthropic"));
        assert_eq!(
            (g.input_tokens, g.output_tokens, g.total_tokens),
            (Some(10), Some(5), Some(15))
        );
        assert_eq!(g.cost_nanos, Some(123_000));

        let openinference = vec![
            s("llm.model_name", "claude-3-5-sonnet-20241022"),
            s("llm.provider", "anthropic"),
            i("llm.token_count.prompt", 300),
            i("llm.token_count.completion", 50),
            i("llm.token_count.total", 350),
            s("llm.token_count.prompt_details.cache_read", "20"),
        ];
        let g = GenAi::read(&Attrs(&openinference)).unwrap();
        assert_eq!(g.model.as_deref(), Some("claude-3-5-sonnet-20241022"));
        assert_eq!(
            (g.input_tokens, g.output_tokens, g.total_tokens),
            (Some(300), Some(50), Some(350))
        );
        assert_eq!(g.cached_tokens, Some(20));
    }

    #[test]
    fn ids_status_and_roots() {
        let org = Uuid::new_v4();
        let trace = hex::decode("5b8efff798038103d269b633813fc60c").unwrap();
        let root = Span {
            trace_id: trace.clone(),
            span_id: hex::decode("eee19b7ec3c1b174").unwrap(),
            name: "root".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_002_000_000_000,
            ..Default::default()
        };
        let child = Span {
            trace_id: trace.clone(),
            span_id: hex::decode("eee19b7ec3c1b175").unwrap(),
            parent_span_id: root.span_id.clone(),
            name: "child".into(),
            start_time_unix_nano: 1_700_000_000_500_000_000,
            end_time_unix_nano: 1_700_000_001_000_000_000,
            status: Some(opentelemetry_proto::tonic::trace::v1::Status {
                code: 2,
                message: "boom".into(),
            }),
            attributes: vec![i("gen_ai.usage.input_tokens", 7)],
            ..Default::default()
        };
        let bad = Span {
            trace_id: vec![0; 16],
            span_id: vec![1; 8],
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![s("service.name", "checkout")],
                    ..Default::default()
                }),
                scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                    spans: vec![root, child, bad],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let t = translate(&req, org, &HashMap::new(), &IngestWindow::unbounded());
        assert_eq!(t.rejected, 1);
        assert_eq!(t.spans.len(), 2);
        let (r, c) = (&t.spans[0], &t.spans[1]);
        assert_eq!(
            r.trace_id.to_string(),
            "5b8efff7-9803-8103-d269-b633813fc60c"
        );
        assert_eq!(
            r.span_id.to_string(),
            "00000000-0000-0000-eee1-9b7ec3c1b174"
        );
        assert_eq!(c.parent_span_id, Some(r.span_id));
        assert_eq!(r.agent_name, "checkout");
        assert_eq!(r.agent_id, ids::agent_id(org, "checkout"));
        assert_eq!(r.duration_ms, Some(2000));
        assert_eq!(r.status, RunStatus::Completed);
        assert_eq!(c.status, RunStatus::Failed);
        assert_eq!(c.error.as_deref(), Some("boom"));
        assert_eq!(t.traces.len(), 1);
        let run = &t.traces[0];
        assert!(run.derived);
        assert_eq!(run.agent_name, "checkout");
        assert_eq!(run.duration_ms, Some(2000));
        assert_eq!(run.total_tokens, Some(7));
    }
}
