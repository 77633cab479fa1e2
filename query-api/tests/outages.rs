//! Outages of the infrastructure under the running services: the broker,
//! ClickHouse and Redis are paused (SIGSTOP, or `CLIENT PAUSE` for Redis),
//! and the broker is killed with SIGKILL and restarted. This is its own
//! test binary, and its tests take a lock, so nothing else runs while a
//! service is down.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{
    batch, count_rows, count_rows_reaching, create_topic, long_faults, spawn_app, spawn_app_with,
    start_writer, start_writer_with, TestApp,
};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// What a sustained load saw: acknowledged traces (10 spans each) with the
/// time of their 200, and refusals with their status, whether they carried
/// `Retry-After`, and how long they took.
#[derive(Default)]
struct Seen {
    acked: Vec<(Uuid, Instant)>,
    refused: Vec<(StatusCode, bool, Duration)>,
}

const SPANS_PER_BATCH: u64 = 10;

/// Four clients posting 10-span batches back to back until `stop` is set.
fn sustained_load(
    app: &Arc<TestApp>,
    key: &str,
    agent: &'static str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    (0..4)
        .map(|_| {
            let (app, key, stop) = (app.clone(), key.to_string(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Seen::default();
                while !stop.load(Ordering::Relaxed) {
                    let (trace, body) = batch(agent, SPANS_PER_BATCH as usize);
                    let started = Instant::now();
                    let r = app
                        .client
                        .post(format!("{}/api/v1/traces/batch", app.ingest))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    if r.status() == StatusCode::OK {
                        seen.acked.push((trace, Instant::now()));
                    } else {
                        let retry_after = r.headers().contains_key("retry-after");
                        seen.refused
                            .push((r.status(), retry_after, started.elapsed()));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                seen
            })
        })
        .collect()
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Seen>>) -> Seen {
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.unwrap();
        all.acked.extend(s.acked);
        all.refused.extend(s.refused);
    }
    all
}

/// Once an outage is over: probe with one-span batches every 500 ms until
/// one is acknowledged (within `within`, else fail with `failure`), let the
/// load run one more second, then stop it and collect what it saw.
async fn recover_then_stop(
    app: &TestApp,
    key: &str,
    within: Duration,
    failure: &str,
    stop: &AtomicBool,
    load: Vec<tokio::task::JoinHandle<Seen>>,
) -> Seen {
    let deadline = Instant::now() + within;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, _) = app.post_batch(key, &batch("probe", 1).1).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "{failure}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    join(load).await
}

/// Every acknowledged trace is read back with all its spans, and no span
/// is read twice.
async fn assert_all_acknowledged_stored_once(app: &TestApp, org_id: Uuid, acked: &[Uuid]) {
    let ids: Vec<String> = acked.iter().map(Uuid::to_string).collect();
    let ch = &app.query.0.ch;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (total, distinct): (u64, u64) = ch
            .query("SELECT count(), uniqExact(span_id) FROM spans FINAL WHERE org_id = toUUID(?)")
            .bind(org_id.to_string())
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(total, distinct, "a span is read twice");
        // In chunks, to stay under ClickHouse's query size limit.
        let mut complete = 0u64;
        for chunk in ids.chunks(2_000) {
            complete += ch
                .query(
                    "SELECT count() FROM (SELECT trace_id FROM spans FINAL \
                     WHERE org_id = toUUID(?) AND has(?, toString(trace_id)) \
                     GROUP BY trace_id HAVING count() = ?)",
                )
                .bind(org_id.to_string())
                .bind(chunk)
                .bind(SPANS_PER_BATCH)
                .fetch_one::<u64>()
                .await
                .unwrap();
        }
        if complete == acked.len() as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{complete} of {} acknowledged traces complete",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn quota_used(app: &TestApp, org_id: Uuid) -> u64 {
    let counter = ingest_gateway::quota::counter_key(org_id, time::OffsetDateTime::now_utc());
    let mut r = app.query.0.redis.clone();
    redis::cmd("GET")
        .arg(counter)
        .query_async::<Option<u64>>(&mut r)
        .await
        .unwrap()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_paused_broker_gets_503_and_the_gateway_recovers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = Arc::new(spawn_app_with(|c| c.produce_timeout = Duration::from_secs(2)).await);
    let acct = app.account().await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = sustained_load(&app, &acct.key, "broker-outage", &stop);

    // Under sustained ingestion, the broker is paused from 1.5 s to 5.5 s
    // (20 s with AV_FAULTS_LONG=1), then the load goes on until the gateway
    // has acknowledged batches again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = pid_of("broker");
    signal(pid, "STOP");
    let paused = Paused(pid);
    tokio::time::sleep(Duration::from_secs(if long_faults() { 20 } else { 4 })).await;
    drop(paused);
    let resumed = Instant::now();
    let seen = recover_then_stop(
        &app,
        &acct.key,
        Duration::from_secs(60),
        "the gateway did not recover within 60 s",
        &stop,
        load,
    )
    .await;

    // The outage was seen as quick 503s with Retry-After, never as another
    // error; batches were acknowledged before and after it.
    assert!(
        !seen.refused.is_empty(),
        "no batch was refused while the broker was paused"
    );
    for (status, retry_after, took) in &seen.refused {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after, "503 without Retry-After");
        assert!(*took < Duration::from_secs(10), "a 503 took {took:?}");
    }
    assert!(
        seen.acked.iter().any(|(_, at)| *at > resumed),
        "nothing acknowledged after the broker returned"
    );
    let acked: Vec<Uuid> = seen.acked.iter().map(|(t, _)| *t).collect();
    assert_all_acknowledged_stored_once(&app, acct.org_id, &acked).await;
    // Refused batches spent no quota: it holds exactly the acknowledged
    // spans (and the probe's).
    assert_eq!(
        quota_used(&app, acct.org_id).await,
        acked.len() as u64 * SPANS_PER_BATCH + 1
    );
}

/// Kills the stack's broker with SIGKILL and starts it again with the same
/// command line (and records its new pid), as an operator's supervisor would.
fn kill9_and_restart_broker() {
    let pid = pid_of("broker");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the broker's command line");
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    signal(pid, "KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "the broker survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{}/logs/broker.log", stack_home()))
        .unwrap();
    // `setsid`: the broker outlives this test process, as the stack's does
    // (so it is not waited for here).
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new("setsid")
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("restarting the broker");
    std::fs::write(
        format!("{}/run/broker.pid", stack_home()),
        child.id().to_string(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = argv
        .iter()
        .position(|a| a == "--listen")
        .map(|i| argv[i + 1].clone())
        .expect("--listen in the broker's command line");
    while std::net::TcpStream::connect(&port).is_err() {
        assert!(
            Instant::now() < deadline,
            "the restarted broker did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_broker_killed_and_restarted_under_load_loses_nothing_it_acknowledged() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = Arc::new(spawn_app_with(|c| c.produce_timeout = Duration::from_secs(2)).await);
    let acct = app.account().await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = sustained_load(&app, &acct.key, "broker-kill", &stop);

    // Under sustained ingestion (and with the writer consuming and
    // committing), the broker is killed with SIGKILL after 2 s and started
    // again; the load goes on until batches are acknowledged again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::spawn_blocking(kill9_and_restart_broker)
        .await
        .unwrap();
    let restarted = Instant::now();
    let seen = recover_then_stop(
        &app,
        &acct.key,
        Duration::from_secs(60),
        "the gateway did not recover within 60 s of the broker's restart",
        &stop,
        load,
    )
    .await;

    // Batches were acknowledged before the kill and after the restart; a
    // batch in flight at the kill was refused with a 503 and Retry-After,
    // never another error. Every acknowledged trace is stored with all its
    // spans, none twice (the writer resumed from its committed offsets and
    // a batch redelivered is deduplicated).
    assert!(
        seen.acked.iter().any(|(_, at)| *at < restarted),
        "nothing acknowledged before the kill"
    );
    assert!(
        seen.acked.iter().any(|(_, at)| *at > restarted),
        "nothing acknowledged after the restart"
    );
    for (status, retry_after, _) in &seen.refused {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after, "503 without Retry-After");
    }
    let acked: Vec<Uuid> = seen.acked.iter().map(|(t, _)| *t).collect();
    assert_all_acknowledged_stored_once(&app, acct.org_id, &acked).await;
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
        assert_eq!(
            count_rows_reaching(&app, "traces", acct.org_id, trace, 1).await,
            1
        );
    }
}

#[tokio::test]
async fn redis_unavailable_means_503_for_ingestion_and_reads_keep_working() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = Arc::new(spawn_app().await);
    let acct = app.account().await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = sustained_load(&app, &acct.key, "redis-outage", &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
    // Dashboard reads do not need Redis.
    let (status, _) = app.get(&acct.key, "/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        paused_at.elapsed() < Duration::from_secs(6),
        "the read waited for Redis"
    );
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(paused_at.elapsed())).await;
    let resumed = Instant::now();
    let seen = recover_then_stop(
        &app,
        &acct.key,
        Duration::from_secs(20),
        "ingestion did not recover after Redis came back",
        &stop,
        load,
    )
    .await;

    // Metering needs Redis: nothing is accepted unmetered. The pause shows
    // as 503s with Retry-After; everything acknowledged is stored and
    // metered exactly.
    assert!(
        !seen.refused.is_empty(),
        "no batch was refused while Redis was paused"
    );
    for (status, retry_after, _) in &seen.refused {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after, "503 without Retry-After");
    }
    assert!(
        seen.acked.iter().any(|(_, at)| *at > resumed),
        "nothing acknowledged after Redis returned"
    );
    let acked: Vec<Uuid> = seen.acked.iter().map(|(t, _)| *t).collect();
    assert_all_acknowledged_stored_once(&app, acct.org_id, &acked).await;
    // Every acknowledged span is metered. A reservation that Redis ran
    // only after the gateway had given up on it (and answered 503) is
    // counted too: the policy errs by at most the batches refused during
    // the outage, never by accepting unmetered data.
    let used = quota_used(&app, acct.org_id).await;
    let acked_spans = acked.len() as u64 * SPANS_PER_BATCH;
    assert!(
        used > acked_spans,
        "{used} metered, {acked_spans} acknowledged (+1 probe)"
    );
    assert!(
        used <= acked_spans + seen.refused.len() as u64 * SPANS_PER_BATCH + 100,
        "{used} metered for {acked_spans} acknowledged"
    );
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

#[tokio::test]
async fn sigterm_during_a_clickhouse_outage_exits_within_the_grace_and_loses_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let topic = format!("av-sigterm-{}", Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let t = topic.clone();
    let app = spawn_app_with(move |c| c.common.kafka_topic = t).await;
    let acct = app.account().await;
    let group = format!("{topic}-writers");
    let mut writer = start_writer_with(&topic, &group, &[("AV_SHUTDOWN_GRACE_SECS", "3")]);
    let pid = pid_of("clickhouse");
    let mut acked: Vec<Uuid> = Vec::new();
    let ingest = |n: usize| {
        let app = &app;
        let key = acct.key.clone();
        async move {
            let mut traces = Vec::new();
            for _ in 0..n {
                let (trace, body) = batch("sigterm", SPANS_PER_BATCH as usize);
                let (status, _) = app.post_batch(&key, &body).await;
                assert_eq!(status, StatusCode::OK);
                traces.push(trace);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            traces
        }
    };
    // Stored while ClickHouse is up, then acknowledged while it is paused
    // (the gateway does not need it): the writer is retrying when SIGTERM
    // arrives.
    acked.extend(ingest(10).await);
    // The writer has joined its group and stores (the local broker does
    // not survive a member leaving before its first assignment).
    assert_all_acknowledged_stored_once(&app, acct.org_id, &acked).await;
    signal(pid, "STOP");
    let paused = Paused(pid);
    acked.extend(ingest(20).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    signal(writer.id() as i32, "TERM");
    let exited = loop {
        if let Some(status) = writer.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(15) {
            let _ = writer.kill();
            panic!("the writer ignored SIGTERM during the outage for 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = asked.elapsed();
    drop(paused);
    assert!(exited.success(), "{exited:?}");
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(2),
        "exit took {took:?} with a 3 s grace"
    );
    // What it had not stored it had not committed: the next writer of the
    // group stores every acknowledged span, once.
    let mut next = start_writer(&topic, &group);
    assert_all_acknowledged_stored_once(&app, acct.org_id, &acked).await;
    let _ = next.kill();
    let _ = next.wait();
}

/// The environment's configuration as it is (the cluster suite changes it).
pub fn adjust_common(_: &mut agentvista_shared::config::CommonConfig) {}
