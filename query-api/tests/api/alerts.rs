//! Alerts: the API (validation naming the field, isolation), and the
//! evaluator over constructed run histories: each type fires on its
//! history and not on the complement, cooldown suppresses a second firing
//! and expires, resolution is recorded and notified, a composite needs its
//! ai and infra conditions, an inactive alert never fires. Notifications
//! are read by a real HTTP receiver. Each test calls one evaluation pass
//! itself (`workers::alerts::evaluate`) instead of waiting for the timer.

use crate::helpers::{spawn_apps, Account, Receiver, TestApp};
use query_api::webhooks::signing;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn app() -> TestApp {
    spawn_apps(
        |_| {},
        |q| {
            q.webhooks.poll = Duration::from_millis(100);
            q.webhooks.allow_http = true;
            q.webhooks.allow_private = true;
            q.webhooks.timeout = Duration::from_secs(2);
            q.webhooks.lease = Duration::from_secs(5);
        },
    )
    .await
}

impl TestApp {
    async fn alert_call(
        &self,
        acct: &Account,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(&acct.key, method, &format!("/alerts{path}"), body)
            .await
    }

    async fn create_alert(&self, acct: &Account, body: Value) -> Value {
        let (status, v) = self.alert_call(acct, "POST", "", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    async fn evaluate(&self) {
        query_api::workers::alerts::evaluate(
            &self.query.0.pg,
            &self.query.0.ch,
            "http://dashboard.test",
        )
        .await
        .unwrap();
    }

    async fn alert(&self, acct: &Account, id: &str) -> Value {
        self.alert_call(acct, "GET", &format!("/{id}"), None)
            .await
            .1
    }

    async fn alert_events(&self, acct: &Account, id: &str) -> Vec<Value> {
        let (status, v) = self
            .alert_call(acct, "GET", &format!("/{id}/events"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        v.as_array().unwrap().clone()
    }

    /// Ingest runs of `agent` (status, duration ms, cost USD, minutes ago)
    /// and wait until all are stored.
    async fn runs(&self, acct: &Account, agent: &str, runs: &[(&str, i64, f64, i64)]) -> String {
        let now = time::OffsetDateTime::now_utc();
        let traces: Vec<Value> = runs
            .iter()
            .map(|(status, ms, cost, ago)| {
                let start = now - time::Duration::minutes(*ago) - time::Duration::milliseconds(*ms);
                json!({"trace": {"trace_id": uuid::Uuid::new_v4(), "agent": agent, "status": status,
                    "started_at": agentvista_shared::time_fmt::format(start),
                    "ended_at": agentvista_shared::time_fmt::format(start + time::Duration::milliseconds(*ms)),
                    "duration_ms": ms, "total_cost_usd": format!("{cost:.6}")}, "spans": []})
            })
            .collect();
        let (status, body) = self.post_batch(&acct.key, &json!({"traces": traces})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = self.agent_id(&acct.key, agent).await;
        let want = runs.len();
        self.wait_for(
            &acct.key,
            &format!("/agents/{id}/runs?page_size=100"),
            |b| b["total"].as_u64().is_some_and(|t| t as usize >= want),
        )
        .await;
        id
    }
}

#[tokio::test]
async fn alerts_are_validated_and_isolated() {
    let app = app().await;
    let acct = app.account().await;
    let other = app.account().await;
    let agent = app
        .runs(&acct, "validated", &[("completed", 100, 0.0, 1)])
        .await;
    let foreign = app
        .runs(&other, "foreign", &[("completed", 100, 0.0, 1)])
        .await;
    for (body, field) in [
        (json!({"agent_id": agent, "threshold": 0.2}), "type"),
        (
            json!({"agent_id": agent, "type": "error_rate", "threshold": 0.2}),
            "type",
        ),
        (
            json!({"agent_id": agent, "type": "failure_rate"}),
            "threshold",
        ),
        (
            json!({"agent_id": agent, "type": "failure_rate", "threshold": 1.5}),
            "threshold",
        ),
        (
            json!({"agent_id": agent, "type": "inactivity", "threshold": 0}),
            "threshold",
        ),
        (
            json!({"type": "failure_rate", "threshold": 0.2}),
            "agent_id",
        ),
        (
            json!({"agent_id": agent, "type": "cost_threshold", "threshold": 5, "channel": "webhook"}),
            "webhook_url",
        ),
        (
            json!({"agent_id": agent, "type": "cost_threshold", "threshold": 5, "channel": "sms"}),
            "channel",
        ),
        (
            json!({"agent_id": agent, "type": "cost_threshold", "threshold": 5, "cooldown_minutes": -1}),
            "cooldown_minutes",
        ),
        (
            json!({"agent_id": agent, "type": "composite"}),
            "composite_config",
        ),
        (
            json!({"agent_id": agent, "type": "composite", "composite_config": {"conditions": [
            {"kind": "ai", "metric": "failure_rate", "op": ">", "value": 0.1}]}}),
            "composite_config",
        ),
        (
            json!({"agent_id": agent, "type": "latency_threshold", "threshold": "fast"}),
            "threshold",
        ),
    ] {
        let (status, v) = app.alert_call(&acct, "POST", "", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["detail"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }
    // Another organization's agent is a 404.
    let (status, _) = app
        .alert_call(
            &acct,
            "POST",
            "",
            Some(json!({"agent_id": foreign, "type": "inactivity", "threshold": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Create, read, list, update, events, delete.
    let created = app
        .create_alert(
            &acct,
            json!({"agent_id": agent, "type": "failure_rate", "threshold": 0.2}),
        )
        .await;
    assert_eq!(created["cooldown_minutes"], 60);
    assert_eq!(created["channel"], "email");
    assert_eq!(created["is_active"], true);
    assert_eq!(created["agent_name"], "validated");
    assert_eq!(created["last_fired_at"], Value::Null);
    assert!(created["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_string();
    let service = app
        .create_alert(
            &acct,
            json!({"target_service": "checkout", "type": "latency_threshold", "threshold": 5000}),
        )
        .await;
    assert_eq!(service["agent_id"], Value::Null);
    let (status, list) = app.alert_call(&acct, "GET", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains("whsec_"));
    let (status, v) = app
        .alert_call(
            &acct,
            "PATCH",
            &format!("/{id}"),
            Some(json!({"threshold": 0.5, "cooldown_minutes": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["threshold"].as_f64(),
            v["cooldown_minutes"].as_i64(),
            v["type"].as_str()
        ),
        (Some(0.5), Some(5), Some("failure_rate"))
    );
    let (status, v) = app
        .alert_call(
            &acct,
            "PATCH",
            &format!("/{id}"),
            Some(json!({"threshold": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    for (method, path) in [
        ("GET", format!("/{id}")),
        ("PATCH", format!("/{id}")),
        ("DELETE", format!("/{id}")),
        ("GET", format!("/{id}/events")),
    ] {
        let (status, _) = app
            .alert_call(&other, method, &path, Some(json!({"threshold": 0.3})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (status, _) = app
        .alert_call(&acct, "DELETE", &format!("/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.alert_call(&acct, "GET", &format!("/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failure_rate_alert_fires_notifies_cools_down_and_resolves() {
    let app = app().await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    // 4 of 10 runs failed in the last hour; the complement, 1 of 10.
    let mut history = vec![("failed", 200, 0.0, 5); 4];
    history.extend(vec![("completed", 200, 0.0, 5); 6]);
    let bad = app.runs(&acct, "flaky", &history).await;
    let mut calm = vec![("failed", 200, 0.0, 5); 1];
    calm.extend(vec![("completed", 200, 0.0, 5); 9]);
    let good = app.runs(&acct, "steady", &calm).await;
    let alert = app
        .create_alert(
            &acct,
            json!({"agent_id": bad, "type": "failure_rate", "threshold": 0.2,
                                    "channel": "webhook", "webhook_url": url}),
        )
        .await;
    let secret = alert["webhook_secret"].as_str().unwrap().to_string();
    let id = alert["id"].as_str().unwrap().to_string();
    let calm_alert = app
        .create_alert(
            &acct,
            json!({"agent_id": good, "type": "failure_rate", "threshold": 0.2}),
        )
        .await;
    let inactive = app
        .create_alert(
            &acct,
            json!({"agent_id": bad, "type": "failure_rate", "threshold": 0.2, "is_active": false}),
        )
        .await;
    app.evaluate().await;
    let a = app.alert(&acct, &id).await;
    assert_eq!(a["state"], "firing", "{a}");
    assert_eq!(a["last_value"], 0.4);
    assert!(a["last_fired_at"].is_string());
    assert_eq!(
        app.alert(&acct, calm_alert["id"].as_str().unwrap()).await["state"],
        "ok"
    );
    assert!(app
        .alert_events(&acct, inactive["id"].as_str().unwrap())
        .await
        .is_empty());
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1);
    assert!(signing::verify(
        &secret,
        got[0].timestamp,
        &got[0].body,
        &got[0].signature
    ));
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "alert.fired");
    assert_eq!(body["data"]["alert"]["id"], id.as_str());
    assert_eq!(body["data"]["value"], 0.4);
    // Within the cooldown a second pass fires nothing.
    app.evaluate().await;
    assert_eq!(app.alert_events(&acct, &id).await.len(), 1);
    // Once the cooldown has passed, a lasting breach fires again.
    sqlx::query(
        "UPDATE alerts SET last_fired_at = now() - interval '61 minutes' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.query.0.pg)
    .await
    .unwrap();
    app.evaluate().await;
    let events = app.alert_events(&acct, &id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "fired");
    // The rate falls under the threshold: the alert resolves, and says so.
    app.runs(&acct, "flaky", &vec![("completed", 200, 0.0, 2); 30])
        .await;
    app.evaluate().await;
    let a = app.alert(&acct, &id).await;
    assert_eq!(a["state"], "ok", "{a}");
    let events = app.alert_events(&acct, &id).await;
    assert_eq!(events[0]["kind"], "resolved");
    assert_eq!(events[0]["threshold"], 0.2);
    let got = receiver.wait_for(3, Duration::from_secs(15)).await;
    let kinds: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, vec!["alert.fired", "alert.fired", "alert.resolved"]);
    // Each event lists its notification and outcome.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = app.alert_events(&acct, &id).await;
    assert_eq!(events[0]["notifications"][0]["channel"], "webhook");
    assert_eq!(events[0]["notifications"][0]["status"], "succeeded");
}

#[tokio::test]
async fn inactivity_cost_and_latency_alerts_fire_on_their_history_only() {
    let app = app().await;
    let acct = app.account().await;
    let quiet = app
        .runs(&acct, "quiet", &[("completed", 100, 0.0, 180)])
        .await;
    let busy = app.runs(&acct, "busy", &[("completed", 100, 0.0, 1)]).await;
    let spender = app
        .runs(
            &acct,
            "spender",
            &[("completed", 100, 0.30, 1), ("completed", 100, 0.25, 2)],
        )
        .await;
    let slow = app
        .runs(&acct, "slow", &vec![("completed", 9000, 0.0, 3); 6])
        .await;
    let cases = [
        (
            json!({"agent_id": quiet, "type": "inactivity", "threshold": 2}),
            "firing",
        ),
        (
            json!({"agent_id": busy, "type": "inactivity", "threshold": 2}),
            "ok",
        ),
        (
            json!({"agent_id": spender, "type": "cost_threshold", "threshold": 0.5}),
            "firing",
        ),
        (
            json!({"agent_id": spender, "type": "cost_threshold", "threshold": 10}),
            "ok",
        ),
        (
            json!({"agent_id": slow, "type": "latency_threshold", "threshold": 5000}),
            "firing",
        ),
        (
            json!({"agent_id": slow, "type": "latency_threshold", "threshold": 20000}),
            "ok",
        ),
        // A service-targeted alert watches the agent of that service name.
        (
            json!({"target_service": "slow", "type": "latency_threshold", "threshold": 5000}),
            "firing",
        ),
    ];
    let mut ids = Vec::new();
    for (body, _) in &cases {
        ids.push(
            app.create_alert(&acct, body.clone()).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    app.evaluate().await;
    for ((body, want), id) in cases.iter().zip(&ids) {
        let a = app.alert(&acct, id).await;
        assert_eq!(a["state"], *want, "{body}: {a}");
    }
    let cost = app.alert(&acct, &ids[2]).await;
    assert!(
        (cost["last_value"].as_f64().unwrap() - 0.55).abs() < 1e-6,
        "{cost}"
    );
}

#[tokio::test]
async fn a_composite_alert_needs_its_ai_and_infra_conditions() {
    let app = app().await;
    let acct = app.account().await;
    let mut history = vec![("failed", 200, 0.0, 5); 5];
    history.extend(vec![("completed", 200, 0.0, 5); 5]);
    let agent = app.runs(&acct, "gpu-bound", &history).await;
    // A gauge over OTLP for the infra side: hot on one service, cool on another.
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let gauge = |service: &str, value: f64| {
        json!({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeMetrics": [{"metrics": [{"name": "gpu.utilization", "gauge": {"dataPoints": [
                {"timeUnixNano": (now - 60_000_000_000).to_string(), "asDouble": value}]}}]}]}]})
    };
    for (service, value) in [("gpu-hot", 97.0), ("gpu-cool", 40.0)] {
        let (status, body) = app
            .post_otlp(&acct.key, "metrics", &gauge(service, value))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.wait_for(&acct.key, "/dashboard/metrics/", |b| {
        b.as_array().is_some_and(|a| {
            a.iter()
                .any(|m| m["name"] == "gpu.utilization" && m["data_point_count"] == 2)
        })
    })
    .await;
    let config = |service: &str| {
        json!({"operator": "all", "conditions": [
            {"kind": "ai", "metric": "failure_rate", "op": ">", "value": 0.3},
            {"kind": "infra", "metric_name": "gpu.utilization", "service_name": service, "agg": "avg", "op": ">", "value": 90}]})
    };
    let both = app
        .create_alert(
            &acct,
            json!({"agent_id": agent, "type": "composite", "composite_config": config("gpu-hot")}),
        )
        .await;
    let ai_only = app
        .create_alert(
            &acct,
            json!({"agent_id": agent, "type": "composite", "composite_config": config("gpu-cool")}),
        )
        .await;
    app.evaluate().await;
    assert_eq!(
        app.alert(&acct, both["id"].as_str().unwrap()).await["state"],
        "firing"
    );
    assert_eq!(
        app.alert(&acct, ai_only["id"].as_str().unwrap()).await["state"],
        "ok"
    );
}

/// The messages the local mail catcher (scripts/infra) kept for `to`.
fn mail_to(to: &str) -> Vec<String> {
    let home = std::env::var("AV_HOME")
        .unwrap_or_else(|_| format!("{}/../.stack", env!("CARGO_MANIFEST_DIR")));
    let Ok(dir) = std::fs::read_dir(format!("{home}/mail")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().to_string(),
                std::fs::read_to_string(e.path()).ok()?,
            ))
        })
        .filter(|(_, m)| {
            m.lines()
                .take(2)
                .any(|l| l.starts_with("X-Envelope-To:") && l.contains(to))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, m)| m).collect()
}

#[tokio::test]
async fn an_email_alert_reaches_the_owner_over_smtp() {
    assert!(
        std::env::var("AV_SMTP_HOST").is_ok_and(|h| !h.is_empty()),
        "AV_SMTP_HOST is not set: scripts/test starts the mail catcher and sets it"
    );
    let app = app().await;
    let acct = app.account().await;
    let agent = app
        .runs(&acct, "mailer", &[("completed", 100, 0.0, 300)])
        .await;
    let alert = app
        .create_alert(
            &acct,
            json!({"agent_id": agent, "type": "inactivity", "threshold": 1}),
        )
        .await;
    let id = alert["id"].as_str().unwrap().to_string();
    app.evaluate().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let m = mail_to(&acct.email);
        if !m.is_empty() || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(mail.len(), 1, "no email for {}", acct.email);
    // Quoted-printable soft line breaks joined.
    let m = &mail[0].replace("=\r\n", "").replace("=\n", "");
    assert!(
        m.contains("Subject: [AgentVista] Alert fired: inactivity on agent mailer"),
        "{m}"
    );
    assert!(m.contains("text/plain") && m.contains("text/html"), "{m}");
    assert!(
        m.contains(&format!("http://dashboard.test/agents/{agent}")),
        "{m}"
    );
    assert!(m.contains("Threshold: 1"), "{m}");
    // The observed value: hours since the last run (five hours ago).
    assert!(m.contains("Observed value: 5."), "{m}");
    // The history lists the email and its outcome (committed just after
    // the catcher has the message, so it may lag the file by a moment).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = app.alert_events(&acct, &id).await;
        if events[0]["notifications"][0]["status"] != "pending"
            || std::time::Instant::now() > deadline
        {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let n = &events[0]["notifications"][0];
    assert_eq!(n["channel"], "email");
    assert_eq!(n["to"], acct.email.as_str());
    assert_eq!(n["status"], "sent");
}
