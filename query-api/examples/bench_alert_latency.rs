//! Alert latency benchmark, against the running stack (`scripts/up`):
//! for each of N fresh agents, one failure-rate alert (threshold 0, one
//! run enough) with a webhook channel to a local receiver, then one failed
//! run ingested through the router; measured: the time from the
//! ingestion's 200 to the `alert.fired` delivery at the receiver. It spans
//! the whole path: gateway, Kafka, writer, ClickHouse, the evaluator's
//! next pass (every `AV_ALERT_INTERVAL_SECS`, 15 s) and the webhook
//! dispatcher. The baseline of the same run is the stack's own
//! ingest-to-readable time (the run visible in `/agents/{id}/runs`).
//!
//!     scripts/up
//!     cargo run --release -p query-api --example bench_alert_latency -- [N]

use axum::http::StatusCode as AxStatus;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(10), |s| s.parse())?;
    let home = std::env::var("AV_HOME")
        .unwrap_or_else(|_| format!("{}/../.stack", env!("CARGO_MANIFEST_DIR")));
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{home}/credentials.json"
    ))?)?;
    let key = creds["api_key"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no api_key in credentials.json"))?
        .to_string();
    let port = std::env::var("AV_PORT").unwrap_or_else(|_| "8080".into());
    let base = format!("http://127.0.0.1:{port}/api/v1");

    // The receiver: when each alert's firing arrived.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                if let Ok(v) = serde_json::from_str::<Value>(&body) {
                    if v["type"] == "alert.fired" {
                        if let Some(id) = v["data"]["alert"]["id"].as_str() {
                            seen.lock()
                                .unwrap()
                                .entry(id.to_string())
                                .or_insert_with(Instant::now);
                        }
                    }
                }
                AxStatus::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let mut rows = Vec::new();
    let run_tag = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..n {
        // A fresh agent: one completed run makes it exist.
        let agent = format!("latency-{}-{i}", &run_tag[..8]);
        let now = time::OffsetDateTime::now_utc();
        let at = |s: i64| agentvista_shared::time_fmt::format(now - time::Duration::seconds(s));
        let batch = |status: &str| {
            json!({"traces": [{"trace": {"trace_id": uuid::Uuid::new_v4(), "agent": agent, "status": status,
                "started_at": at(3), "ended_at": at(2)}, "spans": []}]})
        };
        let r = client
            .post(format!("{base}/traces/batch"))
            .bearer_auth(&key)
            .json(&batch("completed"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "ingest: {}", r.status());
        let agent_id = loop {
            let agents: Value = client
                .get(format!("{base}/agents"))
                .bearer_auth(&key)
                .send()
                .await?
                .json()
                .await?;
            if let Some(a) = agents
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == agent.as_str()))
            {
                break a["id"].as_str().unwrap_or_default().to_string();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let r = client
            .post(format!("{base}/alerts"))
            .bearer_auth(&key)
            .json(&json!({"agent_id": agent_id, "type": "failure_rate", "threshold": 0.0, "min_runs": 1,
                          "window_minutes": 5, "channel": "webhook", "webhook_url": hook}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "alert: {}", r.text().await?);
        let alert: Value = r.json().await?;
        let alert_id = alert["id"].as_str().unwrap_or_default().to_string();
        // The breach: a failed run.
        let r = client
            .post(format!("{base}/traces/batch"))
            .bearer_auth(&key)
            .json(&batch("failed"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "ingest: {}", r.status());
        let acked = Instant::now();
        // Readable: the failed run listed.
        let readable = loop {
            let runs: Value = client
                .get(format!("{base}/agents/{agent_id}/runs"))
                .bearer_auth(&key)
                .send()
                .await?
                .json()
                .await?;
            if runs["runs"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["status"] == "failed"))
            {
                break acked.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let notified = loop {
            if let Some(at) = arrivals.lock().unwrap().get(&alert_id) {
                break at.duration_since(acked);
            }
            anyhow::ensure!(Instant::now() < deadline, "alert {alert_id} never fired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "run {i}: readable after {:.1} s, notified after {:.1} s",
            readable.as_secs_f64(),
            notified.as_secs_f64()
        );
        rows.push((readable, notified));
        let _ = client
            .delete(format!("{base}/alerts/{alert_id}"))
            .bearer_auth(&key)
            .send()
            .await;
    }
    let mut readable: Vec<Duration> = rows.iter().map(|r| r.0).collect();
    let mut notified: Vec<Duration> = rows.iter().map(|r| r.1).collect();
    readable.sort();
    notified.sort();
    let q = |v: &[Duration], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64();
    println!("\n| measure | p50 | max | p50 / readable p50 |");
    println!("|---|---|---|---|");
    println!(
        "| ingestion 200 -> run readable | {:.1} s | {:.1} s | 1.0 |",
        q(&readable, 0.5),
        q(&readable, 1.0)
    );
    println!(
        "| ingestion 200 -> alert.fired at the receiver | {:.1} s | {:.1} s | {:.1} |",
        q(&notified, 0.5),
        q(&notified, 1.0),
        q(&notified, 0.5) / q(&readable, 0.5).max(1e-9)
    );
    Ok(())
}
