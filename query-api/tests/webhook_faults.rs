//! Background workers under faults: a webhook dispatcher killed with
//! SIGKILL in the middle of an attempt, a receiver that is down for a
//! while, the event consumer killed during ingestion, and the alert
//! evaluator killed mid-pass or run on two replicas. The workers under test run in
//! `query-api serve` child processes (the API itself in process, without
//! workers). Its own test binary, and one test at a time: no other
//! dispatcher shares the database while these run.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{bin, spawn_apps, Account, ChildGuard, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `query-api serve` process running the webhook workers named by `env`
/// (dispatcher and/or event consumer), on the tests' topic.
fn start_workers(app_topic: &str, env: &[(&str, &str)]) -> ChildGuard {
    let child = std::process::Command::new(bin("query-api"))
        .arg("serve")
        .env("AV_QUERY_LISTEN", "127.0.0.1:0")
        .env("AV_KAFKA_TOPIC", app_topic)
        .env("AV_ROLLUP_INTERVAL_SECS", "0")
        .env("AV_WEBHOOK_ALLOW_HTTP", "true")
        .env("AV_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("AV_WEBHOOK_TIMEOUT_SECS", "3")
        .env("AV_WEBHOOK_LEASE_SECS", "8")
        .env("AV_WEBHOOK_POLL_MS", "100")
        .env("AV_SHUTDOWN_GRACE_SECS", "2")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("starting query-api");
    ChildGuard(child)
}

fn sigkill(child: &mut ChildGuard) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// The API without workers (the children run them).
async fn api_only() -> TestApp {
    spawn_apps(
        |_| {},
        |q| {
            q.webhooks.allow_http = true;
            q.webhooks.allow_private = true;
        },
    )
    .await
}

async fn endpoint(app: &TestApp, acct: &Account, url: &str, types: &[&str]) -> String {
    let r = app
        .client
        .post(format!(
            "{}/org/{}/webhooks/endpoints",
            app.api, acct.org_slug
        ))
        .bearer_auth(&acct.key)
        .json(&json!({"url": url, "event_types": types}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn test_event(app: &TestApp, acct: &Account, endpoint: &str) -> String {
    let r = app
        .client
        .post(format!(
            "{}/org/{}/webhooks/endpoints/{endpoint}/test",
            app.api, acct.org_slug
        ))
        .bearer_auth(&acct.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    v["delivery_id"].as_str().unwrap().to_string()
}

async fn statuses(app: &TestApp, endpoint: &str) -> HashMap<String, String> {
    sqlx::query_as::<_, (uuid::Uuid, String)>(
        "SELECT id, status FROM webhook_deliveries WHERE endpoint_id = $1::uuid",
    )
    .bind(endpoint)
    .fetch_all(&app.query.0.pg)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, s)| (id.to_string(), s))
    .collect()
}

/// The ids in the order the receiver first answered them 2xx.
fn delivered_order(receiver: &Receiver) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in receiver.received() {
        if (200..300).contains(&r.answered) && !out.contains(&r.id) {
            out.push(r.id);
        }
    }
    out
}

#[tokio::test]
async fn a_dispatcher_killed_mid_delivery_loses_nothing_and_repeats_the_same_id() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = api_only().await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    // The first request is held (the dispatcher is killed while it waits).
    *receiver.hold_next.lock().unwrap() = Some(Duration::from_secs(30));
    let id = endpoint(&app, &acct, &url, &["alert.fired"]).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(test_event(&app, &acct, &id).await);
    }
    let topic = helpers::shared().topic.clone();
    let mut dispatcher = start_workers(&topic, &[("AV_WEBHOOK_EVENTS", "false")]);
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1, "the first delivery did not start");
    assert_eq!(got[0].id, created[0]);
    sigkill(&mut dispatcher);
    // A new dispatcher takes the endpoint once the dead one's lease ends.
    let _dispatcher = start_workers(&topic, &[("AV_WEBHOOK_EVENTS", "false")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered_order(&receiver).len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every event, in creation order; the interrupted one again with its id.
    assert_eq!(delivered_order(&receiver), created);
    let first_id_seen = receiver
        .received()
        .iter()
        .filter(|r| r.id == created[0])
        .count();
    assert!(
        first_id_seen >= 2,
        "the interrupted delivery was not repeated"
    );
    let bodies: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.id == created[0])
        .map(|r| r.body.clone())
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = statuses(&app, &id).await;
    assert!(created.iter().all(|d| st[d] == "succeeded"), "{st:?}");
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_when_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = api_only().await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    receiver
        .always_fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let id = endpoint(&app, &acct, &url, &["alert.fired"]).await;
    let topic = helpers::shared().topic.clone();
    // The retry schedule at 1/50 (5 s, 30 s, 2 min... as 0.1 s, 0.6 s,
    // 2.4 s, 12 s): the same sequence of attempts as a receiver down for
    // about six minutes at full scale.
    let _dispatcher = start_workers(
        &topic,
        &[
            ("AV_WEBHOOK_EVENTS", "false"),
            ("AV_WEBHOOK_BACKOFF_SCALE", "0.02"),
            // Longer than the outage (a minute with AV_FAULTS_LONG=1).
            ("AV_WEBHOOK_BREAKER_WINDOW_SECS", "600"),
        ],
    );
    let mut created = Vec::new();
    for _ in 0..10 {
        created.push(test_event(&app, &acct, &id).await);
    }
    // Down for 8 s (a full minute with AV_FAULTS_LONG=1).
    let down = if helpers::long_faults() { 60 } else { 8 };
    tokio::time::sleep(Duration::from_secs(down)).await;
    let failed_attempts = receiver.received().len();
    assert!(
        failed_attempts >= 3,
        "only {failed_attempts} attempts while down"
    );
    // Every event was attempted while the receiver was down (each on its
    // own schedule: none waits behind another), and a streak of failures
    // shorter than the breaker's window (60 s) paused nothing.
    let attempted: std::collections::HashSet<String> =
        receiver.received().iter().map(|r| r.id.clone()).collect();
    assert_eq!(attempted.len(), created.len());
    receiver
        .always_fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered_order(&receiver).len() < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut delivered = delivered_order(&receiver);
    delivered.sort();
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(delivered, expected, "every event, once each");
    let list: Value = app
        .client
        .get(format!(
            "{}/org/{}/webhooks/endpoints",
            app.api, acct.org_slug
        ))
        .bearer_auth(&acct.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["is_active"], true, "{list}");
    assert_eq!(list[0]["consecutive_failures"], 0);
}

#[tokio::test]
async fn an_event_consumer_killed_during_ingestion_makes_each_event_exactly_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = spawn_apps(
        |_| {},
        |q| {
            q.webhooks.allow_http = true;
            q.webhooks.allow_private = true;
            q.webhooks.poll = Duration::from_millis(100);
        },
    )
    .await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    let id = endpoint(&app, &acct, &url, &["agent_run.completed"]).await;
    let topic = helpers::shared().topic.clone();
    let group = format!("webhook-fault-{}", uuid::Uuid::new_v4().simple());
    // The child runs only the consumer; the dispatcher runs in this
    // process, so that the kill hits the consumer alone.
    let consumer_env = [
        ("AV_WEBHOOK_POLL_MS", "0"),
        ("AV_WEBHOOK_EVENTS", "true"),
        ("AV_WEBHOOK_EVENTS_GROUP", group.as_str()),
        ("AV_WEBHOOK_EVENTS_FROM", "earliest"),
    ];
    let mut consumer = start_workers(&topic, &consumer_env);
    // 300 runs in 30 batches, while the consumer is killed and restarted.
    let now = time::OffsetDateTime::now_utc();
    let at = |s: i64| agentvista_shared::time_fmt::format(now - time::Duration::seconds(s));
    let mut runs = Vec::new();
    let mut killed = false;
    for b in 0..30 {
        let traces: Vec<Value> = (0..10)
            .map(|_| {
                let t = uuid::Uuid::new_v4();
                runs.push(t.to_string());
                json!({"trace": {"trace_id": t, "agent": "fault", "status": "completed",
                                 "started_at": at(20), "ended_at": at(10)}, "spans": []})
            })
            .collect();
        let (status, _) = app.post_batch(&acct.key, &json!({"traces": traces})).await;
        assert_eq!(status, StatusCode::OK);
        if b == 10 {
            // Kill once deliveries have started to be created.
            let deadline = Instant::now() + Duration::from_secs(60);
            while statuses(&app, &id).await.is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sigkill(&mut consumer);
            killed = true;
            consumer = start_workers(&topic, &consumer_env);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(killed);
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered_order(&receiver).len() < runs.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Exactly one delivery per run: in the outbox, and at the receiver.
    assert_eq!(statuses(&app, &id).await.len(), runs.len());
    // One event per run: one delivery id per trace at the receiver.
    let mut ids_of: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
    for r in receiver.received().iter().filter(|r| r.answered == 200) {
        let trace = serde_json::from_str::<Value>(&r.body).unwrap()["data"]["trace_id"]
            .as_str()
            .unwrap()
            .to_string();
        ids_of.entry(trace).or_default().insert(r.id.clone());
    }
    assert!(
        ids_of.values().all(|ids| ids.len() == 1),
        "a run made two events"
    );
    let mut traces: Vec<String> = ids_of.into_keys().collect();
    traces.sort();
    let mut want = runs.clone();
    want.sort();
    assert_eq!(traces, want);
    drop(consumer);
}

/// `n` inactivity alerts on an agent whose last run was five hours ago:
/// every one breaches (threshold 1 hour, cooldown 60 minutes).
async fn breaching_alerts(app: &TestApp, acct: &Account, n: usize) -> Vec<String> {
    let now = time::OffsetDateTime::now_utc();
    let at = |m: i64| agentvista_shared::time_fmt::format(now - time::Duration::minutes(m));
    let (status, _) = app
        .post_batch(
            &acct.key,
            &json!({"traces": [{"trace": {"trace_id": uuid::Uuid::new_v4(), "agent": "sleepy",
                "status": "completed", "started_at": at(301), "ended_at": at(300)}, "spans": []}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let agent = app.agent_id(&acct.key, "sleepy").await;
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = app
            .client
            .post(format!("{}/alerts", app.api))
            .bearer_auth(&acct.key)
            .json(&json!({"agent_id": agent, "type": "inactivity", "threshold": 1, "channel": "email"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Fired events per alert.
async fn firings(app: &TestApp, ids: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for id in ids {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM alert_events WHERE alert_id = $1::uuid AND kind = 'fired'",
        )
        .bind(id)
        .fetch_one(&app.query.0.pg)
        .await
        .unwrap();
        out.push(n);
    }
    out
}

#[tokio::test]
async fn two_evaluator_replicas_fire_each_alert_once_and_share_the_passes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = api_only().await;
    let acct = app.account().await;
    let ids = breaching_alerts(&app, &acct, 20).await;
    let topic = helpers::shared().topic.clone();
    let env = [
        ("AV_WEBHOOK_EVENTS", "false"),
        ("AV_WEBHOOK_POLL_MS", "0"),
        ("AV_ALERT_INTERVAL_SECS", "1"),
    ];
    let _a = start_workers(&topic, &env);
    let _b = start_workers(&topic, &env);
    // Watch the pass starts for 8 s: two replicas ticking every second
    // would start about 16 passes without the shared spacing.
    let started = Instant::now();
    let mut starts = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(8) {
        let at: Option<time::OffsetDateTime> =
            sqlx::query_scalar("SELECT last_started_at FROM worker_runs WHERE name = 'alerts'")
                .fetch_optional(&app.query.0.pg)
                .await
                .unwrap();
        starts.extend(at);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        firings(&app, &ids).await,
        vec![1; ids.len()],
        "each alert fires once within its cooldown"
    );
    let n = starts.len();
    assert!(
        (3..=10).contains(&n),
        "{n} passes in 8 s with two replicas at a 1 s interval"
    );
    let gaps: Vec<i128> = starts
        .iter()
        .zip(starts.iter().skip(1))
        .map(|(a, b)| (*b - *a).whole_milliseconds())
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= 850),
        "passes closer than the interval: {gaps:?}"
    );
}

#[tokio::test]
async fn an_evaluator_killed_mid_pass_loses_no_firing_and_doubles_none() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = api_only().await;
    let acct = app.account().await;
    let ids = breaching_alerts(&app, &acct, 150).await;
    let topic = helpers::shared().topic.clone();
    let env = [
        ("AV_WEBHOOK_EVENTS", "false"),
        ("AV_WEBHOOK_POLL_MS", "0"),
        ("AV_ALERT_INTERVAL_SECS", "1"),
    ];
    let mut evaluator = start_workers(&topic, &env);
    // Kill it once some, not all, alerts have fired.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fired: i64 = firings(&app, &ids).await.iter().sum();
        if fired > 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigkill(&mut evaluator);
    let partial: i64 = firings(&app, &ids).await.iter().sum();
    let _evaluator = start_workers(&topic, &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while firings(&app, &ids).await.iter().sum::<i64>() < ids.len() as i64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        firings(&app, &ids).await,
        vec![1; ids.len()],
        "killed after {partial} firings"
    );
    // Every firing has its notification queued with it.
    let emails: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM emails e JOIN alert_events v ON v.id = e.alert_event_id WHERE v.alert_id = ANY($1::uuid[])",
    )
    .bind(&ids)
    .fetch_one(&app.query.0.pg)
    .await
    .unwrap();
    assert_eq!(emails, ids.len() as i64);
}

/// The environment's configuration as it is (the cluster suite changes it).
pub fn adjust_common(_: &mut agentvista_shared::config::CommonConfig) {}
