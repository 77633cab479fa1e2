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
        json!({"email": "nobody@example.com", "password": "whatever123"}),
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
    ];
    // Every GET route of the dashboard families is listed above.
    for (method, path) in query_api::router::ROUTES {
        if *method == "GET" && (path.starts_with("/agents") || path.starts_with("/dashboard")) {
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
