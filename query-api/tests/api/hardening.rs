//! Hardening against a hostile tenant and a careless operator: a
//! pathological prompt costs no request-handler time, NUL characters are a
//! 400 naming the field, parallel wrong passwords are throttled, cross-site
//! state changes with the session cookie are refused, a JWT ends with its
//! session, removed members stop notifying, only admins set outbound URLs,
//! admins revoke members' keys, responses carry the security headers and
//! are compressed on request, and a trace beyond one answer says so.

use crate::helpers::{spawn_app, spawn_apps, Account, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

impl TestApp {
    /// Sign up `email`'s account and return its session cookie and JWT.
    async fn signup_session(&self, email: &str) -> (String, String) {
        let r = self
            .client
            .post(format!("{}/auth/signup", self.api))
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let cookie = session_cookie(&r);
        let body: Value = r.json().await.unwrap();
        (cookie, body["access_token"].as_str().unwrap().to_string())
    }

    /// Log in from `ip` (as the router would say: `X-Real-IP`), so that
    /// the throttle's per-client counter is this test's own.
    async fn login(&self, ip: &str, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/auth/login", self.api))
            .header("x-real-ip", ip)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }
}

/// `av_session=<token>` from a response's `Set-Cookie`.
fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

impl TestApp {
    /// A successful login's JWT.
    async fn login_token(&self, ip: &str, email: &str, password: &str) -> String {
        let r = self.login(ip, email, password).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `GET /auth/me`'s status with a session cookie.
    async fn me_with_cookie(&self, cookie: &str) -> StatusCode {
        self.client
            .get(format!("{}/auth/me", self.api))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn random_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

fn fresh_email() -> String {
    format!("h-{}@example.com", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_pathological_prompt_is_cheap_to_write_and_read_and_stalls_no_one() {
    let app = spawn_app().await;
    let acct = app.account().await;
    // 49,999 openings and one close: quadratic, each read cost 2 s of CPU
    // on the async workers and stalled every other request.
    let template = format!("{}}}}}", "{{".repeat(49_999));
    let (status, created) = app
        .call(
            &acct.key,
            "POST",
            "/dashboard/prompts/",
            Some(json!({"name": "braces", "template_text": template})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["variables"], json!([]));
    // Health answers while several reads of the prompt run at once.
    let health_url = app.api.replace("/api/v1", "/healthz");
    let started = Instant::now();
    let reads =
        futures::future::join_all((0..6).map(|_| app.get(&acct.key, "/dashboard/prompts/braces")));
    let health = async {
        let t = Instant::now();
        let r = app.client.get(&health_url).send().await.unwrap();
        (r.status(), t.elapsed())
    };
    let (reads, (health_status, health_took)) = tokio::join!(reads, health);
    for (status, body) in reads {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["template_text"].as_str().unwrap().len(), 100_000);
    }
    assert_eq!(health_status, StatusCode::OK);
    // Generous bounds for a loaded machine: the quadratic scan took about
    // 2 s per read (12 s for these six), the linear one a millisecond.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(health_took < Duration::from_secs(2), "{health_took:?}");
}

#[tokio::test]
async fn a_nul_character_is_a_400_naming_the_field() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let nul = "a\u{0000}b";
    let org = format!("/org/{}", acct.org_slug);
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "POST",
            "/dashboard/prompts/".into(),
            json!({"name": "p", "template_text": nul}),
            "template_text",
        ),
        (
            "POST",
            "/dashboard/prompts/".into(),
            json!({"name": "p", "template_text": "x", "description": nul}),
            "description",
        ),
        (
            "POST",
            format!("{org}/webhooks/endpoints"),
            json!({"name": nul, "url": "https://example.com/h", "event_types": ["trace.failed"]}),
            "name",
        ),
        (
            "POST",
            "/alerts".into(),
            json!({"type": "failure_rate", "threshold": 0.5, "target_service": nul}),
            "target_service",
        ),
        (
            "POST",
            "/alerts".into(),
            json!({"type": "composite", "composite_config": {"operator": nul}}),
            "composite_config.operator",
        ),
        (
            "POST",
            format!("{org}/members"),
            json!({"email": nul, "role": "member"}),
            "email",
        ),
        (
            "POST",
            "/me/api-keys/".into(),
            json!({"name": nul, "scopes": ["read"]}),
            "name",
        ),
        (
            "POST",
            "/auth/signup".into(),
            json!({"email": "x@example.com", "password": "correct horse", "name": nul}),
            "name",
        ),
        (
            "POST",
            "/auth/signup".into(),
            json!({"email": nul, "password": "correct horse"}),
            "email",
        ),
        (
            "POST",
            "/auth/login".into(),
            json!({"email": nul, "password": "x"}),
            "email",
        ),
        (
            "POST",
            "/dashboard/prompts/".into(),
            json!({"name": "p", "template_text": "x", nul: 1}),
            "a\u{0}b",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = app.call(&acct.key, method, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains(field.trim_end_matches("a\u{0}b"))
                && answer["detail"].as_str().unwrap().contains("NUL"),
            "{method} {path}: {answer}"
        );
    }
    // In a query string and in a path too.
    let (status, answer) = app.get(&acct.key, "/dashboard/traces?agent_id=a%00b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("agent_id"),
        "{answer}"
    );
    let (status, _) = app.get(&acct.key, "/dashboard/prompts/a%00b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn parallel_wrong_passwords_are_throttled_at_the_limit() {
    let app = spawn_app().await;
    let email = fresh_email();
    app.signup_session(&email).await;
    let ip = random_ip();
    // 25 at once for one account from one client: the check and the count
    // are one step, so at most the limit (10) are checked.
    let answers =
        futures::future::join_all((0..25).map(|_| app.login(&ip, &email, "wrong password"))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        checked,
        query_api::login_throttle::PER_ACCOUNT_CLIENT as usize,
        "{statuses:?}"
    );
    assert_eq!(checked + throttled, 25, "{statuses:?}");
    // The right password is throttled too now (the pair's window).
    assert_eq!(
        app.login(&ip, &email, "correct horse battery")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn cookie_requests_from_another_site_or_origin_change_nothing() {
    let app = spawn_app().await;
    let email = fresh_email();
    let (cookie, _) = app.signup_session(&email).await;
    let post = |path: &str, headers: &[(&'static str, &'static str)]| {
        let mut req = app
            .client
            .post(format!("{}{path}", app.api))
            .header("cookie", &cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    // A form post from another port of the same host (same-site) and from
    // another site: refused, and the session still works.
    for headers in [
        &[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:1"),
        ][..],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ][..],
        &[("origin", "https://evil.example")][..],
    ] {
        let r = post("/auth/logout", headers).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("Cross-site"),
            "{body}"
        );
        let r = post("/me/api-keys/", headers).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(app.me_with_cookie(&cookie).await, StatusCode::OK);
    // The dashboard's own requests pass: same origin, and logout ends it.
    let r = post("/auth/logout", &[("sec-fetch-site", "same-origin")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me_with_cookie(&cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_jwt_ends_with_its_session_and_sessions_can_be_ended() {
    let app = spawn_app().await;
    let email = fresh_email();
    let (_, jwt) = app.signup_session(&email).await;
    let ip = random_ip();
    let (status, _) = app.get(&jwt, "/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    // Logout with the token ends it: it can no longer mint a key.
    let r = app
        .client
        .post(format!("{}/auth/logout", app.api))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            &jwt,
            "POST",
            "/me/api-keys/",
            Some(json!({"name": "k", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Two sessions; the password change ends the other one.
    let a_jwt = app.login_token(&ip, &email, "correct horse battery").await;
    let b_jwt = app.login_token(&ip, &email, "correct horse battery").await;
    let (status, sessions) = app.get(&a_jwt, "/auth/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    // A wrong current password changes nothing; the right one does.
    for (current, want) in [
        ("wrong", StatusCode::BAD_REQUEST),
        ("correct horse battery", StatusCode::NO_CONTENT),
    ] {
        let change = json!({"current_password": current, "new_password": "a new passphrase"});
        let (status, body) = app
            .call(&a_jwt, "POST", "/auth/password", Some(change))
            .await;
        assert_eq!(status, want, "{body}");
        if want == StatusCode::BAD_REQUEST {
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.contains("current_password"), "{body}");
            assert_eq!(app.get(&b_jwt, "/auth/me").await.0, StatusCode::OK);
        }
    }
    assert_eq!(
        app.get(&b_jwt, "/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get(&a_jwt, "/auth/me").await.0, StatusCode::OK);
    assert_eq!(
        app.login(&ip, &email, "correct horse battery")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let c = app.login(&ip, &email, "a new passphrase").await;
    assert_eq!(c.status(), StatusCode::OK);
    // An API key cannot manage sessions.
    let key = app.create_key(&a_jwt, &["read", "write"]).await;
    assert_eq!(
        app.get(&key, "/auth/sessions").await.0,
        StatusCode::FORBIDDEN
    );
    // Bad inputs of the new routes: 400 naming the field, 404 for a
    // session that is not a uuid or is another user's.
    for (body, field) in [
        (
            json!({"current_password": "a new passphrase"}),
            "new_password",
        ),
        (
            json!({"current_password": "a new passphrase", "new_password": "short"}),
            "new_password",
        ),
    ] {
        let (status, answer) = app.call(&a_jwt, "POST", "/auth/password", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let (_, mine) = app.get(&a_jwt, "/auth/sessions").await;
    let mine = mine[0]["id"].as_str().unwrap().to_string();
    let (_, other_jwt) = app.signup_session(&fresh_email()).await;
    for id in [mine.as_str(), "not-a-uuid"] {
        let (status, _) = app
            .call(&other_jwt, "DELETE", &format!("/auth/sessions/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(app.get(&a_jwt, "/auth/me").await.0, StatusCode::OK);
    // Log out everywhere.
    let (status, _) = app.call(&a_jwt, "DELETE", "/auth/sessions", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&a_jwt, "/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    // The key outlives sessions (revoked on its own).
    assert_eq!(app.get(&key, "/me/api-keys/ping/").await.0, StatusCode::OK);
}

/// `admin` adds a fresh user as a member; the member's account.
async fn add_member(app: &TestApp, admin: &Account) -> Account {
    let member = app.account().await;
    let (status, body) = app
        .call(
            &admin.key,
            "POST",
            &format!("/org/{}/members", admin.org_slug),
            Some(json!({"email": member.email, "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    member
}

/// A member's JWT acting in `org_slug`.
async fn call_in(
    app: &TestApp,
    bearer: &str,
    org_slug: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.api))
        .bearer_auth(bearer)
        .header("x-agentvista-org", org_slug);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn outbound_urls_are_admins_and_a_removed_members_alerts_stop() {
    // Private destinations allowed: no name needs to resolve here.
    let app = spawn_apps(
        |_| {},
        |q| {
            q.webhooks.allow_private = true;
            q.webhooks.allow_http = true;
        },
    )
    .await;
    let admin = app.account().await;
    let member = add_member(&app, &admin).await;
    let slug = admin.org_slug.clone();
    let hook = json!({"type": "failure_rate", "threshold": 0.5, "target_service": "svc", "channel": "webhook",
                      "webhook_url": "http://10.0.0.7/a"});
    // A member may not set an outbound URL.
    let (status, body) = call_in(
        &app,
        &member.token,
        &slug,
        "POST",
        "/alerts",
        Some(hook.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The member's own email alert is fine; an admin's webhook alert too.
    let (status, mine) = call_in(
        &app,
        &member.token,
        &slug,
        "POST",
        "/alerts",
        Some(json!({"type": "failure_rate", "threshold": 0.5, "target_service": "svc"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let (status, theirs) = app.call(&admin.key, "POST", "/alerts", Some(hook)).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let theirs_id = theirs["id"].as_str().unwrap().to_string();
    // The member cannot re-point the admin's alert.
    let (status, body) = call_in(
        &app,
        &member.token,
        &slug,
        "PATCH",
        &format!("/alerts/{theirs_id}"),
        Some(json!({"webhook_url": "http://10.0.0.8/x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Every outbound URL is listed, the alert's included.
    let (status, dests) = app
        .get(&admin.key, &format!("/org/{slug}/webhooks/destinations"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dests.as_array().unwrap().len(), 1, "{dests}");
    assert_eq!(dests[0]["source"], "alert");
    assert_eq!(dests[0]["url"], "http://10.0.0.7/a");
    // Another organization sees none of them.
    let other = app.account().await;
    let (status, _) = app
        .get(&other.key, &format!("/org/{slug}/webhooks/destinations"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removed, the member's alerts are deactivated.
    let (status, _) = app
        .call(
            &admin.key,
            "DELETE",
            &format!("/org/{slug}/members/{}", member_id(&app, &member).await),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mine_id = mine["id"].as_str().unwrap();
    let (status, alert) = app.get(&admin.key, &format!("/alerts/{mine_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alert["is_active"], false, "{alert}");
    // And never evaluated, even re-enabled.
    let (status, _) = app
        .call(
            &admin.key,
            "PATCH",
            &format!("/alerts/{mine_id}"),
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let active = query_api::store::alerts::active(&app.query.0.pg)
        .await
        .unwrap();
    assert!(!active.iter().any(|(a, _)| a.id.to_string() == mine_id));
    assert!(active.iter().any(|(a, _)| a.id.to_string() == theirs_id));
}

async fn member_id(app: &TestApp, acct: &Account) -> String {
    let (_, me) = app.get(&acct.token, "/auth/me").await;
    me["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn admins_revoke_members_keys_and_a_demoted_admin_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.account().await;
    let member = add_member(&app, &admin).await;
    let slug = admin.org_slug.clone();
    let (_, member_key_body) = call_in(
        &app,
        &member.token,
        &slug,
        "POST",
        "/me/api-keys/",
        Some(json!({"name": "member key", "scopes": ["read"]})),
    )
    .await;
    let member_key = member_key_body["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&member_key, "/me/api-keys/ping/").await.0,
        StatusCode::OK
    );
    // A member cannot list the organization's keys.
    let (status, _) = call_in(
        &app,
        &member.token,
        &slug,
        "GET",
        &format!("/org/{slug}/api-keys"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, keys) = app.get(&admin.key, &format!("/org/{slug}/api-keys")).await;
    assert_eq!(status, StatusCode::OK);
    let listed = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "member key")
        .unwrap_or_else(|| panic!("{keys}"));
    assert_eq!(listed["user_email"], member.email);
    assert!(!keys.to_string().contains(&member_key), "never the raw key");
    let key_id = listed["id"].as_str().unwrap();
    // An id that is not a uuid, or no key of the organization: 404.
    for bad in ["not-a-uuid", "00000000-0000-0000-0000-000000000001"] {
        let (status, _) = app
            .call(
                &admin.key,
                "DELETE",
                &format!("/org/{slug}/api-keys/{bad}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    // Another organization's admin cannot revoke it.
    let other = app.account().await;
    let (status, _) = app
        .call(
            &other.key,
            "DELETE",
            &format!("/org/{}/api-keys/{key_id}", other.org_slug),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            &admin.key,
            "DELETE",
            &format!("/org/{slug}/api-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get(&member_key, "/me/api-keys/ping/").await.0 != StatusCode::UNAUTHORIZED {
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The admin check runs inside the change's transaction: an actor who is
    // no longer an admin changes nothing.
    let member_uuid: uuid::Uuid = member_id(&app, &member).await.parse().unwrap();
    let admin_uuid: uuid::Uuid = member_id(&app, &admin).await.parse().unwrap();
    use query_api::store::members;
    let refused = members::set_role(
        &app.query.0.pg,
        admin.org_id,
        member_uuid,
        admin_uuid,
        "member",
    )
    .await
    .unwrap();
    assert_eq!(refused.unwrap_err(), members::Refused::NotAdmin);
    let refused = members::remove(&app.query.0.pg, admin.org_id, Some(member_uuid), admin_uuid)
        .await
        .unwrap();
    assert_eq!(refused.unwrap_err(), members::Refused::NotAdmin);
    let (_, list) = app.get(&admin.key, &format!("/org/{slug}/members")).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test]
async fn responses_carry_security_headers_and_compress_on_request() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (trace_id, body) = crate::helpers::batch("compress-agent", 100);
    assert_eq!(app.post_batch(&acct.key, &body).await.0, StatusCode::OK);
    let path = format!("/dashboard/traces/{trace_id}");
    app.wait_for(&acct.key, &path, |b| b["span_count"] == 100)
        .await;
    for encoding in ["gzip", "zstd"] {
        let r = app
            .client
            .get(format!("{}{path}", app.api))
            .bearer_auth(&acct.key)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-encoding"], encoding);
        let h = r.headers();
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("referrer-policy"));
        let compressed = r.bytes().await.unwrap();
        let plain = app
            .client
            .get(format!("{}{path}", app.api))
            .bearer_auth(&acct.key)
            .send()
            .await
            .unwrap();
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = plain.bytes().await.unwrap();
        assert!(
            compressed.len() * 5 < plain.len(),
            "{} vs {}",
            compressed.len(),
            plain.len()
        );
        let decoded: Vec<u8> = if encoding == "gzip" {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            // A zstd frame (its magic number); its content is zstd's
            // business, the length ratio above shows it compressed.
            assert_eq!(&compressed[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
            plain.to_vec()
        };
        assert_eq!(decoded, plain);
    }
    // Errors carry them too.
    let r = app
        .client
        .get(format!("{}/nowhere", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_trace_beyond_one_answer_says_it_is_truncated() {
    // A small cap stands for the default 10,000 (the same code path).
    let cap = 150;
    let app = spawn_apps(|_| {}, |q| q.trace_max_spans = cap as i64).await;
    let acct = app.account().await;
    let total = cap + 50;
    let trace_id = uuid::Uuid::new_v4();
    // The run in batches of 100 spans (one export each).
    let mut sent = 0;
    while sent < total {
        let n = (total - sent).min(100);
        let (_, mut body) = crate::helpers::batch("long-agent", n);
        let t = &mut body["traces"][0];
        t["trace"]["trace_id"] = json!(trace_id);
        for s in t["spans"].as_array_mut().unwrap() {
            s["trace_id"] = json!(trace_id);
        }
        let (status, answer) = app.post_batch(&acct.key, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        sent += n;
    }
    let path = format!("/dashboard/traces/{trace_id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let detail = loop {
        let (status, body) = app.get(&acct.key, &path).await;
        if status == StatusCode::OK && body["total_spans"] == total {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "last answer {status}: {}",
            body["total_spans"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(detail["truncated"], true);
    assert_eq!(detail["span_count"], cap);
    assert_eq!(detail["spans"].as_array().unwrap().len(), cap);
}
