//! Messages a writer can choke on, produced straight to the topic as an
//! older or buggy gateway would have written them, while another
//! organization ingests through the gateway: the other organization's data
//! keeps flowing, what ClickHouse can store is stored, what it can never
//! store lands in the dead-letter store exactly once, and the operator
//! commands list and replay it.

use crate::helpers::{bin, create_topic, free_port, spawn_app_with, start_writer_with, TestApp};
use agentvista_shared::queue::{IngestMessage, FORMAT_VERSION};
use agentvista_shared::window::IngestWindow;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The first of a month, `n` months after 1990-01, as RFC 3339.
fn month(n: u32) -> String {
    format!("{:04}-{:02}-01T00:00:00Z", 1990 + n / 12, n % 12 + 1)
}

fn message(org_id: Uuid) -> IngestMessage {
    IngestMessage {
        format: FORMAT_VERSION,
        org_id,
        version: agentvista_shared::window::now_us() as u64 * 1_000,
        retention_days: 30,
        traces: Vec::new(),
        spans: Vec::new(),
        logs: Vec::new(),
        metrics: Vec::new(),
    }
}

/// Parse a batch body without the gateway's window, as an older gateway did.
fn parse_unbounded(org_id: Uuid, body: &Value) -> ingest_gateway::sdk::Batch {
    let mut b = ingest_gateway::sdk::parse(
        &serde_json::to_vec(body).unwrap(),
        &HashMap::new(),
        &IngestWindow::unbounded(),
    )
    .expect("a valid body");
    ingest_gateway::sdk::assign_agent_ids(&mut b, org_id);
    b
}

/// One run of `n` spans, span `i` started in month `first + i`.
fn spans_over_months(org_id: Uuid, first: u32, n: u32) -> ingest_gateway::sdk::Batch {
    let trace = Uuid::new_v4();
    let spans: Vec<Value> = (0..n)
        .map(|i| json!({"span_id": Uuid::new_v4(), "name": "step", "started_at": month(first + i)}))
        .collect();
    parse_unbounded(
        org_id,
        &json!({"traces": [{"trace": {"trace_id": trace, "agent": "poison", "started_at": month(first)}, "spans": spans}]}),
    )
}

/// 100 runs without spans, run `i` started in month `first + i`.
fn runs_over_months(org_id: Uuid, first: u32) -> ingest_gateway::sdk::Batch {
    let traces: Vec<Value> = (0..100)
        .map(|i| json!({"trace": {"trace_id": Uuid::new_v4(), "agent": "poison", "started_at": month(first + i)}}))
        .collect();
    parse_unbounded(org_id, &json!({ "traces": traces }))
}

/// 101 log records, one a month from 1990-01.
fn logs_over_months() -> Vec<agentvista_shared::model::LogRecord> {
    let records = (0..101u64)
        .map(|i| LogRecord {
            time_unix_nano: agentvista_shared::time_fmt::parse(&month(i as u32))
                .unwrap()
                .unix_timestamp_nanos() as u64,
            severity_number: 9,
            body: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(format!(
                        "poison log {i}"
                    )),
                ),
            }),
            ..Default::default()
        })
        .collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let t = ingest_gateway::otlp::logs::translate(&req, 1, &IngestWindow::unbounded());
    assert_eq!(t.logs.len(), 101);
    t.logs
}

async fn produce(producer: &FutureProducer, topic: &str, key: Uuid, payload: &[u8]) -> (i32, i64) {
    let d = producer
        .send(
            FutureRecord::to(topic)
                .key(key.as_bytes().as_slice())
                .payload(payload),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");
    (d.partition, d.offset)
}

async fn count(app: &TestApp, sql: &str, org_id: Uuid) -> u64 {
    app.query
        .0
        .ch
        .query(sql)
        .bind(org_id.to_string())
        .fetch_one()
        .await
        .unwrap()
}

/// Wait until `sql` (bound to `org_id`) counts `want`, for 60 s at most.
async fn wait_count(app: &TestApp, sql: &str, org_id: Uuid, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = count(app, sql, org_id).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A batch of `n` spans dated now, for the organization that keeps ingesting.
fn fresh_batch(n: usize) -> (Vec<Uuid>, Value) {
    let now = agentvista_shared::time_fmt::format(time::OffsetDateTime::now_utc());
    let trace = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let spans: Vec<Value> = ids
        .iter()
        .map(|id| json!({"span_id": id, "name": "step", "started_at": now, "duration_ms": 5}))
        .collect();
    (
        ids,
        json!({"traces": [{"trace": {"trace_id": trace, "agent": "bystander", "started_at": now}, "spans": spans}]}),
    )
}

#[tokio::test]
async fn poison_messages_never_stall_another_organizations_ingestion() {
    let topic = format!("av-poison-{}", Uuid::new_v4().simple());
    create_topic(&topic, 1).await;
    let t = topic.clone();
    let app = spawn_app_with(move |c| c.common.kafka_topic = t).await;
    let bystander = app.account().await;
    let health = format!("127.0.0.1:{}", free_port());
    let mut writer = start_writer_with(
        &topic,
        &format!("{topic}-writers"),
        &[("AV_WRITER_LISTEN", health.as_str())],
    );
    let producer: FutureProducer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            agentvista_shared::config::CommonConfig::from_env()
                .unwrap()
                .kafka_brokers,
        )
        .create()
        .unwrap();

    // The poison, for an organization of its own, in the middle of the
    // bystander's sustained ingestion.
    let poisoner = Uuid::new_v4();
    let mut acked: Vec<Uuid> = Vec::new();
    let started = Instant::now();
    let mut poisoned = false;
    let mut dead_positions: Vec<(i32, i64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        let (ids, body) = fresh_batch(10);
        let (status, answer) = app.post_batch(&bystander.key, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        acked.extend(ids);
        if !poisoned && started.elapsed() > Duration::from_secs(1) {
            poisoned = true;
            // 101 spans in 101 months, in one message.
            let mut m = message(poisoner);
            let mut a = spans_over_months(poisoner, 0, 100);
            let b = spans_over_months(poisoner, 100, 1);
            a.spans.extend(b.spans);
            m.spans = a.spans;
            m.traces = a.traces;
            produce(&producer, &topic, poisoner, &m.encode()).await;
            // Two messages of 100 span-less runs, 200 months in all.
            for first in [0, 100] {
                let mut m = message(poisoner);
                m.traces = runs_over_months(poisoner, first).traces;
                produce(&producer, &topic, poisoner, &m.encode()).await;
            }
            // 101 log records in 101 months.
            let mut m = message(poisoner);
            m.logs = logs_over_months();
            produce(&producer, &topic, poisoner, &m.encode()).await;
            // A run ClickHouse can never store (after 2149: a constraint
            // violation), and bytes that are no message at all.
            let mut m = message(poisoner);
            let late = parse_unbounded(
                poisoner,
                &json!({"traces": [{"trace": {"trace_id": Uuid::new_v4(), "agent": "poison", "started_at": "2200-01-01T00:00:00Z"}}]}),
            );
            m.traces = late.traces;
            dead_positions.push(produce(&producer, &topic, poisoner, &m.encode()).await);
            dead_positions.push(produce(&producer, &topic, poisoner, b"\xffnot a message").await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every span the bystander was acknowledged is readable, once.
    wait_count(
        &app,
        "SELECT uniqExact(span_id) FROM spans FINAL WHERE org_id = toUUID(?)",
        bystander.org_id,
        acked.len() as u64,
    )
    .await;
    assert_eq!(
        count(
            &app,
            "SELECT count() FROM spans FINAL WHERE org_id = toUUID(?)",
            bystander.org_id
        )
        .await,
        acked.len() as u64
    );
    // What ClickHouse can store of the poison is stored, whatever its
    // spread over months: 101 spans, 1 + 200 runs, 101 log records.
    wait_count(
        &app,
        "SELECT count() FROM spans FINAL WHERE org_id = toUUID(?)",
        poisoner,
        101,
    )
    .await;
    wait_count(
        &app,
        "SELECT count() FROM traces FINAL WHERE org_id = toUUID(?)",
        poisoner,
        201,
    )
    .await;
    wait_count(
        &app,
        "SELECT count() FROM logs FINAL WHERE org_id = toUUID(?)",
        poisoner,
        101,
    )
    .await;

    // The two that can never be stored are dead letters, once each, with
    // their error; the writer counts them.
    let ch = &app.query.0.ch;
    let rows: Vec<(i32, i64, String, String)> = ch
        .query("SELECT partition, offset, error, status FROM dead_letters FINAL WHERE topic = ? ORDER BY offset")
        .bind(&topic)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        dead_positions
    );
    assert!(rows[0].2.contains("VIOLATED_CONSTRAINT"), "{}", rows[0].2);
    assert!(rows[1].2.starts_with("undecodable"), "{}", rows[1].2);
    assert!(rows.iter().all(|r| r.3 == "pending"));
    assert_eq!(
        count(&app, "SELECT count() FROM traces FINAL WHERE org_id = toUUID(?) AND started_at > '2149-01-01'", poisoner).await,
        0
    );
    // The writer counts them on /metrics.
    let metrics = reqwest::get(format!("http://{health}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("av_writer_dead_letters_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("av_writer_undecodable_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE av_writer_dead_letters_total counter\n"),
        "{metrics}"
    );
    let _ = writer.kill();
    let _ = writer.wait();

    // The operator lists them and replays one: still refused, it stays.
    let out = std::process::Command::new(bin("writer"))
        .args(["dead-letters", "list", "--limit", "1000"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["topic"] == topic)
        .collect();
    assert_eq!(listed.len(), 2);
    let (partition, offset) = dead_positions[0];
    let out = std::process::Command::new(bin("writer"))
        .args(["dead-letters", "replay", "--topic", &topic])
        .args([
            "--partition",
            &partition.to_string(),
            "--offset",
            &offset.to_string(),
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 replayed, 1 failed"), "{text}");
}

#[tokio::test]
async fn a_replayed_dead_letter_is_stored_and_marked() {
    // A message dead-lettered before its cause was fixed (recorded here as
    // the writer records one), then replayed by the operator.
    let app = spawn_app_with(|_| {}).await;
    let org = Uuid::new_v4();
    let trace = Uuid::new_v4();
    let mut m = message(org);
    let now = agentvista_shared::time_fmt::format(time::OffsetDateTime::now_utc());
    let b = parse_unbounded(
        org,
        &json!({"traces": [{"trace": {"trace_id": trace, "agent": "replayed", "started_at": now},
                "spans": [{"span_id": Uuid::new_v4(), "name": "s", "started_at": now}]}]}),
    );
    m.traces = b.traces;
    m.spans = b.spans;
    let topic = format!("av-replay-{}", Uuid::new_v4().simple());
    let pending = writer::flush::Pending {
        topic: topic.clone(),
        partition: 0,
        offset: 7,
        org_id: Some(org),
        payload: m.encode(),
        rows: Default::default(),
        undecodable: None,
    };
    let dead = writer::dead_letter::DeadLetter::new(&pending, "Code: 469. fixed since".into());
    writer::dead_letter::record(&app.query.0.ch, &[dead])
        .await
        .unwrap();

    let replay = || {
        std::process::Command::new(bin("writer"))
            .args([
                "dead-letters",
                "replay",
                "--topic",
                &topic,
                "--partition",
                "0",
                "--offset",
                "7",
            ])
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let out = replay();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 replayed, 0 failed"));
    assert_eq!(
        count(
            &app,
            "SELECT count() FROM spans FINAL WHERE org_id = toUUID(?)",
            org
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count() FROM traces FINAL WHERE org_id = toUUID(?)",
            org
        )
        .await,
        1
    );
    let status: String = app
        .query
        .0
        .ch
        .query("SELECT status FROM dead_letters FINAL WHERE topic = ?")
        .bind(&topic)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(status, "replayed");
    // Replayed once: a second replay finds nothing pending.
    let out = replay();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 replayed, 0 failed"));
}
