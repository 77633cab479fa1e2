//! Faults on the ingest path, under sustained ingestion, with every
//! acknowledged span id recorded.

use crate::helpers::{create_topic, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The writer binary next to this test executable (scripts/test builds
/// it), or `AV_WRITER_BIN`.
fn writer_bin() -> PathBuf {
    if let Ok(p) = std::env::var("AV_WRITER_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("writer");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --bins` (scripts/test does)",
        p.display()
    );
    p
}

fn start_writer(topic: &str, group: &str) -> Child {
    Command::new(writer_bin())
        .env("AV_KAFKA_TOPIC", topic)
        .env("AV_WRITER_GROUP", group)
        .env("AV_WRITER_LISTEN", "127.0.0.1:0")
        .env("AV_WRITER_FLUSH_MS", "300")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the writer")
}

/// A batch of `n` fresh spans in one trace; returns the span ids.
fn batch(agent: &str, n: usize) -> (Vec<Uuid>, serde_json::Value) {
    let trace = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let spans: Vec<_> = ids
        .iter()
        .map(|id| json!({"span_id": id, "name": "step", "started_at": "2024-01-15T10:00:00Z", "duration_ms": 5}))
        .collect();
    (
        ids,
        json!({"traces": [{"trace": {"trace_id": trace, "agent": agent, "started_at": "2024-01-15T10:00:00Z"}, "spans": spans}]}),
    )
}

#[tokio::test]
async fn a_writer_killed_mid_batch_loses_and_duplicates_nothing() {
    let topic = format!("av-fault-{}", Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let t = topic.clone();
    let app = spawn_app_with(move |c| c.common.kafka_topic = t).await;
    let acct = app.account().await;
    let group = format!("{topic}-writers");
    let mut writer = start_writer(&topic, &group);

    // Sustained ingestion for 8 s; the writer is killed at 2.5 s and a new
    // one starts at 4 s.
    let started = Instant::now();
    let mut acked: Vec<Uuid> = Vec::new();
    let mut killed = false;
    let mut restarted = false;
    while started.elapsed() < Duration::from_secs(8) {
        let (ids, body) = batch("fault-agent", 20);
        let (status, _) = app.post_batch(&acct.key, &body).await;
        if status == StatusCode::OK {
            acked.extend(ids);
        }
        if !killed && started.elapsed() > Duration::from_millis(2500) {
            writer.kill().expect("SIGKILL");
            writer.wait().unwrap();
            killed = true;
        }
        if killed && !restarted && started.elapsed() > Duration::from_secs(4) {
            writer = start_writer(&topic, &group);
            restarted = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        acked.len() > 1000,
        "only {} spans acknowledged",
        acked.len()
    );

    // Every acknowledged span is readable exactly once.
    let ch = &app.query.0.ch;
    let deadline = Instant::now() + Duration::from_secs(90);
    let (total, distinct) = loop {
        let (total, distinct): (u64, u64) = ch
            .query("SELECT count(), uniqExact(span_id) FROM spans FINAL WHERE org_id = toUUID(?)")
            .bind(acct.org_id.to_string())
            .fetch_one()
            .await
            .unwrap();
        if distinct >= acked.len() as u64 || Instant::now() > deadline {
            break (total, distinct);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = writer.kill();
    let _ = writer.wait();
    assert_eq!(total, distinct, "a span is read twice");
    let ids: Vec<String> = acked.iter().map(Uuid::to_string).collect();
    let present: u64 = ch
        .query("SELECT count() FROM spans FINAL WHERE org_id = toUUID(?) AND has(?, toString(span_id))")
        .bind(acct.org_id.to_string())
        .bind(&ids)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        present,
        acked.len() as u64,
        "acknowledged spans missing after the writer was killed"
    );
}
