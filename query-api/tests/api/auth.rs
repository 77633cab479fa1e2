//! Sign-up, login (cookie and JWT), logout and `me`.

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn login_gives_a_cookie_and_a_jwt_that_both_read_the_dashboard() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let r = app
        .client
        .post(format!("{}/dashboard/prompts/", app.api))
        .bearer_auth(&acct.key)
        .json(&json!({"name": "auth-prompt", "template_text": "Hello {{name}}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .client
        .post(format!("{}/auth/login", app.api))
        .json(&json!({"email": acct.email, "password": acct.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("av_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    let jwt = body["access_token"].as_str().unwrap();

    let (status, agents) = app.get(jwt, "/agents").await;
    assert_eq!((status, agents), (StatusCode::OK, json!([])));

    let session = cookie.split(';').next().unwrap().to_string();
    let r = app
        .client
        .get(format!("{}/auth/me", app.api))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], acct.email.as_str());
    assert_eq!(me["organizations"][0]["slug"], acct.org_slug.as_str());
    assert_eq!(me["organizations"][0]["role"], "admin");
    assert_eq!(me["organizations"][0]["plan"], "free");

    let r = app
        .client
        .get(format!("{}/agents", app.api))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Logout ends the session.
    let r = app
        .client
        .post(format!("{}/auth/logout", app.api))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .client
        .get(format!("{}/agents", app.api))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_credentials_and_duplicate_signups_are_refused() {
    let app = spawn_app().await;
    let acct = app.account().await;
    for body in [
        json!({"email": acct.email, "password": "wrong password"}),
        json!({"email": format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple()), "password": "whatever123"}),
    ] {
        let r = app
            .client
            .post(format!("{}/auth/login", app.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "Invalid email or password."})
        );
    }
    let r = app
        .client
        .post(format!("{}/auth/signup", app.api))
        .json(&json!({"email": acct.email.to_uppercase(), "password": "another password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let cases = [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            "email: must be a valid email address",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password: must be 8 to 256 characters",
        ),
    ];
    for (body, detail) in cases {
        let r = app
            .client
            .post(format!("{}/auth/signup", app.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["detail"], detail);
    }
    let r = app
        .client
        .post(format!("{}/auth/signup", app.api))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .starts_with("Malformed JSON body"));
}

#[tokio::test]
async fn dashboard_routes_need_authentication() {
    let app = spawn_app().await;
    for path in ["/agents", "/auth/me", "/me/api-keys/"] {
        let r = app
            .client
            .get(format!("{}{path}", app.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
    let (status, body) = app.get("garbage.jwt.token", "/agents").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Invalid or expired token."}));
}

/// Every dashboard read route answers the same with a session cookie, a JWT
/// and an API key with `read`, and 401 without credentials.
#[tokio::test]
async fn every_dashboard_route_takes_a_cookie_a_jwt_or_an_api_key() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (trace_id, body) = crate::helpers::batch("auth-everywhere", 3);
    let (status, _) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::OK);
    let (other_trace, body) = crate::helpers::batch("auth-everywhere-2", 1);
    let (status, _) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::OK);
    app.wait_for(
        &acct.key,
        &format!("/dashboard/traces/{other_trace}"),
        |b| b["spans"].as_array().is_some_and(|s| s.len() == 1),
    )
    .await;
    app.wait_for(&acct.key, &format!("/dashboard/traces/{trace_id}"), |b| {
        b["spans"].as_array().is_some_and(|s| s.len() == 3)
    })
    .await;
    let agent = app.agent_id(&acct.key, "auth-everywhere").await;
    let other_agent = app.agent_id(&acct.key, "auth-everywhere-2").await;
    // Runs land after their spans: wait for both, so that every request
    // below reads the same data.
    for a in [&agent, &other_agent] {
        app.wait_for(&acct.key, &format!("/agents/{a}/runs"), |b| b["total"] == 1)
            .await;
    }
    let r = app
        .client
        .post(format!("{}/dashboard/prompts/", app.api))
        .bearer_auth(&acct.key)
        .json(&json!({"name": "auth-prompt", "template_text": "Hello {{name}}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .client
        .post(format!("{}/auth/login", app.api))
        .json(&json!({"email": acct.email, "password": acct.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let session = cookie.split(';').next().unwrap().to_string();
    let jwt = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Each GET route of the dashboard families, with what it needs, and
    // the status its data should give.
    let routes = [
        ("/agents".to_string(), StatusCode::OK),
        ("/agents/daily?days=30".to_string(), StatusCode::OK),
        (format!("/agents/{agent}"), StatusCode::OK),
        (format!("/agents/{agent}/stats"), StatusCode::OK),
        (format!("/agents/{agent}/runs"), StatusCode::OK),
        ("/dashboard/traces".to_string(), StatusCode::OK),
        (
            format!("/dashboard/traces/compare?agent_ids={agent},{other_agent}&start=2024-01-01T00:00:00Z&end=2024-02-01T00:00:00Z"),
            StatusCode::OK,
        ),
        (format!("/dashboard/traces/{trace_id}"), StatusCode::OK),
        ("/dashboard/metrics/".to_string(), StatusCode::OK),
        (
            "/dashboard/metrics/query?name=no.such.metric".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/dashboard/logs/search?q=anything".to_string(),
            StatusCode::OK,
        ),
        ("/dashboard/prompts/".to_string(), StatusCode::OK),
        ("/dashboard/prompts/auth-prompt".to_string(), StatusCode::OK),
        (
            "/dashboard/prompts/auth-prompt/versions".to_string(),
            StatusCode::OK,
        ),
        (
            "/dashboard/prompts/auth-prompt/compare".to_string(),
            StatusCode::OK,
        ),
    ];
    // Every GET route of the dashboard families is listed above.
    for (method, path) in query_api::router::ROUTES.iter() {
        if method == "GET" && (path.starts_with("/agents") || path.starts_with("/dashboard")) {
            let family = path.split('{').next().unwrap();
            assert!(
                routes.iter().any(|(p, _)| p.starts_with(family)),
                "{path} is not covered"
            );
        }
    }
    for (path, expected) in &routes {
        let url = format!("{}{path}", app.api);
        let anonymous = app.client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        let by_cookie = app
            .client
            .get(&url)
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let cookie_status = by_cookie.status();
        let cookie_body: Value = by_cookie.json().await.unwrap();
        let (jwt_status, jwt_body) = app.get(&jwt, path).await;
        let (key_status, key_body) = app.get(&acct.key, path).await;
        assert_eq!(cookie_status, *expected, "{path} by cookie: {cookie_body}");
        assert_eq!(jwt_status, *expected, "{path} by JWT: {jwt_body}");
        assert_eq!(key_status, *expected, "{path} by API key: {key_body}");
        assert_eq!(cookie_body, jwt_body, "{path}: cookie and JWT disagree");
        assert_eq!(jwt_body, key_body, "{path}: JWT and API key disagree");
    }
}

/// A login attempt from client `ip` (the router's `X-Real-IP`, trusted from
/// loopback): each test run uses addresses of its own.
async fn login_from(
    app: &crate::helpers::TestApp,
    ip: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(format!("{}/auth/login", app.api))
        .header("x-real-ip", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn random_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_for_a_while_not_forever() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let ip = random_ip();
    for _ in 0..query_api::login_throttle::PER_ACCOUNT_CLIENT {
        let r = login_from(&app, &ip, &acct.email, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The next attempt from that client, even with the right password, is
    // refused before any password check, with when to retry.
    let r = login_from(&app, &ip, &acct.email, &acct.password).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=query_api::login_throttle::WINDOW_SECS).contains(&retry),
        "{retry}"
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Too many failed logins"),
        "{body}"
    );
    // The account is not locked for its owner elsewhere.
    let r = login_from(&app, &random_ip(), &acct.email, &acct.password).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_the_cookie_session_even_with_a_bearer_token() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let r = login_from(&app, &random_ip(), &acct.email, &acct.password).await;
    assert_eq!(r.status(), StatusCode::OK);
    let session = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = app
        .client
        .post(format!("{}/auth/logout", app.api))
        .header("cookie", &session)
        .bearer_auth(&acct.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .client
        .get(format!("{}/auth/me", app.api))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Without any session it is still a 204 (safe to repeat).
    let r = app
        .client
        .post(format!("{}/auth/logout", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_key_never_mints_a_key_wider_than_itself() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let write_only = app.create_key(&acct.token, &["write"]).await;
    let create = |bearer: String, scopes: Value| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(format!("{}/me/api-keys/", app.api))
                .bearer_auth(bearer)
                .json(&json!({"name": "minted", "scopes": scopes}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = create(write_only.clone(), json!(["read", "write"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("(read)"),
        "{body}"
    );
    let (status, body) = create(write_only.clone(), json!(["read"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = create(write_only.clone(), json!(["write"])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scopes"], json!(["write"]));
    // A session or JWT grants any scope; a read+write key within its own.
    let (status, _) = create(acct.token.clone(), json!(["read", "write"])).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = create(acct.key.clone(), json!(["read", "write"])).await;
    assert_eq!(status, StatusCode::CREATED);
    // `/auth/me` needs read.
    let (status, body) = app.get(&write_only, "/auth/me").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.get(&acct.key, "/auth/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `AV_SIGNUP_ENABLED=false`: nobody signs up (403 with a clear detail),
/// while an account made by an administrator still logs in.
#[tokio::test]
async fn signup_can_be_switched_off() {
    let app = crate::helpers::spawn_apps(|_| {}, |q| q.signup_enabled = false).await;
    let email = format!("closed-{}@example.com", uuid::Uuid::new_v4().simple());
    let r = app
        .client
        .post(format!("{}/auth/signup", app.api))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": "Sign-up is disabled on this server; ask an administrator of your organization to add you."})
    );
    // An account made the administrator's way (as `admin bootstrap` does).
    query_api::store::accounts::create_user(
        &app.query.0.pg,
        &email,
        "Closed",
        query_api::auth::hash_password("correct horse battery"),
        agentvista_shared::plan::Plan::Free,
    )
    .await
    .map_err(|e| e.0.detail)
    .unwrap();
    let r = app
        .client
        .post(format!("{}/auth/login", app.api))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
