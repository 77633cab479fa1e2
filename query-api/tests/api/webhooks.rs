//! Webhooks against a real HTTP receiver (an axum server in the test):
//! the API (roles, isolation, validation, SSRF refusals), signed delivery,
//! retries replaying the same id and body, rotation, the circuit breaker,
//! and events from ingestion, exactly once per run and endpoint.

use crate::helpers::{spawn_apps, Account, Received, Receiver, TestApp};
use query_api::webhooks::signing;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// An app that delivers: dispatcher on, plain HTTP and private networks
/// allowed (the receiver is on loopback), a fast retry schedule.
async fn delivering_app(events_group: Option<String>) -> TestApp {
    spawn_apps(
        |_| {},
        move |q| {
            q.webhooks.poll = Duration::from_millis(100);
            q.webhooks.allow_http = true;
            q.webhooks.allow_private = true;
            q.webhooks.backoff_scale = 0.05;
            q.webhooks.breaker_threshold = 4;
            // The streak need not last: the threshold alone trips it here.
            q.webhooks.breaker_window = Duration::ZERO;
            q.webhooks.lease = Duration::from_secs(5);
            q.webhooks.timeout = Duration::from_secs(2);
            if let Some(group) = events_group {
                q.webhooks.events = true;
                q.webhooks.events_group = group;
                q.webhooks.events_from = "earliest".into();
            }
        },
    )
    .await
}

impl TestApp {
    fn org_url(&self, acct: &Account, rest: &str) -> String {
        format!("{}/org/{}/{rest}", self.api, acct.org_slug)
    }

    /// A request under the account's organization with its key: the
    /// status it must answer, and the JSON body.
    async fn org_call(
        &self,
        acct: &Account,
        method: &str,
        rest: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), self.org_url(acct, rest))
            .bearer_auth(&acct.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), want, "{method} {rest}");
        r.json().await.unwrap_or(Value::Null)
    }

    async fn create_endpoint(&self, acct: &Account, url: &str, types: &[&str]) -> Value {
        let body = json!({"url": url, "name": "receiver", "event_types": types});
        self.org_call(
            acct,
            "POST",
            "webhooks/endpoints",
            Some(body),
            StatusCode::CREATED,
        )
        .await
    }

    async fn send_test(&self, acct: &Account, endpoint: &str) -> Value {
        let path = format!("webhooks/endpoints/{endpoint}/test");
        self.org_call(acct, "POST", &path, None, StatusCode::ACCEPTED)
            .await
    }

    async fn deliveries(&self, acct: &Account, endpoint: &str) -> Value {
        let path = format!("webhooks/endpoints/{endpoint}/deliveries");
        self.org_call(acct, "GET", &path, None, StatusCode::OK)
            .await
    }

    async fn endpoints(&self, acct: &Account) -> Value {
        self.org_call(acct, "GET", "webhooks/endpoints", None, StatusCode::OK)
            .await
    }

    /// The account's (only) endpoint once it is paused, or as it is when
    /// `within` has passed.
    async fn paused_within(&self, acct: &Account, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let list = self.endpoints(acct).await;
            if list[0]["is_active"] == false || Instant::now() > deadline {
                return list[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn verifies(r: &Received, secret: &str) -> bool {
    signing::verify(secret, r.timestamp, &r.body, &r.signature)
}

/// The signature recomputed from the documented formula, independently of
/// the server's code: hex(HMAC-SHA256(secret, "<timestamp>.<raw body>")).
fn documented_signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_test_event_arrives_signed_and_is_listed_with_its_attempt() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    let created = app
        .create_endpoint(&acct, &url, &["agent_run.completed"])
        .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["is_active"], true);
    assert_eq!(created["consecutive_failures"], 0);
    let id = created["id"].as_str().unwrap().to_string();
    let sent = app.send_test(&acct, &id).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "no delivery arrived");
    let r = &got[0];
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.id, sent["delivery_id"].as_str().unwrap());
    assert_eq!(
        r.signature,
        documented_signature(&secret, r.timestamp, &r.body)
    );
    assert_eq!(r.agentvista_signature, r.signature);
    assert!((r.timestamp - time::OffsetDateTime::now_utc().unix_timestamp()).abs() < 30);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["id"], sent["event_id"]);
    assert_eq!(body["organization"]["slug"], acct.org_slug.as_str());
    // The delivery and its attempt are listed; the secret never is.
    let page = app.deliveries(&acct, &id).await;
    let d = &page["deliveries"][0];
    assert_eq!(d["id"], sent["delivery_id"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut d = d.clone();
    while d["status"] != "succeeded" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        d = app.deliveries(&acct, &id).await["deliveries"][0].clone();
    }
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["attempts"][0]["status_code"], 200);
    assert!(d["attempts"][0]["duration_ms"].is_number());
    let list = app.endpoints(&acct).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains(&secret));
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_id_and_body() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    receiver.fail_first.store(2, Ordering::SeqCst);
    let created = app.create_endpoint(&acct, &url, &["trace.failed"]).await;
    let id = created["id"].as_str().unwrap().to_string();
    let sent = app.send_test(&acct, &id).await;
    // 500, 500, then 200: the first retry comes within 10 s (0.25 s at this
    // test's scale), the second after ~1.5 s.
    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got
        .iter()
        .all(|r| r.id == sent["delivery_id"].as_str().unwrap()));
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, vec![500, 500, 200]);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the body is replayed byte for byte"
    );
    let secret = created["secret"].as_str().unwrap();
    assert!(got.iter().all(|r| verifies(r, secret)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = app.deliveries(&acct, &id).await["deliveries"][0].clone();
    assert_eq!(d["status"], "succeeded", "{d}");
    let codes: Vec<i64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 200]);
    assert_eq!(d["attempt_count"], 3);
    // Success resets the endpoint's failures.
    let list = app.endpoints(&acct).await;
    assert_eq!(list[0]["consecutive_failures"], 0);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    let moved = url.replace("/hook", "/moved");
    let created = app.create_endpoint(&acct, &moved, &["alert.fired"]).await;
    let id = created["id"].as_str().unwrap().to_string();
    app.send_test(&acct, &id).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        let d = app.deliveries(&acct, &id).await["deliveries"][0].clone();
        if d["attempts"].as_array().is_some_and(|a| !a.is_empty()) || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The 307 is a failed attempt; the hook it points to was never called.
    assert_eq!(d["attempts"][0]["status_code"], 307, "{d}");
    assert_eq!(d["status"], "pending");
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn rotation_signs_with_the_new_secret_only() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    let created = app.create_endpoint(&acct, &url, &["alert.fired"]).await;
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["secret"].as_str().unwrap().to_string();
    let r = app
        .client
        .post(app.org_url(&acct, &format!("webhooks/endpoints/{id}/rotate-secret")))
        .bearer_auth(&acct.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    app.send_test(&acct, &id).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert!(verifies(&got[0], &new));
    assert!(!verifies(&got[0], &old));
}

#[tokio::test]
async fn consecutive_failures_pause_the_endpoint_until_it_is_re_enabled() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    receiver.always_fail.store(true, Ordering::SeqCst);
    let created = app.create_endpoint(&acct, &url, &["alert.fired"]).await;
    let id = created["id"].as_str().unwrap().to_string();
    app.send_test(&acct, &id).await;
    // The breaker (4 in this test) trips on the 4th failed attempt.
    let endpoint = app.paused_within(&acct, Duration::from_secs(30)).await;
    assert_eq!(endpoint["is_active"], false, "{endpoint}");
    assert_eq!(endpoint["consecutive_failures"], 4);
    let attempts = receiver.received().len();
    assert_eq!(attempts, 4);
    // The admins are owed a notification.
    let notes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_notifications WHERE org_id = $1 AND kind = 'webhook.endpoint_paused'",
    )
    .bind(acct.org_id)
    .fetch_one(&app.query.0.pg)
    .await
    .unwrap();
    assert_eq!(notes, 1);
    // Paused: nothing more is attempted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), attempts);
    // Re-enabled: the counter resets and the pending delivery goes out.
    receiver.always_fail.store(false, Ordering::SeqCst);
    let r = app
        .client
        .patch(app.org_url(&acct, &format!("webhooks/endpoints/{id}")))
        .bearer_auth(&acct.key)
        .json(&json!({"is_active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["is_active"].clone(),
            body["consecutive_failures"].clone()
        ),
        (json!(true), json!(0))
    );
    let got = receiver
        .wait_for(attempts + 1, Duration::from_secs(20))
        .await;
    assert_eq!(got.len(), attempts + 1);
}

#[tokio::test]
async fn runs_become_events_once_per_run_and_endpoint() {
    let group = format!("webhook-events-{}", uuid::Uuid::new_v4().simple());
    let app = delivering_app(Some(group)).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    let created = app
        .create_endpoint(&acct, &url, &["trace.failed", "agent_run.completed"])
        .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    let now = time::OffsetDateTime::now_utc();
    let at = |s: i64| agentvista_shared::time_fmt::format(now - time::Duration::seconds(s));
    let run = |status: &str| {
        json!({"trace": {"trace_id": uuid::Uuid::new_v4(), "agent": "hooked", "status": status,
                         "started_at": at(10), "ended_at": at(5)}, "spans": []})
    };
    let (failed, completed, running) = (run("failed"), run("completed"), run("running"));
    let batch = json!({"traces": [failed, completed, running]});
    let (status, _) = app.post_batch(&acct.key, &batch).await;
    assert_eq!(status, StatusCode::OK);
    // failed -> agent_run.completed + trace.failed; completed -> one; running -> none.
    let got = receiver.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 3, "{got:?}");
    // The same batch again (a client retry) makes nothing new.
    let (status, _) = app.post_batch(&acct.key, &batch).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let mut seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            assert!(verifies(r, &secret));
            let v: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["organization"]["id"], acct.org_id.to_string());
            assert_eq!(v["data"]["agent_name"], "hooked");
            (
                v["type"].as_str().unwrap().to_string(),
                v["data"]["trace_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let (f, c) = (
        failed["trace"]["trace_id"].as_str().unwrap().to_string(),
        completed["trace"]["trace_id"].as_str().unwrap().to_string(),
    );
    let mut want = vec![
        ("agent_run.completed".to_string(), f.clone()),
        ("agent_run.completed".to_string(), c),
        ("trace.failed".to_string(), f),
    ];
    want.sort();
    assert_eq!(seen, want);
    // The running run's end arrives later: its event follows.
    let mut ended = running.clone();
    ended["trace"]["status"] = json!("completed");
    let (status, _) = app.post_batch(&acct.key, &json!({"traces": [ended]})).await;
    assert_eq!(status, StatusCode::OK);
    let got = receiver.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 4);
    let last: Value = serde_json::from_str(&got[3].body).unwrap();
    assert_eq!(last["data"]["trace_id"], running["trace"]["trace_id"]);
}

#[tokio::test]
async fn roles_isolation_and_validation() {
    // Validation with the production defaults: https only, no private
    // destinations (no dispatcher runs in this app).
    let app = spawn_apps(|_| {}, |_| {}).await;
    let admin = app.account().await;
    let other = app.account().await;
    let endpoints = app.org_url(&admin, "webhooks/endpoints");
    let post = |key: &str, body: Value| {
        app.client
            .post(&endpoints)
            .bearer_auth(key.to_string())
            .json(&body)
            .send()
    };
    for (body, field) in [
        (
            json!({"url": "http://hooks.example.com/x", "event_types": ["alert.fired"]}),
            "url",
        ),
        (
            json!({"url": "https://127.0.0.1/x", "event_types": ["alert.fired"]}),
            "url",
        ),
        (
            json!({"url": "https://10.1.2.3/x", "event_types": ["alert.fired"]}),
            "url",
        ),
        (
            json!({"url": "https://169.254.169.254/latest", "event_types": ["alert.fired"]}),
            "url",
        ),
        (
            json!({"url": "https://localhost/x", "event_types": ["alert.fired"]}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "event_types": ["run.done"]}),
            "event_types",
        ),
        (json!({"url": "https://hooks.example.com/x"}), "event_types"),
    ] {
        let r = post(&admin.key, body.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["detail"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }
    // A public https URL is accepted (nothing is delivered: no events).
    let r = post(
        &admin.key,
        json!({"url": "https://93.184.216.34/hook", "event_types": ["alert.fired"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap();

    // Another organization's admin: 404 on every route of this one.
    for (method, path) in [
        ("GET", "webhooks/endpoints".to_string()),
        ("POST", "webhooks/endpoints".to_string()),
        ("PATCH", format!("webhooks/endpoints/{id}")),
        ("DELETE", format!("webhooks/endpoints/{id}")),
        ("POST", format!("webhooks/endpoints/{id}/rotate-secret")),
        ("GET", format!("webhooks/endpoints/{id}/deliveries")),
        ("POST", format!("webhooks/endpoints/{id}/test")),
        ("GET", "members".to_string()),
        ("POST", "members".to_string()),
        ("PATCH", format!("members/{}", uuid::Uuid::new_v4())),
        ("DELETE", format!("members/{}", uuid::Uuid::new_v4())),
    ] {
        let r = app
            .client
            .request(method.parse().unwrap(), app.org_url(&admin, &path))
            .bearer_auth(&other.key)
            .json(&json!({"url": "https://93.184.216.34/x", "event_types": ["alert.fired"], "role": "member", "email": other.email}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    // The other org's endpoint id under the other org's slug is also a 404
    // for this admin's ids.
    let r = app
        .client
        .get(format!(
            "{}/org/{}/webhooks/endpoints/{id}/deliveries",
            app.api, other.org_slug
        ))
        .bearer_auth(&other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Members: the admin adds the other user as a member.
    let members = app.org_url(&admin, "members");
    let r = app
        .client
        .post(&members)
        .bearer_auth(&admin.key)
        .json(&json!({"email": other.email, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let member: Value = r.json().await.unwrap();
    assert_eq!(member["role"], "member");
    let member_id = member["user_id"].as_str().unwrap().to_string();
    let r = app
        .client
        .post(&members)
        .bearer_auth(&admin.key)
        .json(&json!({"email": other.email, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .client
        .post(&members)
        .bearer_auth(&admin.key)
        .json(&json!({"email": "nobody@example.com", "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .post(&members)
        .bearer_auth(&admin.key)
        .json(&json!({"email": other.email, "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The member acts in the admin's organization with a session token
    // (their API key belongs to their own organization: still a 404).
    let member_token = &other.token;
    let r = app
        .client
        .get(&endpoints)
        .bearer_auth(member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .get(app.org_url(&admin, &format!("webhooks/endpoints/{id}/deliveries")))
        .bearer_auth(member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .post(&endpoints)
        .bearer_auth(member_token)
        .json(&json!({"url": "https://93.184.216.34/x", "event_types": ["alert.fired"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .post(app.org_url(&admin, &format!("webhooks/endpoints/{id}/rotate-secret")))
        .bearer_auth(member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .get(&endpoints)
        .bearer_auth(&other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let list: Value = app
        .client
        .get(&members)
        .bearer_auth(member_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Bad inputs on the member and endpoint routes: 400 naming the field,
    // 404 for an id that is not a member or an endpoint.
    let bad: Vec<(reqwest::Method, String, Value, StatusCode, &str)> = vec![
        (
            reqwest::Method::POST,
            members.clone(),
            json!({"email": "", "role": "member"}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            reqwest::Method::PATCH,
            format!("{members}/{member_id}"),
            json!({"role": "owner"}),
            StatusCode::BAD_REQUEST,
            "role",
        ),
        (
            reqwest::Method::PATCH,
            format!("{members}/not-a-uuid"),
            json!({"role": "member"}),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            reqwest::Method::DELETE,
            format!("{members}/{}", uuid::Uuid::new_v4()),
            json!({}),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            reqwest::Method::PATCH,
            format!("{endpoints}/{id}"),
            json!({"event_types": ["nope"]}),
            StatusCode::BAD_REQUEST,
            "event_types",
        ),
        (
            reqwest::Method::PATCH,
            format!("{endpoints}/{id}"),
            json!({"url": "http://10.0.0.1/x"}),
            StatusCode::BAD_REQUEST,
            "url",
        ),
        (
            reqwest::Method::PATCH,
            format!("{endpoints}/{id}"),
            json!({"is_active": "yes"}),
            StatusCode::BAD_REQUEST,
            "is_active",
        ),
        (
            reqwest::Method::PATCH,
            format!("{endpoints}/{}", uuid::Uuid::new_v4()),
            json!({"name": "x"}),
            StatusCode::NOT_FOUND,
            "",
        ),
    ];
    for (method, url, body, want, field) in bad {
        let r = app
            .client
            .request(method.clone(), &url)
            .bearer_auth(&admin.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{method} {url} {body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["detail"].as_str().unwrap().starts_with(field),
            "{method} {url}: {v}"
        );
    }

    // Roles: the last admin cannot be demoted or removed; a second admin
    // can be, and a member can leave.
    let admin_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "admin")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .patch(format!("{members}/{admin_id}"))
        .bearer_auth(&admin.key)
        .json(&json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .client
        .delete(format!("{members}/{admin_id}"))
        .bearer_auth(&admin.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .client
        .patch(format!("{members}/{member_id}"))
        .bearer_auth(&admin.key)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .patch(format!("{members}/{admin_id}"))
        .bearer_auth(&admin.key)
        .json(&json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .delete(format!("{members}/{admin_id}"))
        .bearer_auth(member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Removed: the former admin's key of the organization no longer works.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = app
        .client
        .get(&endpoints)
        .bearer_auth(&admin.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_failing_delivery_does_not_hold_the_endpoints_other_events() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    let (receiver, url) = Receiver::start().await;
    // The receiver refuses one event (say a 400 for one payload) forever.
    receiver.refuse_first_delivery.store(true, Ordering::SeqCst);
    let created = app.create_endpoint(&acct, &url, &["trace.failed"]).await;
    let id = created["id"].as_str().unwrap().to_string();
    let refused = app.send_test(&acct, &id).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Its first attempt failed before the others are created.
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].id, refused);
    let later: Vec<String> = futures::future::join_all((0..3).map(|_| app.send_test(&acct, &id)))
        .await
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap().to_string())
        .collect();
    // The later events are delivered while the refused one is still being
    // retried (before, they waited behind it for hours).
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = app.deliveries(&acct, &id).await;
        let done = page["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| later.contains(&d["id"].as_str().unwrap().to_string()))
            .filter(|d| d["status"] == "succeeded")
            .count();
        if done == later.len() || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deliveries = page["deliveries"].as_array().unwrap();
    for d in deliveries {
        let did = d["id"].as_str().unwrap();
        if did == refused {
            assert_ne!(d["status"], "succeeded", "{d}");
        } else {
            assert_eq!(d["status"], "succeeded", "{d}");
        }
    }
    assert_eq!(deliveries.len(), 4, "{page}");
    // The successes between its attempts reset the breaker's count: the
    // endpoint stays active.
    let list = app.endpoints(&acct).await;
    assert_eq!(list[0]["is_active"], true, "{list}");
}

#[tokio::test]
async fn a_dead_endpoint_is_paused_within_one_pass_and_errors_are_generic() {
    let app = delivering_app(None).await;
    let acct = app.account().await;
    // Nothing listens here: every attempt is refused by the system.
    let url = format!("http://127.0.0.1:{}/hook", crate::helpers::free_port());
    let created = app.create_endpoint(&acct, &url, &["trace.failed"]).await;
    let id = created["id"].as_str().unwrap().to_string();
    for _ in 0..25 {
        app.send_test(&acct, &id).await;
    }
    let endpoint = app.paused_within(&acct, Duration::from_secs(60)).await;
    assert_eq!(endpoint["is_active"], false, "{endpoint}");
    // Paused by failures of different deliveries (before, only the oldest
    // was ever attempted, each retry hours after the last).
    let page = app
        .org_call(
            &acct,
            "GET",
            &format!("webhooks/endpoints/{id}/deliveries?page_size=100"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 25);
    let attempted: Vec<&Value> = page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attempt_count"].as_i64().unwrap_or(0) > 0)
        .collect();
    // (At least two: on a loaded machine the first events may be attempted,
    // and retried, while the others are still being created.)
    assert!(attempted.len() >= 2, "{page}");
    // What a member reads of an attempt is a generic class, never the
    // system's own error text (no port-scan oracle).
    for d in &attempted {
        for a in d["attempts"].as_array().unwrap() {
            assert_eq!(a["error"], "connection refused", "{a}");
        }
    }
}
