//! The OpenAPI document, the route lists and the live routers agree: a
//! route without a documented shape, or a documented route that does not
//! exist, fails here.

use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("00000000-0000-0000-0000-000000000001");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn the_document_matches_the_routes() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/openapi.json", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .iter()
                .filter(|(_, op)| op["responses"].is_object())
                .map(move |(m, _)| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = query_api::router::ROUTES
        .iter()
        .chain(ingest_gateway::ROUTES)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes without a documented shape: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented routes that do not exist: {unrouted:?}"
    );

    // Each listed route exists on its live server: unauthenticated calls
    // get anything but 404/405.
    for (method, path) in query_api::router::ROUTES {
        let r = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{}", app.api, concrete(path)),
            )
            .send()
            .await
            .unwrap();
        assert!(
            r.status() != StatusCode::NOT_FOUND && r.status() != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            r.status()
        );
    }
    for (method, path) in ingest_gateway::ROUTES {
        let r = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/api/v1{path}", app.ingest),
            )
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Request metrics are labelled by route template, never by raw path.
    let root = app.api.trim_end_matches("/api/v1");
    let text = app
        .client
        .get(format!("{root}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"av_query_requests_total{route="/api/v1/agents/{agent_id}",method="GET",status="401"}"#), "{text}");
    assert!(
        !text.contains("00000000-0000-0000-0000-000000000001"),
        "{text}"
    );
    let text = app
        .client
        .get(format!("{}/metrics", app.ingest))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"av_gateway_requests_total{route="/api/v1/traces/batch",method="POST",status="401"}"#
        ),
        "{text}"
    );
    assert!(text.contains("av_gateway_spans_accepted_total"), "{text}");

    // And an unknown route is a 404 in the error envelope.
    let r = app
        .client
        .get(format!("{}/no/such/route", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
}
