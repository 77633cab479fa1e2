//! Webhook benchmark: runs ingested at a steady rate through the gateway
//! become `agent_run.completed` deliveries to a local receiver. Prints the
//! events per second that reach the receiver and the latency from each
//! run's ingestion 200 to its arrival (p50, p99, max), each also as a
//! ratio of a plain POST round trip to the same receiver measured in the
//! same run (the HTTP floor).
//!
//!     scripts/infra
//!     cargo run --release -p query-api --example bench_webhooks -- [RUNS_PER_SEC] [SECONDS]
//!
//! Defaults: 1,000 runs/s for 20 s, in batches of 10 every 10 ms. The
//! gateway, the query API (event consumer and dispatcher) and the receiver
//! run in this process; Kafka and PostgreSQL are the stack's.

use axum::http::StatusCode as AxStatus;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

mod support;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver() -> anyhow::Result<(String, Arrivals)> {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |body: String| {
                let seen = seen.clone();
                async move {
                    let at = Instant::now();
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        if let Some(t) = v["data"]["trace_id"].as_str() {
                            seen.lock().unwrap().entry(t.to_string()).or_insert(at);
                        }
                    }
                    AxStatus::OK
                }
            }),
        )
        .route("/floor", axum::routing::post(|| async { AxStatus::OK }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((base, arrivals))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rate: u64 = args.first().map_or(Ok(1000), |s| s.parse())?;
    let secs: u64 = args.get(1).map_or(Ok(20), |s| s.parse())?;
    let per_batch = 10u64;
    let batches_per_sec = (rate / per_batch).max(1);

    let mut common = agentvista_shared::config::CommonConfig::from_env()?;
    let topic = format!("av-bench-webhooks-{}", Uuid::new_v4().simple());
    support::create_topic(&common.kafka_brokers, &topic).await?;
    common.kafka_topic = topic.clone();

    let mut gw = ingest_gateway::config::Config::from_env()?;
    gw.common = common.clone();
    gw.listen = "127.0.0.1:0".parse()?;
    let gateway = ingest_gateway::build(gw).await?;
    let ingest = format!("http://{}", gateway.local_addr());
    tokio::spawn(gateway.run(std::future::pending()));

    let mut q = query_api::Config::from_env()?;
    q.common = common.clone();
    q.listen = "127.0.0.1:0".parse()?;
    q.rollup.interval = Duration::ZERO;
    q.webhooks.allow_http = true;
    q.webhooks.allow_private = true;
    q.webhooks.events = true;
    q.webhooks.events_group = format!("bench-{}", Uuid::new_v4().simple());
    q.webhooks.events_from = "earliest".into();
    q.webhooks.poll = Duration::from_millis(50);
    let server = query_api::build(q).await?;
    let api = format!("http://{}/api/v1", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));

    let (org_id, key) = support::bench_account(&common).await?;
    let (pg, _) = query_api::connect_pg(&common).await?;
    let slug: String = sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(&pg)
        .await?;
    let (base, arrivals) = receiver().await?;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{api}/org/{slug}/webhooks/endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": format!("{base}/hook"), "event_types": ["agent_run.completed"]}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 201,
        "creating the endpoint: {}",
        r.text().await?
    );

    // The floor: a POST round trip to the same receiver.
    let mut floor: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        client
            .post(format!("{base}/floor"))
            .body("{}")
            .send()
            .await?;
        floor.push(t.elapsed());
    }
    floor.sort();
    let floor_p50 = quantile(&floor, 0.5);

    // Warm up: one run end to end, so that the event consumer has joined
    // its group and the dispatcher its endpoint before the clock starts.
    let warm = Uuid::new_v4().to_string();
    let now = time::OffsetDateTime::now_utc();
    let at = agentvista_shared::time_fmt::format(now - time::Duration::seconds(1));
    let r = client
        .post(format!("{ingest}/api/v1/traces/batch"))
        .bearer_auth(&key)
        .json(
            &json!({"traces": [{"trace": {"trace_id": warm, "agent": "bench", "status": "completed",
                                            "started_at": at, "ended_at": at}, "spans": []}]}),
        )
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "warm-up batch: {}", r.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !arrivals.lock().unwrap().contains_key(&warm) {
        anyhow::ensure!(Instant::now() < deadline, "the warm-up event never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    arrivals.lock().unwrap().clear();
    println!("ingesting {rate} runs/s for {secs} s ({per_batch} runs a batch)");
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / batches_per_sec));
    let mut sends = Vec::new();
    for _ in 0..batches_per_sec * secs {
        tick.tick().await;
        let now = time::OffsetDateTime::now_utc();
        let at =
            |s: i64| agentvista_shared::time_fmt::format(now - time::Duration::milliseconds(s));
        let ids: Vec<String> = (0..per_batch).map(|_| Uuid::new_v4().to_string()).collect();
        let traces: Vec<Value> = ids
            .iter()
            .map(|t| {
                json!({"trace": {"trace_id": t, "agent": "bench", "status": "completed",
                                      "started_at": at(900), "ended_at": at(100)}, "spans": []})
            })
            .collect();
        let (client, ingest, key, acked) =
            (client.clone(), ingest.clone(), key.clone(), acked.clone());
        sends.push(tokio::spawn(async move {
            let r = client
                .post(format!("{ingest}/api/v1/traces/batch"))
                .bearer_auth(&key)
                .json(&json!({"traces": traces}))
                .send()
                .await;
            if matches!(&r, Ok(r) if r.status() == 200) {
                let at = Instant::now();
                let mut a = acked.lock().unwrap();
                for t in ids {
                    a.insert(t, at);
                }
            }
        }));
    }
    for s in sends {
        let _ = s.await;
    }
    let load_secs = started.elapsed().as_secs_f64();
    let total = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acked = acked.lock().unwrap().clone();
    let arrived = arrivals.lock().unwrap().clone();
    let mut latency: Vec<Duration> = acked
        .iter()
        .filter_map(|(t, a)| arrived.get(t).map(|r| r.saturating_duration_since(*a)))
        .collect();
    latency.sort();
    let last = arrived.values().max().copied().unwrap_or(started);
    let span = last.duration_since(started).as_secs_f64();
    let ratio = |d: Duration| d.as_secs_f64() / floor_p50.as_secs_f64().max(1e-9);
    println!();
    println!("| measure | value | ratio to the POST floor |");
    println!("|---|---|---|");
    println!("| runs acknowledged | {total} in {load_secs:.1} s | |");
    println!(
        "| events delivered | {} ({} missing) | |",
        latency.len(),
        total - latency.len()
    );
    println!(
        "| events/s at the receiver | {:.0} | |",
        latency.len() as f64 / span
    );
    println!(
        "| POST round trip (floor) p50 | {:.2} ms | 1.0 |",
        floor_p50.as_secs_f64() * 1e3
    );
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        let d = quantile(&latency, q);
        println!(
            "| ingestion 200 -> receiver {name} | {:.0} ms | {:.0} |",
            d.as_secs_f64() * 1e3,
            ratio(d)
        );
    }
    let max = latency.last().copied().unwrap_or_default();
    println!(
        "| ingestion 200 -> receiver max | {:.0} ms | {:.0} |",
        max.as_secs_f64() * 1e3,
        ratio(max)
    );
    support::delete_topic(&common.kafka_brokers, &topic).await;
    // Exit without tearing the runtime down under the Kafka clients.
    std::process::exit(0)
}
