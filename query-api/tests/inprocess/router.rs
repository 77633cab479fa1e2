//! The query API's router in process, without PostgreSQL, ClickHouse or
//! Redis (their clients point at closed ports and connect lazily): every
//! request here is answered before any of them is needed, so what is
//! checked is routing, the error envelope, authentication refusals and
//! request validation.

use agentvista_shared::clients::Redis;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use query_api::{App, AppState, Config};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

async fn offline_router() -> axum::Router {
    offline_router_with(|_| {}).await
}

async fn offline_router_with(tweak: impl FnOnce(&mut Config)) -> axum::Router {
    query_api::router::router(offline_state(tweak).await)
}

async fn offline_state(tweak: impl FnOnce(&mut Config)) -> AppState {
    let mut config = Config::from_env().expect("defaults");
    tweak(&mut config);
    config.common.redis_url = "redis://127.0.0.1:1".into();
    config.common.clickhouse_url = "http://127.0.0.1:1".into();
    let pg = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(200))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let ch = agentvista_shared::clients::clickhouse(&config.common);
    let redis = Redis::lazy(&config.common).unwrap();
    let app = App::new(config, pg, ch, redis).await.unwrap();
    AppState(Arc::new(app))
}

async fn call(
    router: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn concrete(path: &str) -> String {
    path.replace("{agent_id}", "00000000-0000-0000-0000-000000000001")
        .replace("{trace_id}", "00000000-0000-0000-0000-000000000002")
        .replace("{key_id}", "00000000-0000-0000-0000-000000000003")
}

#[tokio::test]
async fn every_documented_route_exists_and_refuses_anonymous_callers_with_the_envelope() {
    let router = offline_router().await;
    let open = [
        "/auth/signup",
        "/auth/login",
        "/auth/logout",
        "/openapi.json",
    ];
    for (method, path) in query_api::router::ROUTES.iter() {
        if open.contains(&path.as_str()) {
            continue;
        }
        let req = Request::builder()
            .method(method.as_str())
            .uri(format!("/api/v1{}", concrete(path)))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, body) = call(&router, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert!(body["detail"].is_string(), "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn malformed_keys_and_foreign_tokens_are_refused_without_a_lookup() {
    let router = offline_router().await;
    for token in ["av_short", "sk_0000", "not.a.jwt"] {
        let req = Request::get("/api/v1/agents")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = call(&router, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert!(body["detail"].is_string());
    }
    // A JWT signed with another secret.
    let other = query_api::auth::JwtKeys::new(&[7u8; 32]);
    let jwt = other.issue(uuid::Uuid::nil(), uuid::Uuid::nil(), uuid::Uuid::nil(), 60);
    let req = Request::get("/api/v1/auth/me")
        .header("authorization", format!("Bearer {jwt}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&router, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["detail"], "Invalid or expired token.");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_404_and_405_with_allow() {
    let router = offline_router().await;
    let (status, _, body) = call(&router, get("/api/v1/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].is_string(), "{body}");
    for (path, allow) in [
        ("/api/v1/me/api-keys/", "GET, POST"),
        ("/api/v1/me/api-keys", "GET, POST"),
        ("/api/v1/dashboard/traces/abc", "GET, PATCH"),
        ("/api/v1/auth/login", "POST"),
    ] {
        let req = Request::delete(path).body(Body::empty()).unwrap();
        let (status, headers, body) = call(&router, req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(headers["allow"], allow, "{path}");
        assert!(body["detail"].is_string());
    }
}

#[tokio::test]
async fn both_spellings_of_a_trailing_slash_reach_the_route() {
    let router = offline_router().await;
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/",
        "/api/v1/me/api-keys",
        "/api/v1/me/api-keys/",
        "/api/v1/dashboard/metrics",
        "/api/v1/dashboard/metrics/",
        "/api/v1/dashboard/traces/",
    ] {
        let (status, _, _) = call(&router, get(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn signup_validation_answers_before_the_database() {
    let router = offline_router().await;
    let long_name = format!(
        r#"{{"email":"a@example.com","password":"long enough","name":"{}"}}"#,
        "n".repeat(129)
    );
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"email":"not-an-email","password":"long enough"}"#.into(),
            "email",
        ),
        (
            r#"{"email":"a@example.com","password":"short"}"#.into(),
            "password",
        ),
        (long_name, "name"),
        (r#"{"email":5}"#.into(), "email"),
    ];
    for (body, field) in cases {
        let req = Request::post("/api/v1/auth/signup")
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, _, answer) = call(&router, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().starts_with(field),
            "{body}: {answer}"
        );
    }
    let req = Request::post("/api/v1/auth/signup")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, _, answer) = call(&router, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["detail"].is_string());
    // A body over the 1 MiB limit is a 413 with the envelope.
    let req = Request::post("/api/v1/auth/signup")
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; 2 * 1024 * 1024]))
        .unwrap();
    let (status, _, answer) = call(&router, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
}

#[tokio::test]
async fn the_document_is_served_and_lists_exactly_the_routes() {
    let router = offline_router().await;
    let (status, _, doc) = call(&router, get("/api/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let served: std::collections::BTreeSet<(String, String)> =
        query_api::router::paths_of(&serde_json::from_value(doc).unwrap())
            .into_iter()
            .collect();
    let routed: std::collections::BTreeSet<(String, String)> = query_api::router::ROUTES
        .iter()
        .cloned()
        .chain(ingest_gateway::routes())
        .collect();
    assert_eq!(served, routed);
    let (status, _, body) = call(&router, get("/healthz")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}

#[tokio::test]
async fn the_dashboard_is_served_outside_the_api_and_api_misses_stay_json() {
    let dir = std::env::temp_dir().join(format!("av-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>AgentVista</title>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    let web = dir.clone();
    let router = offline_router_with(move |c| c.web_dir = Some(web)).await;
    let text = |req: Request<Body>| {
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let ctype = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                ctype.unwrap_or_default(),
                String::from_utf8_lossy(&body).to_string(),
            )
        }
    };
    for path in [
        "/",
        "/traces",
        "/traces/00000000-0000-0000-0000-000000000002?model=x",
        "/settings/api-keys",
    ] {
        let (status, ctype, body) = text(get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
        assert!(body.contains("<title>AgentVista</title>"), "{path}");
    }
    let (status, ctype, body) = text(get("/assets/app.js")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "console.log(1)"));
    assert!(ctype.contains("javascript"), "{ctype}");
    // API misses, and writes outside the API, are the JSON 404.
    for req in [
        get("/api/v1/no/such/route"),
        get("/api/nope"),
        Request::post("/traces").body(Body::empty()).unwrap(),
    ] {
        let (status, _, body) = call(&router, req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["detail"], "Route not found.");
    }
    // The API is unchanged.
    let (status, _, _) = call(&router, get("/api/v1/agents")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    std::fs::remove_dir_all(dir).ok();
}

/// With `AV_QUERY_INTERNAL_LISTEN`, health, readiness and metrics leave the
/// main port (a JSON 404 there, not the dashboard's page) for the internal
/// listener's router.
#[tokio::test]
async fn health_and_metrics_can_move_to_an_internal_listener() {
    let state = offline_state(|c| c.internal_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let main = query_api::router::router(state.clone());
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, body) = call(&main, get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            body,
            serde_json::json!({"detail": "Route not found."}),
            "{path}"
        );
    }
    let ops = query_api::router::ops(state);
    let (status, _, body) = call(&ops, get("/healthz")).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
    let resp = ops.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("# TYPE"));
    // Nothing else is served there.
    let (status, _, _) = call(&ops, get("/api/v1/agents")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without the setting they stay on the main port.
    let main = offline_router().await;
    let (status, _, _) = call(&main, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
}
