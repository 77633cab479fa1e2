//! Faults on the ingest path, under sustained ingestion, with every
//! acknowledged span id recorded.

use crate::helpers::{
    bin, create_topic, free_port, long_faults, shared, spawn_app, spawn_app_with, start_writer,
    ChildGuard,
};
use reqwest::StatusCode;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

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

    // Sustained ingestion in 8 s cycles (one, or five with
    // AV_FAULTS_LONG=1): in each, the writer is killed with SIGKILL at 2.5 s
    // and a new one starts at 4 s.
    let cycles: u32 = if long_faults() { 5 } else { 1 };
    let cycle = Duration::from_secs(8);
    let started = Instant::now();
    let mut acked: Vec<Uuid> = Vec::new();
    let mut kills = 0u32;
    let mut running = true;
    while started.elapsed() < cycle * cycles {
        let (ids, body) = batch("fault-agent", 20);
        let (status, _) = app.post_batch(&acct.key, &body).await;
        if status == StatusCode::OK {
            acked.extend(ids);
        }
        let at = started.elapsed();
        if running && at > cycle * kills + Duration::from_millis(2500) {
            writer.kill().expect("SIGKILL");
            writer.wait().unwrap();
            kills += 1;
            running = false;
        }
        if !running && at > cycle * (kills - 1) + Duration::from_secs(4) {
            writer = start_writer(&topic, &group);
            running = true;
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
    // In chunks: the long variant acknowledges too many ids for one query.
    let ids: Vec<String> = acked.iter().map(Uuid::to_string).collect();
    let mut present = 0u64;
    for chunk in ids.chunks(2_000) {
        present += ch
            .query("SELECT count() FROM spans FINAL WHERE org_id = toUUID(?) AND has(?, toString(span_id))")
            .bind(acct.org_id.to_string())
            .bind(chunk)
            .fetch_one::<u64>()
            .await
            .unwrap();
    }
    assert_eq!(
        present,
        acked.len() as u64,
        "acknowledged spans missing after the writer was killed"
    );
}

fn start_gateway(topic: &str, port: u16) -> ChildGuard {
    ChildGuard(
        Command::new(bin("ingest-gateway"))
            .env("AV_KAFKA_TOPIC", topic)
            .env("AV_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the gateway"),
    )
}

#[tokio::test]
async fn retries_through_a_killed_gateway_create_no_duplicates() {
    // The query API and writer of this test binary; a gateway process of
    // our own that we can kill.
    let app = spawn_app().await;
    let acct = app.account().await;
    let topic = shared().topic.clone();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/traces/batch");
    let mut gateway = start_gateway(&topic, port);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // 60 batches; the gateway is killed after the 20th and restarted. Every
    // batch is retried, unchanged, until it is acknowledged — as an SDK does.
    let mut sent: Vec<Uuid> = Vec::new();
    let mut killed = false;
    for i in 0..60 {
        let (ids, body) = batch("retry-agent", 10);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if i == 20 && !killed {
                gateway.kill().expect("SIGKILL");
                gateway.wait().unwrap();
                killed = true;
                gateway = start_gateway(&topic, port);
            }
            let ok = match client
                .post(&url)
                .bearer_auth(&acct.key)
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r.status() == StatusCode::OK,
                Err(_) => false,
            };
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "batch {i} never acknowledged");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        sent.extend(ids);
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    let ch = &app.query.0.ch;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (total, distinct): (u64, u64) = ch
            .query("SELECT count(), uniqExact(span_id) FROM spans FINAL WHERE org_id = toUUID(?)")
            .bind(acct.org_id.to_string())
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(total, distinct, "a span is read twice");
        if total == sent.len() as u64 {
            break;
        }
        assert!(total < sent.len() as u64, "more spans than were sent");
        assert!(
            Instant::now() < deadline,
            "{total} of {} spans readable",
            sent.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Runs are inserted after their spans: wait for them too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let runs: u64 = ch
            .query("SELECT count() FROM traces FINAL WHERE org_id = toUUID(?)")
            .bind(acct.org_id.to_string())
            .fetch_one()
            .await
            .unwrap();
        if runs >= 60 || Instant::now() > deadline {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs, 60);
}

/// The writer's `/metrics` reports its consumer lag (messages on its
/// partitions not consumed yet): messages published before it starts are
/// a backlog it then works off, and the gauge reads 0 once it has.
#[tokio::test]
async fn the_writer_reports_its_consumer_lag() {
    use agentvista_shared::queue::{IngestMessage, FORMAT_VERSION};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let _app = spawn_app().await; // migrations
    let topic = format!("av-lag-{}", Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set(
            "bootstrap.servers",
            &agentvista_shared::config::CommonConfig::from_env()
                .unwrap()
                .kafka_brokers,
        )
        .create()
        .unwrap();
    let message = IngestMessage {
        format: FORMAT_VERSION,
        org_id: Uuid::new_v4(),
        version: 1,
        retention_days: 30,
        traces: Vec::new(),
        spans: Vec::new(),
        logs: Vec::new(),
        metrics: Vec::new(),
    }
    .encode();
    for i in 0..40 {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&message),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _writer = crate::helpers::start_writer_with(
        &topic,
        &format!("{topic}-writers"),
        &[("AV_WRITER_LISTEN", listen.as_str())],
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut consumed, mut lag) = (None, None);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://{listen}/metrics")).send().await {
            let text = r.text().await.unwrap_or_default();
            let value = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name} ")))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            consumed = value("av_writer_messages_total");
            lag = value("av_writer_consumer_lag_messages");
            assert!(
                text.contains("# TYPE av_writer_consumer_lag_messages gauge"),
                "{text}"
            );
            if consumed == Some(40) && lag == Some(0) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("consumed {consumed:?} messages, lag {lag:?}");
}
