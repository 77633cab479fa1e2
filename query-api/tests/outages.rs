//! Outages of the infrastructure under the running services: the broker,
//! ClickHouse and Redis are paused (SIGSTOP, or `CLIENT PAUSE` for Redis;
//! the broker's memory storage would not survive a restart). This is its
//! own test binary, and its tests take a lock, so nothing else runs while a
//! service is paused.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{batch, count_rows, long_faults, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use uuid::Uuid;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn stack_home() -> String {
    std::env::var("AV_HOME").unwrap_or_else(|_| format!("{}/../.stack", env!("CARGO_MANIFEST_DIR")))
}

fn pid_of(service: &str) -> i32 {
    let path = format!("{}/run/{service}.pid", stack_home());
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!("{path}: {e}; this test pauses the {service} that scripts/infra started")
        })
        .trim()
        .parse()
        .expect("a pid")
}

fn signal(pid: i32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Resumes the broker however the test ends.
struct Paused(i32);

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

#[tokio::test]
async fn a_paused_broker_gets_503_and_the_gateway_recovers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = spawn_app_with(|c| c.produce_timeout = Duration::from_secs(2)).await;
    let acct = app.account().await;
    let (status, _) = app.post_batch(&acct.key, &batch("outage", 3).1).await;
    assert_eq!(status, StatusCode::OK);
    let mut redis = app.query.0.redis.clone();
    let counter = ingest_gateway::quota::counter_key(acct.org_id, time::OffsetDateTime::now_utc());
    let used = |r: &mut redis::aio::ConnectionManager| {
        let mut r = r.clone();
        let counter = counter.clone();
        async move {
            redis::cmd("GET")
                .arg(counter)
                .query_async::<Option<i64>>(&mut r)
                .await
                .unwrap()
                .unwrap_or(0)
        }
    };
    assert_eq!(used(&mut redis).await, 3);

    let pid = pid_of("broker");
    signal(pid, "STOP");
    let paused = Paused(pid);
    for _ in 0..3 {
        let started = Instant::now();
        let r = app
            .client
            .post(format!("{}/api/v1/traces/batch", app.ingest))
            .bearer_auth(&acct.key)
            .json(&batch("outage", 5).1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "5");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the 503 took {:?}",
            started.elapsed()
        );
    }
    // Refused batches spent no quota.
    assert_eq!(used(&mut redis).await, 3);
    drop(paused);

    // Recovery without a restart: retries succeed and the data is read back.
    let deadline = Instant::now() + Duration::from_secs(60);
    let trace = loop {
        let (trace, body) = batch("outage", 2);
        let (status, _) = app.post_batch(&acct.key, &body).await;
        if status == StatusCode::OK {
            break trace;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "the gateway did not recover within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_rows(&app, "spans", acct.org_id, trace).await < 2 {
        assert!(
            Instant::now() < deadline,
            "spans sent after the outage never became readable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(used(&mut redis).await, 5);
}

#[tokio::test]
async fn a_paused_clickhouse_delays_but_never_loses_or_duplicates() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let acct = app.account().await;
    let pid = pid_of("clickhouse");
    let mut acked: Vec<Uuid> = Vec::new();
    let started = Instant::now();
    let mut paused = None;
    // Ingest for 8 s; ClickHouse is paused from 1 s to 6 s (with
    // AV_FAULTS_LONG=1: 48 s, paused from 1 s to 46 s). The gateway does not
    // need it: every batch is still accepted.
    let outage = Duration::from_secs(if long_faults() { 45 } else { 5 });
    let resume_at = Duration::from_secs(1) + outage;
    let mut was_paused = false;
    while started.elapsed() < resume_at + Duration::from_secs(2) {
        let (trace, body) = batch("ch-outage", 10);
        let (status, _) = app.post_batch(&acct.key, &body).await;
        assert_eq!(status, StatusCode::OK);
        acked.push(trace);
        if !was_paused && started.elapsed() > Duration::from_secs(1) {
            signal(pid, "STOP");
            paused = Some(Paused(pid));
            was_paused = true;
        }
        if paused.is_some() && started.elapsed() > resume_at {
            paused = None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(paused);
    // The writer drains the backlog: every run and span exactly once.
    let ch = &app.query.0.ch;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (spans, distinct): (u64, u64) = ch
            .query("SELECT count(), uniqExact(span_id) FROM spans FINAL WHERE org_id = toUUID(?)")
            .bind(acct.org_id.to_string())
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(spans, distinct, "a span is read twice");
        if spans == acked.len() as u64 * 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{spans} of {} spans after the outage",
            acked.len() * 10
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for trace in [acked[0], acked[acked.len() / 2], *acked.last().unwrap()] {
        assert_eq!(count_rows(&app, "traces", acct.org_id, trace).await, 1);
    }
}

#[tokio::test]
async fn redis_unavailable_means_503_for_ingestion_and_reads_keep_working() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let acct = app.account().await;
    let (status, _) = app.post_batch(&acct.key, &batch("redis-outage", 1).1).await;
    assert_eq!(status, StatusCode::OK);
    // CLIENT PAUSE holds every other client's commands for 6 s; the
    // gateway's Redis calls time out after 2 s.
    let mut admin = app.query.0.redis.clone();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(6000)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    let paused_at = Instant::now();
    let r = app
        .client
        .post(format!("{}/api/v1/traces/batch", app.ingest))
        .bearer_auth(&acct.key)
        .json(&batch("redis-outage", 1).1)
        .send()
        .await
        .unwrap();
    if paused_at.elapsed() < Duration::from_secs(6) {
        // Metering needs Redis: nothing is accepted unmetered.
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "5");
    }
    // Dashboard reads do not need Redis.
    let (status, _) = app.get(&acct.key, "/agents").await;
    assert_eq!(status, StatusCode::OK);
    // Back to normal once Redis answers again.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(paused_at.elapsed())).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = app.post_batch(&acct.key, &batch("redis-outage", 1).1).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingestion did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn beyond_its_capacity_the_gateway_sheds_load_at_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = std::sync::Arc::new(spawn_app_with(|c| c.max_inflight = 2).await);
    let acct = app.account().await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let app = app.clone();
        let key = acct.key.clone();
        tasks.push(tokio::spawn(async move {
            let r = app
                .client
                .post(format!("{}/api/v1/traces/batch", app.ingest))
                .bearer_auth(&key)
                .json(&batch("shed", 100).1)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["detail"], "The gateway is at capacity; retry shortly.");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(ok >= 2, "{ok} accepted");
    assert!(
        shed > 0,
        "nothing was shed with 40 concurrent requests and 2 slots"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn beyond_its_byte_budget_the_gateway_sheds_load_and_keeps_what_it_accepted() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Room for about three of these ~40 KB bodies at once.
    let app = std::sync::Arc::new(
        spawn_app_with(|c| {
            c.max_body_bytes = 64 * 1024;
            c.max_inflight_bytes = 128 * 1024;
        })
        .await,
    );
    let acct = app.account().await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let app = app.clone();
        let key = acct.key.clone();
        tasks.push(tokio::spawn(async move {
            let (trace, body) = batch("budget", 100);
            let r = app
                .client
                .post(format!("{}/api/v1/traces/batch", app.ingest))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let retry_after = r.headers().get("retry-after").cloned();
            let body: serde_json::Value = r.json().await.unwrap();
            (trace, status, retry_after, body)
        }));
    }
    let mut accepted = Vec::new();
    let mut shed = 0;
    for t in tasks {
        let (trace, status, retry_after, body) = t.await.unwrap();
        match status {
            StatusCode::OK => accepted.push(trace),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["detail"], "The gateway is at capacity; retry shortly.");
                assert!(retry_after.is_some(), "503 without Retry-After");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!accepted.is_empty(), "nothing accepted");
    assert!(shed > 0, "40 concurrent 40 KB bodies fit a 128 KB budget");
    // What was acknowledged is stored, once.
    for trace in &accepted {
        let deadline = Instant::now() + Duration::from_secs(30);
        while count_rows(&app, "spans", acct.org_id, *trace).await != 100 {
            assert!(Instant::now() < deadline, "trace {trace} incomplete");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
