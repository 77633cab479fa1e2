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
