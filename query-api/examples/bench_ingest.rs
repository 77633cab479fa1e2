//! Ingest benchmark: the gateway, the writer and the whole pipeline against
//! their physical ceilings, measured in one run on the local stack.
//!
//!     scripts/bench            # builds the release binaries, then runs this
//!
//! What it prints (a markdown table, also the source of BENCHMARKS.md):
//!
//! - gateway throughput (spans/s, MB/s of request bodies, p50/p99 latency,
//!   spans per gateway CPU-second) for `/traces/batch` with 100-span batches
//!   and OTLP traces (512 spans per export, the OpenTelemetry SDK's default
//!   batch) as protobuf, gzip protobuf and JSON, against a gateway started
//!   from `target/release` on its own topic;
//! - the ceilings for the same work in the same run: an HTTP server that
//!   reads the same bodies and does nothing (this binary, re-executed), and a
//!   plain rdkafka producer with the gateway's settings sending the very
//!   messages the gateway would produce for those bodies;
//! - writer throughput (rows/s) draining a pre-filled topic into a scratch
//!   ClickHouse database, against inserting the same rows straight into
//!   ClickHouse with the same client;
//! - ingest-to-queryable latency at a steady 10k spans/s through the running
//!   stack (`scripts/up`): from the gateway's 200 to the query API returning
//!   the whole trace;
//! - peak RSS (VmHWM) of every process involved.
//!
//! Knobs (environment): `AV_BENCH_SECS` (measured seconds per load run,
//! default 8, after 1 s of warm-up), `AV_BENCH_CONCURRENCY` (requests in
//! flight, default 16), `AV_BENCH_WRITER_SPANS` (default 1,000,000),
//! `AV_BENCH_FRESH_SECS` (default 20), `AV_BENCH_GATEWAY_URL` and
//! `AV_BENCH_QUERY_URL` (the running stack, default :8081 and :8082);
//! for profiling, `AV_BENCH_MODES` (names from the table, comma-separated)
//! and `AV_BENCH_GATEWAY_ONLY=1` (skip the writer and freshness runs).

use agentvista_shared::config::CommonConfig;
use agentvista_shared::queue::{IngestMessage, FORMAT_VERSION};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use ingest_gateway::producer::Queue;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

mod support;

const SDK_TRACES: usize = 10;
const SDK_SPANS_PER_TRACE: usize = 10;
const OTLP_TRACES: usize = 32;
const OTLP_SPANS_PER_TRACE: usize = 16;
/// Distinct bodies per mode, sent in turn.
const BODIES: usize = 32;
const GATEWAY_PORT: u16 = 18181;
const NULL_PORT: u16 = 18182;
const WRITER_PORT: u16 = 18183;
const WRITER_DB: &str = "agentvista_bench_ingest";
const WARM_UP: Duration = Duration::from_secs(1);
/// The raw producer's measured window: it moves millions of spans a second
/// into the broker, which keeps them on disk until the topic is deleted.
const RAW_SECS: u64 = 3;

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("null-server") {
        let port: u16 = args.get(1).context("null-server PORT")?.parse()?;
        return tokio::runtime::Runtime::new()?.block_on(null_server(port));
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

// ---------------------------------------------------------------- payloads

/// One kind of ingestion request, with the bodies sent and, for each body,
/// the queue messages the gateway produces for it.
struct Mode {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    gzip: bool,
    spans_per_body: u64,
    bodies: Vec<Bytes>,
    messages: Vec<Vec<Vec<u8>>>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// A `/traces/batch` body: `traces` runs of `per_trace` spans (a root and
/// LLM children), realistic field sizes. Returns the trace ids too.
fn sdk_body(traces: usize, per_trace: usize, agents: usize) -> (Vec<Uuid>, Value) {
    let now = time::OffsetDateTime::now_utc();
    let start = rfc3339(now - time::Duration::seconds(2));
    let end = rfc3339(now);
    let mut ids = Vec::new();
    let entries: Vec<Value> = (0..traces)
        .map(|t| {
            let trace_id = Uuid::new_v4();
            ids.push(trace_id);
            let root = Uuid::new_v4();
            let spans: Vec<Value> = (0..per_trace)
                .map(|i| {
                    let mut s = json!({
                        "span_id": if i == 0 { root } else { Uuid::new_v4() },
                        "trace_id": trace_id,
                        "type": if i == 0 { "agent" } else { "llm" },
                        "name": format!("step {i}"),
                        "status": "completed",
                        "started_at": start,
                        "ended_at": end,
                        "duration_ms": 1700,
                        "model": "gpt-4o",
                        "input_tokens": 800,
                        "output_tokens": 120,
                        "total_tokens": 920,
                        "cost_usd": "0.003200",
                        "input": "Summarize the customer's last three support tickets and propose a next step.",
                        "output": "The customer reported login failures twice; suggest a password reset link.",
                    });
                    if i > 0 {
                        s["parent_span_id"] = json!(root);
                    }
                    s
                })
                .collect();
            json!({
                "trace": {
                    "trace_id": trace_id,
                    "agent": format!("bench-agent-{}", t % agents),
                    "status": "completed",
                    "started_at": start,
                    "ended_at": end,
                    "duration_ms": 2000,
                    "success": true,
                    "outcome": "resolved",
                },
                "spans": spans,
            })
        })
        .collect();
    (ids, json!({ "traces": entries }))
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

/// An OTLP export as the OpenTelemetry SDK sends it: one resource, one
/// scope, `traces` traces of `per_trace` spans (an agent root and chat
/// children with GenAI semantic-convention attributes).
fn otlp_request(traces: usize, per_trace: usize) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let mut spans = Vec::with_capacity(traces * per_trace);
    for _ in 0..traces {
        let trace_id = Uuid::new_v4().as_bytes().to_vec();
        let root = Uuid::new_v4().as_bytes()[..8].to_vec();
        for n in 0..per_trace {
            let (span_id, parent, name, attributes) = if n == 0 {
                (
                    root.clone(),
                    Vec::new(),
                    "invoke_agent support".to_string(),
                    vec![
                        s("gen_ai.operation.name", "invoke_agent"),
                        s("gen_ai.agent.name", "support"),
                        s("agentvista.outcome", "resolved"),
                    ],
                )
            } else {
                (
                    Uuid::new_v4().as_bytes()[..8].to_vec(),
                    root.clone(),
                    "chat gpt-4o".to_string(),
                    vec![
                        s("gen_ai.operation.name", "chat"),
                        s("gen_ai.system", "openai"),
                        s("gen_ai.request.model", "gpt-4o"),
                        s("gen_ai.response.model", "gpt-4o-2024-08-06"),
                        i("gen_ai.usage.input_tokens", 800),
                        i("gen_ai.usage.output_tokens", 120),
                        s("gen_ai.response.finish_reasons", "stop"),
                        s("server.address", "api.openai.com"),
                    ],
                )
            };
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id,
                parent_span_id: parent,
                name,
                kind: if n == 0 {
                    span::SpanKind::Internal
                } else {
                    span::SpanKind::Client
                } as i32,
                start_time_unix_nano: now - 2_000_000_000,
                end_time_unix_nano: now - 300_000_000,
                attributes,
                status: Some(Status {
                    code: 1,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", "bench-agent"),
                    s("service.version", "1.4.2"),
                    s("telemetry.sdk.language", "python"),
                    s("telemetry.sdk.name", "opentelemetry"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.openai".into(),
                    version: "0.48b0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The same export in OTLP/JSON (hex ids, camelCase, int64 as strings).
fn otlp_json(req: &ExportTraceServiceRequest) -> Value {
    fn attrs(kvs: &[KeyValue]) -> Value {
        kvs.iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::IntValue(n)) => json!({"intValue": n.to_string()}),
                    Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
                    _ => json!({}),
                };
                json!({"key": kv.key, "value": v})
            })
            .collect()
    }
    let rs = &req.resource_spans[0];
    let ss = &rs.scope_spans[0];
    let spans: Vec<Value> = ss
        .spans
        .iter()
        .map(|sp| {
            json!({
                "traceId": hex::encode(&sp.trace_id),
                "spanId": hex::encode(&sp.span_id),
                "parentSpanId": hex::encode(&sp.parent_span_id),
                "name": sp.name,
                "kind": sp.kind,
                "startTimeUnixNano": sp.start_time_unix_nano.to_string(),
                "endTimeUnixNano": sp.end_time_unix_nano.to_string(),
                "attributes": attrs(&sp.attributes),
                "status": {"code": 1},
            })
        })
        .collect();
    let scope = ss.scope.as_ref().expect("scope");
    json!({"resourceSpans": [{
        "resource": {"attributes": attrs(&rs.resource.as_ref().expect("resource").attributes)},
        "scopeSpans": [{"scope": {"name": scope.name, "version": scope.version}, "spans": spans}],
    }]})
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn template(org_id: Uuid) -> IngestMessage {
    IngestMessage {
        format: FORMAT_VERSION,
        org_id,
        version: 1,
        retention_days: 30,
        traces: Vec::new(),
        spans: Vec::new(),
        logs: Vec::new(),
        metrics: Vec::new(),
    }
}

/// The messages the gateway produces for one `/traces/batch` body.
fn sdk_messages(body: &[u8], org_id: Uuid) -> Vec<Vec<u8>> {
    let mut batch = ingest_gateway::sdk::parse(
        body,
        &HashMap::new(),
        &agentvista_shared::window::IngestWindow::now(),
    )
    .expect("valid bench body");
    ingest_gateway::sdk::assign_agent_ids(&mut batch, org_id);
    let mut m = template(org_id);
    m.traces = batch.traces;
    m.spans = batch.spans;
    vec![m.encode()]
}

/// The messages the gateway produces for one OTLP export.
fn otlp_messages(req: &ExportTraceServiceRequest, org_id: Uuid) -> Vec<Vec<u8>> {
    let t = ingest_gateway::otlp::traces::translate(
        req,
        org_id,
        &HashMap::new(),
        &agentvista_shared::window::IngestWindow::now(),
    );
    let mut spans = template(org_id);
    spans.spans = t.spans;
    let mut traces = template(org_id);
    traces.traces = t.traces;
    vec![spans.encode(), traces.encode()]
}

fn modes(org_id: Uuid) -> Vec<Mode> {
    let mut sdk = Mode {
        name: "/traces/batch JSON",
        path: "/api/v1/traces/batch",
        content_type: "application/json",
        gzip: false,
        spans_per_body: (SDK_TRACES * SDK_SPANS_PER_TRACE) as u64,
        bodies: Vec::new(),
        messages: Vec::new(),
    };
    let mut pb = Mode {
        name: "OTLP protobuf",
        path: "/v1/traces",
        content_type: "application/x-protobuf",
        gzip: false,
        spans_per_body: (OTLP_TRACES * OTLP_SPANS_PER_TRACE) as u64,
        bodies: Vec::new(),
        messages: Vec::new(),
    };
    let mut pbz = Mode {
        name: "OTLP protobuf gzip",
        gzip: true,
        bodies: Vec::new(),
        messages: Vec::new(),
        ..pb
    };
    let mut js = Mode {
        name: "OTLP JSON",
        content_type: "application/json",
        bodies: Vec::new(),
        messages: Vec::new(),
        ..pb
    };
    for _ in 0..BODIES {
        let body =
            serde_json::to_vec(&sdk_body(SDK_TRACES, SDK_SPANS_PER_TRACE, 8).1).expect("json");
        sdk.messages.push(sdk_messages(&body, org_id));
        sdk.bodies.push(body.into());
        let req = otlp_request(OTLP_TRACES, OTLP_SPANS_PER_TRACE);
        let msgs = otlp_messages(&req, org_id);
        let bytes = req.encode_to_vec();
        pbz.bodies.push(gzip(&bytes).into());
        pb.bodies.push(bytes.into());
        js.bodies
            .push(serde_json::to_vec(&otlp_json(&req)).expect("json").into());
        pb.messages.push(msgs.clone());
        pbz.messages.push(msgs.clone());
        js.messages.push(msgs);
    }
    vec![sdk, pb, pbz, js]
}

// ---------------------------------------------------------------- processes

/// A child process, killed when dropped.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn spawn(
    name: &'static str,
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<Proc> {
    let log_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack/logs");
    std::fs::create_dir_all(&log_dir)?;
    let log = std::fs::File::create(log_dir.join(format!("bench-{name}.log")))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(Proc { child })
}

fn release_bin(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release")
        .join(name);
    anyhow::ensure!(
        p.exists(),
        "{} is missing: run `cargo build --release --bins` (scripts/bench does)",
        p.display()
    );
    Ok(p)
}

async fn wait_http(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{url} did not come up")
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clk_tck()
}

// ---------------------------------------------------------------- load

/// What the loops of one run counted in the measured window.
#[derive(Default)]
struct Tally {
    spans: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.spans += other.spans;
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// One load run: its tally, the window's length and the measured process's
/// CPU seconds during it.
struct Load {
    tally: Tally,
    secs: f64,
    cpu: f64,
}

impl Load {
    fn spans_per_sec(&self) -> f64 {
        self.tally.spans as f64 / self.secs
    }
    fn mb_per_sec(&self) -> f64 {
        self.tally.bytes as f64 / self.secs / 1e6
    }
    fn per_core(&self) -> f64 {
        if self.cpu > 0.0 {
            self.tally.spans as f64 / self.cpu
        } else {
            f64::NAN
        }
    }
    fn percentile_ms(&mut self, p: f64) -> f64 {
        percentile(&mut self.tally.latencies_us, p) as f64 / 1000.0
    }
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx]
}

/// Run `concurrency` loops of `one` (which sends body number `i` and returns
/// whether it succeeded, and an error text) for a warm-up second and then
/// `secs` measured seconds; count what started and finished in the window.
async fn drive<F, Fut>(concurrency: usize, secs: u64, pid: u32, mode: &Mode, one: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let warm_end = start + WARM_UP;
    let end = warm_end + Duration::from_secs(secs);
    let one = Arc::new(one);
    let sizes: Arc<Vec<u64>> = Arc::new(mode.bodies.iter().map(|b| b.len() as u64).collect());
    let spans_per_body = mode.spans_per_body;
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let one = one.clone();
            let sizes = sizes.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut n = t;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let i = n % sizes.len();
                    n += concurrency;
                    let result = one(i).await;
                    let t1 = Instant::now();
                    if t0 < warm_end || t1 > end {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            tally.spans += spans_per_body;
                            tally.bytes += sizes[i];
                            tally.latencies_us.push((t1 - t0).as_micros() as u64);
                        }
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert(e);
                        }
                    }
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep_until(warm_end.into()).await;
    let cpu0 = cpu_secs(pid);
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = cpu_secs(pid);
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await.expect("load task"));
    }
    Load {
        tally,
        secs: (end - warm_end).as_secs_f64(),
        cpu: cpu1 - cpu0,
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

async fn http_load(
    client: &HttpClient,
    base: &str,
    key: &str,
    mode: &Mode,
    concurrency: usize,
    secs: u64,
    pid: u32,
) -> Load {
    let url: hyper::Uri = format!("{base}{}", mode.path).parse().expect("url");
    let bodies = Arc::new(mode.bodies.clone());
    let auth = format!("Bearer {key}");
    let (ct, gz) = (mode.content_type, mode.gzip);
    let client = client.clone();
    drive(concurrency, secs, pid, mode, move |i| {
        let mut req = hyper::Request::post(url.clone())
            .header("content-type", ct)
            .header("authorization", auth.as_str());
        if gz {
            req = req.header("content-encoding", "gzip");
        }
        let req = req.body(Full::new(bodies[i].clone())).expect("request");
        let client = client.clone();
        async move {
            let resp = client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
            }
        }
    })
    .await
}

async fn producer_load(queue: Arc<Queue>, mode: &Mode, concurrency: usize, secs: u64) -> Load {
    let messages = Arc::new(mode.messages.clone());
    let key = Uuid::new_v4();
    drive(concurrency, secs, std::process::id(), mode, move |i| {
        let queue = queue.clone();
        let messages = messages.clone();
        async move {
            let sends = messages[i].iter().map(|m| queue.send(key.as_bytes(), m));
            for r in futures::future::join_all(sends).await {
                r.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    })
    .await
}

/// An HTTP server that reads request bodies and answers 200 `{}`.
async fn null_server(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = Limited::new(req.into_body(), 16 << 20).collect().await;
                    let status = if body.is_ok() { 200 } else { 413 };
                    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                    *resp.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
                    Ok::<_, std::convert::Infallible>(resp)
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

// ---------------------------------------------------------------- phases

struct WriterResult {
    rows: u64,
    writer_rows_per_sec: f64,
    ceiling_rows_per_sec: f64,
    stored_spans: u64,
    rss_mb: Option<f64>,
}

/// Fill a topic with `spans` spans, insert the same rows straight into
/// ClickHouse (the ceiling), then let a writer drain the topic.
async fn writer_phase(
    common: &CommonConfig,
    org_id: Uuid,
    spans: usize,
) -> anyhow::Result<WriterResult> {
    let topic = format!("av.bench.writer.{}", Uuid::new_v4().simple());
    support::create_topic(&common.kafka_brokers, &topic).await?;
    let per_body = SDK_TRACES * SDK_SPANS_PER_TRACE;
    let messages: Vec<Vec<u8>> = (0..spans.div_ceil(per_body))
        .flat_map(|_| {
            let body =
                serde_json::to_vec(&sdk_body(SDK_TRACES, SDK_SPANS_PER_TRACE, 8).1).expect("json");
            sdk_messages(&body, org_id)
        })
        .collect();
    let queue = Queue::new(&common.kafka_brokers, &topic, Duration::from_secs(30))?;
    for chunk in messages.chunks(500) {
        let sends = chunk.iter().map(|m| queue.send(org_id.as_bytes(), m));
        for r in futures::future::join_all(sends).await {
            r?;
        }
    }

    let server = writer::clickhouse_client(common);
    server
        .query(&format!("DROP DATABASE IF EXISTS {WRITER_DB}"))
        .execute()
        .await?;
    writer::schema::migrate(&server, WRITER_DB).await?;
    let ch = writer::clickhouse_client(common).with_database(WRITER_DB);

    // Ceiling: the same rows, decoded and batched beforehand, inserted with
    // the writer's own insert path.
    let batch_rows: usize = env_or("AV_WRITER_BATCH_ROWS", 20_000);
    let mut buffers = vec![writer::rows::Buffer::default()];
    for m in &messages {
        let b = buffers.last_mut().expect("one");
        b.push(IngestMessage::decode(m)?);
        if b.len() >= batch_rows {
            buffers.push(writer::rows::Buffer::default());
        }
    }
    let rows: u64 = buffers.iter().map(|b| b.len() as u64).sum();
    let t = Instant::now();
    for b in &buffers {
        writer::insert_buffer(&ch, b).await?;
    }
    let ceiling_rows_per_sec = rows as f64 / t.elapsed().as_secs_f64();
    drop(buffers);
    for table in ["agents", "traces", "spans"] {
        ch.query(&format!("TRUNCATE TABLE {table}"))
            .execute()
            .await?;
    }

    // The writer, draining the topic.
    let spawned = Instant::now();
    let proc = spawn(
        "writer",
        &release_bin("writer")?,
        &[],
        &[
            ("AV_KAFKA_TOPIC", topic.clone()),
            (
                "AV_WRITER_GROUP",
                format!("bench-{}", Uuid::new_v4().simple()),
            ),
            ("AV_CLICKHOUSE_DATABASE", WRITER_DB.to_string()),
            ("AV_WRITER_LISTEN", format!("127.0.0.1:{WRITER_PORT}")),
        ],
    )?;
    let metrics_url = format!("http://127.0.0.1:{WRITER_PORT}/metrics");
    wait_http(&format!("http://127.0.0.1:{WRITER_PORT}/healthz")).await?;
    let client = reqwest::Client::new();
    let read_rows = || async {
        let text = client
            .get(&metrics_url)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("av_writer_rows_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut first: Option<(Instant, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let finished = loop {
        let n = read_rows().await.unwrap_or(0);
        if n > 0 && first.is_none() {
            first = Some((Instant::now(), n));
        }
        if n >= rows {
            break Instant::now();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the writer stalled at {n} of {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (t1, r1) = first.expect("rows seen");
    let writer_rows_per_sec = if r1 < rows {
        (rows - r1) as f64 / (finished - t1).as_secs_f64()
    } else {
        eprintln!("the whole backlog fit one flush: the writer rate includes its start-up (raise AV_BENCH_WRITER_SPANS)");
        rows as f64 / (finished - spawned).as_secs_f64()
    };
    let rss_mb = support::peak_rss_mb(proc.pid());
    drop(proc);
    support::delete_topic(&common.kafka_brokers, &topic).await;
    let stored_spans: u64 = ch
        .query("SELECT count() FROM spans FINAL")
        .fetch_one()
        .await?;
    Ok(WriterResult {
        rows,
        writer_rows_per_sec,
        ceiling_rows_per_sec,
        stored_spans,
        rss_mb,
    })
}

struct Freshness {
    sent_spans: u64,
    acked: u64,
    samples: Vec<u64>,
    missing: u64,
    secs: u64,
}

/// A steady 10k spans/s (100 batches of 100 spans per second) through the
/// running stack; every tenth batch, one of its traces is polled on the
/// query API every 20 ms from the moment of the 200 until all its spans are
/// returned.
async fn freshness(gateway: &str, query: &str, key: &str, secs: u64) -> anyhow::Result<Freshness> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut senders = Vec::new();
    let mut n = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        let (ids, body) = sdk_body(SDK_TRACES, SDK_SPANS_PER_TRACE, 4);
        let client = client.clone();
        let url = format!("{gateway}/api/v1/traces/batch");
        let trace_url = format!("{query}/api/v1/dashboard/traces/{}", ids[0]);
        let key = key.to_string();
        let sampled = n.is_multiple_of(10);
        senders.push(tokio::spawn(async move {
            let resp = client
                .post(&url)
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let acked = Instant::now();
            if !sampled {
                return Some(None);
            }
            let give_up = acked + Duration::from_secs(30);
            while Instant::now() < give_up {
                if let Ok(r) = client.get(&trace_url).bearer_auth(&key).send().await {
                    if r.status().is_success() {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        if v["spans"].as_array().map_or(0, Vec::len) == SDK_SPANS_PER_TRACE {
                            return Some(Some(Some(acked.elapsed().as_micros() as u64)));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(Some(None))
        }));
    }
    let mut out = Freshness {
        sent_spans: n * (SDK_TRACES * SDK_SPANS_PER_TRACE) as u64,
        acked: 0,
        samples: Vec::new(),
        missing: 0,
        secs,
    };
    for s in senders {
        match s.await? {
            None => {}
            Some(None) => out.acked += 1,
            Some(Some(Some(us))) => {
                out.acked += 1;
                out.samples.push(us);
            }
            Some(Some(None)) => {
                out.acked += 1;
                out.missing += 1;
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- report

async fn run() -> anyhow::Result<()> {
    let secs: u64 = env_or("AV_BENCH_SECS", 8);
    let concurrency: usize = env_or("AV_BENCH_CONCURRENCY", 16);
    let writer_spans: usize = env_or("AV_BENCH_WRITER_SPANS", 1_000_000);
    let fresh_secs: u64 = env_or("AV_BENCH_FRESH_SECS", 20);
    let stack_gateway =
        std::env::var("AV_BENCH_GATEWAY_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".into());
    let stack_query =
        std::env::var("AV_BENCH_QUERY_URL").unwrap_or_else(|_| "http://127.0.0.1:8082".into());
    let common = CommonConfig::from_env()?;

    let (org_id, key) = support::bench_account(&common).await?;

    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# AgentVista ingest benchmark");
    println!();
    println!("machine: {cores} cores ({cpu_model}); load generator, services, broker, ClickHouse, Redis and PostgreSQL all share them");
    println!("settings: {secs} s measured per run after 1 s warm-up, {concurrency} requests in flight, /traces/batch {} spans per request, OTLP {} spans per export", SDK_TRACES * SDK_SPANS_PER_TRACE, OTLP_TRACES * OTLP_SPANS_PER_TRACE);
    println!();

    // Gateway and its ceilings, each mode on a dedicated topic that no
    // writer reads.
    let modes = modes(org_id);
    let null = spawn(
        "null-server",
        &std::env::current_exe()?,
        &["null-server", &NULL_PORT.to_string()],
        &[],
    )?;
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(concurrency * 2)
            .build_http();
    let mut gateway_rss: Option<f64> = None;

    println!("## Gateway (acks=all) against its ceilings");
    println!();
    println!("| request | gateway spans/s | MB/s | p50 ms | p99 ms | spans per gateway CPU-s | null HTTP server spans/s | raw producer spans/s | gateway ÷ null server | gateway ÷ raw producer |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::var("AV_BENCH_MODES").unwrap_or_default();
    for mode in modes
        .iter()
        .filter(|m| only.is_empty() || only.split(',').any(|o| m.name == o.trim()))
    {
        // A gateway and a topic of its own per mode; the topic is deleted
        // afterwards, so the local broker's disk does not keep what it held.
        let topic = format!("av.bench.gateway.{}", Uuid::new_v4().simple());
        support::create_topic(&common.kafka_brokers, &topic).await?;
        let gateway = spawn(
            "ingest-gateway",
            &release_bin("ingest-gateway")?,
            &[],
            &[
                ("AV_KAFKA_TOPIC", topic.clone()),
                ("AV_GATEWAY_LISTEN", format!("127.0.0.1:{GATEWAY_PORT}")),
            ],
        )?;
        wait_http(&format!("http://127.0.0.1:{GATEWAY_PORT}/healthz")).await?;
        let queue = Arc::new(Queue::new(
            &common.kafka_brokers,
            &topic,
            Duration::from_secs(30),
        )?);
        let null_load = http_load(
            &client,
            &format!("http://127.0.0.1:{NULL_PORT}"),
            &key,
            mode,
            concurrency,
            secs,
            null.pid(),
        )
        .await;
        let raw = producer_load(queue.clone(), mode, concurrency, secs.min(RAW_SECS)).await;
        let mut gw = http_load(
            &client,
            &format!("http://127.0.0.1:{GATEWAY_PORT}"),
            &key,
            mode,
            concurrency,
            secs,
            gateway.pid(),
        )
        .await;
        for (what, l) in [
            ("gateway", &gw),
            ("null server", &null_load),
            ("raw producer", &raw),
        ] {
            if l.tally.errors > 0 {
                eprintln!(
                    "{} {what}: {} errors, first: {}",
                    mode.name,
                    l.tally.errors,
                    l.tally.first_error.as_deref().unwrap_or("")
                );
            }
        }
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            mode.name,
            gw.spans_per_sec(),
            gw.mb_per_sec(),
            gw.percentile_ms(0.5),
            gw.percentile_ms(0.99),
            gw.per_core(),
            null_load.spans_per_sec(),
            raw.spans_per_sec(),
            gw.spans_per_sec() / null_load.spans_per_sec(),
            gw.spans_per_sec() / raw.spans_per_sec(),
        );
        gateway_rss = match (gateway_rss, support::peak_rss_mb(gateway.pid())) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        drop(gateway);
        drop(queue);
        support::delete_topic(&common.kafka_brokers, &topic).await;
    }
    println!();
    if std::env::var("AV_BENCH_GATEWAY_ONLY").is_ok() {
        eprintln!("gateway peak RSS {gateway_rss:?} MB");
    }
    let null_rss = support::peak_rss_mb(null.pid());
    drop(null);
    if std::env::var("AV_BENCH_GATEWAY_ONLY").is_ok() {
        return Ok(());
    }

    println!("## Writer against a straight insert");
    println!();
    let w = writer_phase(&common, org_id, writer_spans).await?;
    println!("| rows (spans + runs) | writer rows/s | straight insert rows/s (same client, same batches) | writer ÷ insert | spans stored (FINAL) |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {:.0} | {:.2} | {} |",
        w.rows,
        w.writer_rows_per_sec,
        w.ceiling_rows_per_sec,
        w.writer_rows_per_sec / w.ceiling_rows_per_sec,
        w.stored_spans
    );
    println!();

    println!("## Ingest-to-queryable latency at 10k spans/s (running stack)");
    println!();
    if wait_http(&format!("{stack_gateway}/healthz")).await.is_ok()
        && wait_http(&format!("{stack_query}/healthz")).await.is_ok()
    {
        let mut f = freshness(&stack_gateway, &stack_query, &key, fresh_secs).await?;
        println!("| seconds | spans sent | batches acknowledged | traces sampled | p50 ms | p99 ms | max ms | not queryable within 30 s |");
        println!("|---|---|---|---|---|---|---|---|");
        let n = f.samples.len();
        let p50 = percentile(&mut f.samples, 0.5) as f64 / 1000.0;
        let p99 = percentile(&mut f.samples, 0.99) as f64 / 1000.0;
        let max = f.samples.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
        println!(
            "| {} | {} | {} | {} | {p50:.0} | {p99:.0} | {max:.0} | {} |",
            f.secs,
            f.sent_spans,
            f.acked,
            n + f.missing as usize,
            f.missing
        );
    } else {
        println!("skipped: the stack is not running (scripts/up)");
    }
    println!();

    println!("## Peak RSS (VmHWM)");
    println!();
    println!("| process | MB |");
    println!("|---|---|");
    let mb = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
    println!(
        "| ingest-gateway (benchmarked instance) | {} |",
        mb(gateway_rss)
    );
    println!("| null HTTP server | {} |", mb(null_rss));
    println!("| writer (benchmarked instance) | {} |", mb(w.rss_mb));
    for name in ["ingest-gateway", "writer", "query-api"] {
        println!(
            "| {name} (running stack, after the freshness run) | {} |",
            mb(support::stack_pid(name).and_then(support::peak_rss_mb))
        );
    }
    println!(
        "| this load generator | {} |",
        mb(support::peak_rss_mb(std::process::id()))
    );
    println!(
        "| Kafka-protocol broker (local: av-broker) | {} |",
        mb(support::stack_pid("broker").and_then(support::peak_rss_mb))
    );
    Ok(())
}
