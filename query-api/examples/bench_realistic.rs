//! End-to-end benchmark with realistic GenAI spans, measured as a user
//! would: OTLP protobuf exports of 100 spans each (an `invoke_agent` root
//! and 99 `chat` children with the GenAI semantic-convention attributes,
//! ten other string attributes and 500 bytes each of input and output
//! message text, about 1.8 KB a span on the wire) posted by 16 connections
//! through the router of the running stack (`scripts/up`).
//!
//!     scripts/bench realistic          # = scripts/up, then this example
//!
//! Prints: spans/s the gateway acknowledged, spans/s ClickHouse stored
//! while the load ran, the drain time after it (until every acknowledged
//! span is stored), freshness (from a sampled export's 200 to the query
//! API returning its whole trace) p50/p99, and the bytes each span takes in
//! ClickHouse per column (uncompressed and compressed, the deltas of the
//! `spans` table's active parts).
//!
//! Knobs (environment): `AV_BENCH_SECS` (load seconds, default 60),
//! `AV_BENCH_CONCURRENCY` (connections, default 16), `AV_BENCH_RATE`
//! (exports per second in all, default unbounded: a steady rate for the
//! freshness goal), `AV_BENCH_ROUTER_URL` (default http://127.0.0.1:8080),
//! `AV_BENCH_POLL` (`api`: each freshness poll reads the trace through the
//! API, as sessions 7-10 did; by default a poll counts the trace's spans in
//! ClickHouse, a read of two key columns, and only a full count is
//! confirmed, and timed, through the API: the pollers then load the store
//! they measure far less).

use agentvista_shared::config::CommonConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

const SPANS_PER_EXPORT: usize = 100;

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn text(key: &str, value: String) -> KeyValue {
    kv(key, any_value::Value::StringValue(value))
}

/// The next value of a xorshift64 generator (deterministic text, cheap
/// enough for the load generator).
fn xorshift(x: &mut u64) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
}

/// A vocabulary of 512 pseudo-words of 2 to 9 letters: text drawn from it
/// has about the entropy of natural language (9 bits a word), so that
/// ClickHouse's compression works as hard as on real messages.
fn vocabulary() -> &'static [String] {
    static WORDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        (0..512)
            .map(|_| {
                xorshift(&mut x);
                let len = 2 + (x % 8) as usize;
                (0..len)
                    .map(|i| (b'a' + ((x >> (i * 5)) % 26) as u8) as char)
                    .collect()
            })
            .collect()
    })
}

/// About `n` bytes of chat messages in the GenAI semantic conventions'
/// JSON shape, different for every span.
fn messages(role: &str, seed: u64, n: usize) -> String {
    let words = vocabulary();
    let mut text = String::new();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while text.len() < n.saturating_sub(60) {
        xorshift(&mut x);
        text.push_str(&words[(x % 512) as usize]);
        text.push(' ');
    }
    format!(
        r#"[{{"role":"{role}","parts":[{{"type":"text","content":"{}"}}]}}]"#,
        text.trim_end()
    )
}

/// One export: a root and 99 chat children of one new trace.
fn export(n: u64, now_ns: u64) -> (ExportTraceServiceRequest, [u8; 16]) {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&n.to_be_bytes());
    trace_id[8..].copy_from_slice(&(rand::random::<u64>() | 1).to_be_bytes());
    let span_id = |i: usize| ((n << 8) | i as u64 | 1 << 63).to_be_bytes().to_vec();
    let spans = (0..SPANS_PER_EXPORT)
        .map(|i| {
            let root = i == 0;
            let start = now_ns - 2_000_000_000 + i as u64 * 10_000_000;
            let mut attributes = vec![
                text(
                    "gen_ai.operation.name",
                    if root { "invoke_agent" } else { "chat" }.into(),
                ),
                text("gen_ai.provider.name", "openai".into()),
                text("gen_ai.request.model", "gpt-4o-mini".into()),
                text("gen_ai.response.model", "gpt-4o-mini-2024-07-18".into()),
                kv(
                    "gen_ai.usage.input_tokens",
                    any_value::Value::IntValue(120 + (i as i64 % 50)),
                ),
                kv(
                    "gen_ai.usage.output_tokens",
                    any_value::Value::IntValue(40 + (i as i64 % 30)),
                ),
                text(
                    "gen_ai.input.messages",
                    messages("user", n * 1000 + i as u64, 500),
                ),
                text(
                    "gen_ai.output.messages",
                    messages("assistant", n * 1000 + i as u64 + 7, 500),
                ),
            ];
            for a in 0..10 {
                attributes.push(text(
                    &format!("app.attribute_{a}"),
                    format!("value-{a}-{}", (n + i as u64) % 97),
                ));
            }
            Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id(i),
                parent_span_id: if root { Vec::new() } else { span_id(0) },
                name: if root {
                    "invoke_agent lead-qualifier".into()
                } else {
                    "chat gpt-4o-mini".into()
                },
                kind: if root {
                    span::SpanKind::Internal
                } else {
                    span::SpanKind::Client
                } as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 5_000_000,
                attributes,
                ..Default::default()
            }
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", format!("realistic-agent-{}", n % 4)),
                    text("deployment.environment", "bench".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, trace_id)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Per column of `spans`: (uncompressed, compressed) bytes of active parts.
async fn column_bytes(ch: &clickhouse::Client) -> anyhow::Result<Vec<(String, u64, u64)>> {
    Ok(ch
        .query(
            "SELECT column, sum(column_data_uncompressed_bytes), sum(column_data_compressed_bytes) \
             FROM system.parts_columns WHERE database = currentDatabase() AND table = 'spans' AND active \
             GROUP BY column ORDER BY column",
        )
        .fetch_all()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = env_or("AV_BENCH_SECS", 60);
    let connections: usize = env_or("AV_BENCH_CONCURRENCY", 16);
    let rate: f64 = env_or("AV_BENCH_RATE", 0.0);
    let router: String = env_or("AV_BENCH_ROUTER_URL", "http://127.0.0.1:8080".to_string());
    let poll_api = std::env::var("AV_BENCH_POLL").is_ok_and(|v| v == "api");
    let common = CommonConfig::from_env()?;
    let ch = writer::clickhouse_client(&common).with_database(&common.clickhouse_database);
    let (org, key) = support::bench_account(&common).await?;
    let sample = export(0, 1).0.encode_to_vec().len();
    println!(
        "realistic spans: {SPANS_PER_EXPORT} per export, {} bytes a span on the wire; {connections} connections for {secs} s{}",
        sample / SPANS_PER_EXPORT,
        if rate > 0.0 { format!(", {rate} exports/s") } else { String::new() }
    );
    let before = column_bytes(&ch).await?;
    // The broker's memory and disk over the run (flat is the goal).
    let broker_pid = support::stack_pid("broker");
    let broker_rss = || {
        broker_pid
            .and_then(|p| support::rss_mb(p, "VmRSS:"))
            .unwrap_or(0.0)
    };
    let broker_dir = std::path::PathBuf::from(
        std::env::var("AV_HOME")
            .unwrap_or_else(|_| format!("{}/../.stack", env!("CARGO_MANIFEST_DIR"))),
    )
    .join("broker");
    let broker_disk = || support::dir_bytes(&broker_dir) as f64 / 1e6;
    let (broker_rss_start, broker_disk_start) = (broker_rss(), broker_disk());
    let mut broker_rss_max = broker_rss_start;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let freshness = Arc::new(Mutex::new(Vec::<f64>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, key, router, ch) = (client.clone(), key.clone(), router.clone(), ch.clone());
        let (acked, errors, next, stop, freshness) = (
            acked.clone(),
            errors.clone(),
            next.clone(),
            stop.clone(),
            freshness.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut last_sample = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if rate > 0.0 {
                    // Exports are due at n / rate seconds after the start.
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let now_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
                let (request, trace_id) = export(n, now_ns);
                let r = client
                    .post(format!("{router}/api/v1/otlp/v1/traces"))
                    .bearer_auth(&key)
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        acked.fetch_add(SPANS_PER_EXPORT as u64, Ordering::Relaxed);
                        // One sampled trace a second per connection 0.
                        if c == 0 && last_sample.elapsed() >= Duration::from_secs(1) {
                            last_sample = Instant::now();
                            let (client, key, freshness) =
                                (client.clone(), key.clone(), freshness.clone());
                            let id = uuid::Uuid::from_bytes(trace_id);
                            let query = std::env::var("AV_BENCH_QUERY_URL")
                                .unwrap_or_else(|_| "http://127.0.0.1:8082".into());
                            let ch = ch.clone();
                            tokio::spawn(async move {
                                let acked_at = Instant::now();
                                let deadline = acked_at + Duration::from_secs(600);
                                while Instant::now() < deadline {
                                    // Whether the store holds the trace yet:
                                    // a count of its span keys (cheap), and
                                    // only then the trace through the API,
                                    // whose answer is the one timed. With
                                    // `AV_BENCH_POLL=api`, the API at every
                                    // poll (sessions 7-10).
                                    let in_store = poll_api
                                        || ch
                                            .query(
                                                "SELECT count() FROM spans WHERE org_id = toUUID(?) \
                                                 AND trace_id = toUUID(?)",
                                            )
                                            .bind(org.to_string())
                                            .bind(id.to_string())
                                            .fetch_one::<u64>()
                                            .await
                                            .is_ok_and(|n| n >= SPANS_PER_EXPORT as u64);
                                    if in_store {
                                        let r = client
                                            .get(format!("{query}/api/v1/dashboard/traces/{id}"))
                                            .bearer_auth(&key)
                                            .send()
                                            .await;
                                        if let Ok(r) = r {
                                            if let Ok(v) = r.json::<serde_json::Value>().await {
                                                if v["span_count"] == SPANS_PER_EXPORT {
                                                    freshness.lock().unwrap().push(
                                                        acked_at.elapsed().as_secs_f64() * 1000.0,
                                                    );
                                                    return;
                                                }
                                            }
                                        }
                                    }
                                    // 50 ms apart for the first 3 s (the
                                    // freshness goal is 2 s: a reading is at
                                    // most 50 ms late there), then a fifth of
                                    // the wait so far (within 20% past it):
                                    // the pollers of a backlog must not load
                                    // the store they measure (with a
                                    // twentieth they took a third of
                                    // ClickHouse's CPU in session 9).
                                    let waited = acked_at.elapsed();
                                    let wait = if waited < Duration::from_secs(3) {
                                        Duration::from_millis(50)
                                    } else {
                                        waited / 5
                                    };
                                    tokio::time::sleep(wait).await;
                                }
                            });
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    let stored = |ch: clickhouse::Client| async move {
        ch.query("SELECT count() FROM spans WHERE org_id = toUUID(?)")
            .bind(org.to_string())
            .fetch_one::<u64>()
            .await
    };
    // During the load: stored spans each 5 s.
    let mut stored_during = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(
            Duration::from_secs(5).min(Duration::from_secs(secs).saturating_sub(started.elapsed())),
        )
        .await;
        stored_during = stored(ch.clone()).await?;
        broker_rss_max = broker_rss_max.max(broker_rss());
        println!(
            "  {:>5.0} s: acknowledged {:>10}, stored {:>10}, broker RSS {:>4.0} MB, broker disk {:>6.0} MB",
            started.elapsed().as_secs_f64(),
            acked.load(Ordering::Relaxed),
            stored_during,
            broker_rss(),
            broker_disk()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let load_s = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await?;
    }
    let total_acked = acked.load(Ordering::Relaxed);
    // Drain: until every acknowledged span is stored.
    let drain_started = Instant::now();
    let mut stored_now = stored(ch.clone()).await?;
    while stored_now < total_acked && drain_started.elapsed() < Duration::from_secs(900) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stored_now = stored(ch.clone()).await?;
    }
    let drain_s = drain_started.elapsed().as_secs_f64();
    // Let the sampled traces' pollers finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut fresh = freshness.lock().unwrap().clone();
    fresh.sort_by(f64::total_cmp);
    let after = column_bytes(&ch).await?;

    println!("\n| figure | value |\n| --- | ---: |");
    println!(
        "| acknowledged spans/s (load) | {:.0} |",
        total_acked as f64 / load_s
    );
    println!(
        "| stored spans/s while the load ran | {:.0} |",
        stored_during as f64 / load_s
    );
    println!("| drain after the load (s) | {drain_s:.1} |");
    println!(
        "| end to end (acknowledged spans / (load + drain) s) | {:.0} |",
        total_acked as f64 / (load_s + drain_s)
    );
    println!(
        "| freshness p50 / p99 (ms, {} samples) | {:.0} / {:.0} |",
        fresh.len(),
        pct(&fresh, 0.5),
        pct(&fresh, 0.99)
    );
    println!("| failed exports | {} |", errors.load(Ordering::Relaxed));
    println!("| stored / acknowledged | {stored_now} / {total_acked} |");
    println!(
        "| broker RSS start / max during load / end (MB) | {broker_rss_start:.0} / {broker_rss_max:.0} / {:.0} |",
        broker_rss()
    );
    println!(
        "| broker data on disk start / end (MB) | {broker_disk_start:.0} / {:.0} |",
        broker_disk()
    );
    println!("\nbytes per stored span, by column of `spans` (deltas of the active parts; merges may still run):");
    println!("| column | uncompressed | compressed |\n| --- | ---: | ---: |");
    let (mut tu, mut tc) = (0i64, 0i64);
    for (col, u, c) in &after {
        let (bu, bc) = before
            .iter()
            .find(|(b, _, _)| b == col)
            .map_or((0, 0), |(_, u, c)| (*u, *c));
        let (du, dc) = (*u as i64 - bu as i64, *c as i64 - bc as i64);
        tu += du;
        tc += dc;
        if du.abs() as f64 / stored_now.max(1) as f64 >= 10.0 {
            println!(
                "| {col} | {:.0} | {:.0} |",
                du as f64 / stored_now.max(1) as f64,
                dc as f64 / stored_now.max(1) as f64
            );
        }
    }
    println!(
        "| all columns | {:.0} | {:.0} |",
        tu as f64 / stored_now.max(1) as f64,
        tc as f64 / stored_now.max(1) as f64
    );
    Ok(())
}
