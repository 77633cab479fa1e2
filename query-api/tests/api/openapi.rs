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
        .cloned()
        .chain(ingest_gateway::routes())
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
    for (method, path) in query_api::router::ROUTES.iter() {
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
    for (method, path) in ingest_gateway::routes() {
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

/// What the document says a query parameter takes is what the server
/// enforces: every bound and enum value is accepted (never a 400), and one
/// step beyond a bound, an unknown enum value or a time outside the
/// queryable range is a 400 naming the parameter.
#[tokio::test]
async fn documented_parameter_bounds_are_the_enforced_ones() {
    let app = spawn_app().await;
    let acct = app.account().await;
    for agent in ["bounds-a", "bounds-b"] {
        let (status, _) = app
            .post_batch(&acct.key, &crate::helpers::batch(agent, 1).1)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let a = app.agent_id(&acct.key, "bounds-a").await;
    let b = app.agent_id(&acct.key, "bounds-b").await;
    // A webhook endpoint of the organization, for its deliveries' route.
    let r = app
        .client
        .post(format!("{}/org/{}/webhooks/endpoints", app.api, acct.org_slug))
        .bearer_auth(&acct.key)
        .json(&serde_json::json!({"url": "https://93.184.216.34/hook", "event_types": ["alert.fired"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let endpoint: Value = r.json().await.unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let doc: Value = serde_json::from_str(query_api::router::OPENAPI).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(op) = ops.get("get") else { continue };
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let concrete_path = path
            .replace("{agent_id}", &a)
            .replace("{trace_id}", "00000000-0000-0000-0000-000000000001")
            .replace("{key_id}", "00000000-0000-0000-0000-000000000001")
            .replace("{org_slug}", &acct.org_slug)
            .replace("{endpoint_id}", &endpoint_id);
        // The required parameters, valid.
        let base: Vec<(String, String)> = params
            .iter()
            .filter(|p| p["in"] == "query" && p["required"] == true)
            .map(|p| {
                let name = p["name"].as_str().unwrap().to_string();
                let value = match name.as_str() {
                    "agent_ids" => format!("{a},{b}"),
                    _ => "x".to_string(),
                };
                (name, value)
            })
            .collect();
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            let schema = &p["schema"];
            let mut good: Vec<String> = Vec::new();
            let mut bad: Vec<String> = Vec::new();
            if let Some(lo) = schema["minimum"].as_i64() {
                good.push(lo.to_string());
                bad.push((lo - 1).to_string());
            }
            if let Some(hi) = schema["maximum"].as_i64() {
                good.push(hi.to_string());
                bad.push((hi + 1).to_string());
            }
            if let Some(values) = schema["enum"].as_array() {
                good.extend(values.iter().map(|v| v.as_str().unwrap().to_string()));
                bad.push("bogus".to_string());
            }
            if schema["format"] == "date-time" {
                good.push("1970-01-01T00:00:00Z".into());
                // (a start after the default end, now, is its own 400)
                if name != "start" {
                    good.push("2099-12-31T23:59:59Z".into());
                }
                bad.push("1969-12-31T23:59:59Z".into());
                bad.push("2100-01-01T00:00:00Z".into());
            }
            for (value, want_400) in good
                .iter()
                .map(|v| (v, false))
                .chain(bad.iter().map(|v| (v, true)))
            {
                let mut query: Vec<(String, String)> =
                    base.iter().filter(|(n, _)| n != name).cloned().collect();
                query.push((name.to_string(), value.clone()));
                let r = app
                    .client
                    .get(format!("{}{concrete_path}", app.api))
                    .bearer_auth(&acct.key)
                    .query(&query)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if want_400 {
                    assert_eq!(
                        status,
                        StatusCode::BAD_REQUEST,
                        "{path} {name}={value}: {body}"
                    );
                    assert!(
                        body["detail"]
                            .as_str()
                            .unwrap_or_default()
                            .starts_with(name),
                        "{path} {name}={value}: {body}"
                    );
                } else {
                    assert_ne!(
                        status,
                        StatusCode::BAD_REQUEST,
                        "{path} {name}={value}: {body}"
                    );
                    assert!(
                        status.as_u16() < 500,
                        "{path} {name}={value}: {status} {body}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} parameter values checked");

    // A 405 names the methods the path has.
    let r = app
        .client
        .delete(format!("{}/me/api-keys/", app.api))
        .bearer_auth(&acct.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, POST");
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
}
