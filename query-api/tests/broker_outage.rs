//! A broker outage: the gateway answers 503 with `Retry-After` (never 200
//! for data it could not hand to Kafka), spends no quota on refused
//! batches, and recovers by itself when the broker returns. The broker is
//! paused with SIGSTOP (its memory storage would not survive a restart), so
//! this runs as its own test binary: nothing else runs while it is paused.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{batch, count_rows, spawn_app_with};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// The stack's broker process (scripts/infra writes its pid).
fn broker_pid() -> i32 {
    let home = std::env::var("AV_HOME")
        .unwrap_or_else(|_| format!("{}/../.stack", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{home}/run/broker.pid");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!("{path}: {e}; this test pauses the broker that scripts/infra started")
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

    let pid = broker_pid();
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
