//! Prompts: every route's status codes and orders, the runtime fetch's
//! `ETag` and rollback, usage links from the route, from `/traces/batch`
//! span fields and from OTLP span attributes (the real OpenTelemetry
//! Python SDK, ours and Langfuse's names), the comparison they feed (a
//! PATCHed outcome counts at once; a link to a version registered later
//! counts once it is), and isolation between organizations.

use crate::helpers::{batch, count_rows_reaching, spawn_app, Account, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

impl TestApp {
    async fn prompt_call(
        &self,
        acct: &Account,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(
            &acct.key,
            method,
            &format!("/dashboard/prompts{path}"),
            body,
        )
        .await
    }

    async fn create_prompt(&self, acct: &Account, body: Value) -> Value {
        let (status, v) = self.prompt_call(acct, "POST", "/", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    async fn link(&self, acct: &Account, body: Value) -> (StatusCode, Value) {
        self.prompt_call(acct, "POST", "/usage", Some(body)).await
    }

    async fn compare(&self, acct: &Account, name: &str, query: &str) -> Value {
        let (status, v) = self
            .prompt_call(acct, "GET", &format!("/{name}/compare{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Ingest one run and wait until it is readable.
    async fn stored_run(&self, acct: &Account, body: &Value, trace_id: Uuid) {
        let (status, v) = self.post_batch(&acct.key, body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        // The run row, not only its spans (a trace of spans alone already
        // reads as a summarized trace): the writer stores runs last.
        let runs = count_rows_reaching(self, "traces", acct.org_id, trace_id, 1).await;
        assert_eq!(runs, 1, "the run {trace_id} was not stored");
    }
}

/// A run with its own success, outcome, duration and cost.
fn run(agent: &str, success: bool, outcome: &str, duration_ms: i64, cost: &str) -> (Uuid, Value) {
    let (trace_id, mut body) = batch(agent, 1);
    let t = &mut body["traces"][0]["trace"];
    t["success"] = json!(success);
    t["outcome"] = json!(outcome);
    t["duration_ms"] = json!(duration_ms);
    t["total_cost_usd"] = json!(cost);
    (trace_id, body)
}

fn version(compare: &Value, v: i64) -> &Value {
    compare["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == v)
        .unwrap_or_else(|| panic!("no version {v} in {compare}"))
}

#[tokio::test]
async fn versions_are_created_listed_in_order_and_refused_with_the_field_named() {
    let app = spawn_app().await;
    let acct = app.account().await;

    let v1 = app
        .create_prompt(
            &acct,
            json!({"name": "classify-intent", "template_text": "Classify {{inquiry}} for {{ customer }}; {{inquiry}}"}),
        )
        .await;
    assert_eq!(v1["version"], 1, "version defaults to 1");
    assert_eq!(v1["is_active"], true);
    assert_eq!(v1["description"], Value::Null);
    assert_eq!(v1["variables"], json!(["inquiry", "customer"]));
    assert!(Uuid::parse_str(v1["id"].as_str().unwrap()).is_ok());
    assert!(v1["created_at"].as_str().unwrap().ends_with('Z'));

    let v3 = app
        .create_prompt(
            &acct,
            json!({"name": "classify-intent", "version": 3, "template_text": "v3 {{inquiry}}", "description": "escalation"}),
        )
        .await;
    assert_eq!(v3["is_active"], true);
    assert_eq!(v3["description"], "escalation");
    app.create_prompt(
        &acct,
        json!({"name": "another", "version": 2, "template_text": "x"}),
    )
    .await;

    // 409 on an existing name + version; the active version is unchanged.
    let (status, body) = app
        .prompt_call(
            &acct,
            "POST",
            "/",
            Some(json!({"name": "classify-intent", "template_text": "again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("version 1"));

    // The list: by name, then newest version first; only v3 is active.
    let (status, list) = app.prompt_call(&acct, "GET", "/", None).await;
    assert_eq!(status, StatusCode::OK);
    let order: Vec<(String, i64, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_i64().unwrap(),
                p["is_active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("another".into(), 2, true),
            ("classify-intent".into(), 3, true),
            ("classify-intent".into(), 1, false),
        ]
    );
    let (_, page) = app
        .prompt_call(&acct, "GET", "?limit=1&offset=1", None)
        .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["version"], 3);

    let (status, versions) = app
        .prompt_call(&acct, "GET", "/classify-intent/versions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 1], "newest first");
    for path in ["/nope/versions", "/nope/compare", "/nope"] {
        let (status, body) = app.prompt_call(&acct, "GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body["detail"].is_string());
    }

    // Bad input: a 400 naming the field.
    let long = "x".repeat(129);
    for (body, field) in [
        (json!({"template_text": "t"}), "name"),
        (json!({"name": "p"}), "template_text"),
        (json!({"name": "p", "template_text": "  "}), "template_text"),
        (json!({"name": "", "template_text": "t"}), "name"),
        (json!({"name": long, "template_text": "t"}), "name"),
        (json!({"name": "a/b", "template_text": "t"}), "name"),
        (json!({"name": "usage", "template_text": "t"}), "name"),
        (
            json!({"name": "p", "template_text": "t", "version": 0}),
            "version",
        ),
        (
            json!({"name": "p", "template_text": "t", "version": 2147483648i64}),
            "version",
        ),
        (
            json!({"name": "p", "template_text": "t", "version": "two"}),
            "version",
        ),
        (
            json!({"name": "p", "template_text": "t".repeat(100_001)}),
            "template_text",
        ),
        (
            json!({"name": "p", "template_text": "t", "description": "d".repeat(2001)}),
            "description",
        ),
    ] {
        let (status, err) = app.prompt_call(&acct, "POST", "/", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {err}");
        assert_eq!(err["errors"][0]["field"], field, "{err}");
        assert!(err["detail"].as_str().unwrap().starts_with(field), "{err}");
    }
    for q in ["?limit=0", "?limit=1001", "?offset=-1", "?limit=x"] {
        let (status, err) = app.prompt_call(&acct, "GET", q, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {err}");
    }
    // Nothing of the refused bodies was stored.
    let (_, list) = app.prompt_call(&acct, "GET", "/", None).await;
    assert_eq!(list.as_array().unwrap().len(), 3);

    // A read key cannot create; no key is a 401.
    let read_only = app.create_key(&acct.token, &["read"]).await;
    let r = app
        .client
        .post(format!("{}/dashboard/prompts/", app.api))
        .bearer_auth(&read_only)
        .json(&json!({"name": "p", "template_text": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .get(format!("{}/dashboard/prompts/", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_runtime_fetch_revalidates_by_etag_and_follows_a_rollback() {
    let app = spawn_app().await;
    let acct = app.account().await;
    app.create_prompt(
        &acct,
        json!({"name": "support", "template_text": "v1 {{ticket}}"}),
    )
    .await;
    app.create_prompt(
        &acct,
        json!({"name": "support", "version": 2, "template_text": "v2 {{ticket}} {{tone}}"}),
    )
    .await;

    let fetch = |etag: Option<String>, query: &'static str| {
        let mut req = app
            .client
            .get(format!("{}/dashboard/prompts/support{query}", app.api))
            .bearer_auth(&acct.key);
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        req.send()
    };
    let r = fetch(None, "").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag_v2 = r.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["version"], 2);
    assert_eq!(body["variables"], json!(["ticket", "tone"]));

    let r = fetch(Some(etag_v2.clone()), "").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag_v2);
    assert!(r.bytes().await.unwrap().is_empty());

    // Roll back to version 1: it is active, the fetch and its ETag change.
    let (status, v1) = app
        .prompt_call(&acct, "POST", "/support/versions/1/activate", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(v1["is_active"], true);
    let r = fetch(Some(etag_v2.clone()), "").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the old ETag no longer matches");
    let etag_v1 = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag_v1, etag_v2);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["version"].as_i64(), body["is_active"].as_bool()),
        (Some(1), Some(true))
    );
    let (_, versions) = app
        .prompt_call(&acct, "GET", "/support/versions", None)
        .await;
    let active: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["is_active"] == true)
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(active, vec![1], "exactly one active version");

    // A given version, active or not.
    let r = fetch(None, "?version=2").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["version"].as_i64(), body["is_active"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(
        fetch(None, "?version=9").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(None, "?version=0").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        fetch(None, "?version=x").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );

    // Activating again is harmless; unknown versions are 404s.
    let (status, _) = app
        .prompt_call(&acct, "POST", "/support/versions/1/activate", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/support/versions/7/activate",
        "/support/versions/x/activate",
        "/nope/versions/1/activate",
    ] {
        let (status, body) = app.prompt_call(&acct, "POST", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test]
async fn usage_links_feed_the_comparison_idempotently_and_a_patch_counts_at_once() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let agent = format!("prompt-bot-{}", Uuid::new_v4().simple());
    app.create_prompt(&acct, json!({"name": "triage", "template_text": "one"}))
        .await;
    app.create_prompt(
        &acct,
        json!({"name": "triage", "version": 2, "template_text": "two"}),
    )
    .await;

    let (a, body_a) = run(&agent, true, "resolved", 1000, "0.010000");
    let (b, body_b) = run(&agent, false, "escalated", 3000, "0.030000");
    let (c, body_c) = run(&agent, true, "resolved", 2000, "0.020000");
    let (unlinked, body_u) = run(&agent, false, "lost", 9000, "0.090000");
    for (id, body) in [
        (a, &body_a),
        (b, &body_b),
        (c, &body_c),
        (unlinked, &body_u),
    ] {
        app.stored_run(&acct, body, id).await;
    }
    let link = |trace: Uuid, v: i64| json!({"prompt_name": "triage", "prompt_version": v, "trace_id": trace});
    for (trace, v) in [(a, 1), (b, 1), (c, 2), (a, 1)] {
        let (status, body) = app.link(&acct, link(trace, v)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["trace_id"], trace.to_string());
    }
    // A span of the run can be named too (the same link: one run).
    let span_id = body_a["traces"][0]["spans"][0]["span_id"].clone();
    let (status, body) = app
        .link(&acct, json!({"prompt_name": "triage", "prompt_version": 1, "trace_id": a, "span_id": span_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["span_id"], span_id);

    let cmp = app.compare(&acct, "triage", "").await;
    assert_eq!(cmp["name"], "triage");
    let order: Vec<i64> = cmp["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![2, 1]);
    let v1 = version(&cmp, 1);
    assert_eq!(v1["runs"], 2, "a repeated link counts once: {v1}");
    assert_eq!(v1["success_rate"], 50.0);
    assert_eq!(v1["failure_rate"], 50.0);
    assert_eq!(v1["avg_duration_ms"], 2000);
    assert_eq!(v1["total_cost"], 0.04);
    assert_eq!(v1["avg_cost_per_run"], 0.02);
    assert_eq!(v1["total_tokens"], 3000);
    assert_eq!(v1["avg_tokens_per_run"], 1500.0);
    assert_eq!(v1["outcomes"], json!({"resolved": 1, "escalated": 1}));
    assert_eq!(v1["first_used_at"], "2024-01-15T10:00:00Z");
    assert_eq!(v1["is_active"], false);
    let p50 = v1["p50_duration_ms"].as_i64().unwrap();
    assert!((1000..=3000).contains(&p50), "{v1}");
    let v2 = version(&cmp, 2);
    assert_eq!(v2["runs"], 1);
    assert_eq!(v2["success_rate"], 100.0);
    assert_eq!(v2["p95_duration_ms"], 2000);
    assert_eq!(v2["is_active"], true);

    // A PATCHed outcome is in the next comparison.
    let r = app
        .client
        .patch(format!("{}/dashboard/traces/{b}", app.api))
        .bearer_auth(&acct.key)
        .json(&json!({"success": true, "outcome": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v1 = version(&app.compare(&acct, "triage", "").await, 1).clone();
    assert_eq!(v1["success_rate"], 100.0);
    assert_eq!(v1["outcomes"], json!({"resolved": 2}));

    // The window bounds the runs' start.
    let after = app
        .compare(&acct, "triage", "?start=2024-01-16T00:00:00Z")
        .await;
    assert_eq!(version(&after, 1)["runs"], 0);
    assert_eq!(version(&after, 1)["success_rate"], Value::Null);
    assert_eq!(after["start"], "2024-01-16T00:00:00Z");
    let within = app
        .compare(
            &acct,
            "triage",
            "?start=2024-01-15T00:00:00Z&end=2024-01-15T23:59:59Z",
        )
        .await;
    assert_eq!(version(&within, 1)["runs"], 2);
    for q in [
        "?start=yesterday",
        "?start=2024-01-16T00:00:00Z&end=2024-01-15T00:00:00Z",
    ] {
        let (status, err) = app
            .prompt_call(&acct, "GET", &format!("/triage/compare{q}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {err}");
    }

    // 404s: an unknown version, a trace or span the organization does not
    // have; 400s naming the field.
    for (body, what) in [
        (link(a, 3), "version"),
        (link(Uuid::new_v4(), 1), "Trace"),
        (
            json!({"prompt_name": "nope", "prompt_version": 1, "trace_id": a}),
            "version",
        ),
        (
            json!({"prompt_name": "triage", "prompt_version": 1, "trace_id": a, "span_id": Uuid::new_v4()}),
            "Span",
        ),
    ] {
        let (status, err) = app.link(&acct, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
        assert!(err["detail"].as_str().unwrap().contains(what), "{err}");
    }
    for (body, field) in [
        (json!({"prompt_version": 1, "trace_id": a}), "prompt_name"),
        (
            json!({"prompt_name": "triage", "trace_id": a}),
            "prompt_version",
        ),
        (
            json!({"prompt_name": "triage", "prompt_version": 1}),
            "trace_id",
        ),
        (
            json!({"prompt_name": "triage", "prompt_version": 1, "trace_id": "x"}),
            "trace_id",
        ),
        (
            json!({"prompt_name": "triage", "prompt_version": -1, "trace_id": a}),
            "prompt_version",
        ),
        (
            json!({"prompt_name": "triage", "prompt_version": 1, "trace_id": a, "span_id": "x"}),
            "span_id",
        ),
    ] {
        let (status, err) = app.link(&acct, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {err}");
        assert_eq!(err["errors"][0]["field"], field, "{err}");
    }
    // The refused links changed nothing.
    let v1_again = version(&app.compare(&acct, "triage", "").await, 1).clone();
    assert_eq!(v1_again, v1);
}

#[tokio::test]
async fn another_organizations_prompts_and_traces_are_404s() {
    let app = spawn_app().await;
    let (owner, other) = (app.account().await, app.account().await);
    let agent = format!("iso-bot-{}", Uuid::new_v4().simple());
    app.create_prompt(
        &owner,
        json!({"name": "secret-prompt", "template_text": "mine"}),
    )
    .await;
    let (trace, body) = run(&agent, true, "ok", 10, "0.001000");
    app.stored_run(&owner, &body, trace).await;
    let (status, _) = app
        .link(
            &owner,
            json!({"prompt_name": "secret-prompt", "prompt_version": 1, "trace_id": trace}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    for (method, path) in [
        ("GET", "/secret-prompt"),
        ("GET", "/secret-prompt?version=1"),
        ("GET", "/secret-prompt/versions"),
        ("GET", "/secret-prompt/compare"),
        ("POST", "/secret-prompt/versions/1/activate"),
    ] {
        let (status, body) = app.prompt_call(&other, method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (_, list) = app.prompt_call(&other, "GET", "/", None).await;
    assert_eq!(list, json!([]));
    // The other organization's trace, with a version of its own: 404.
    app.create_prompt(
        &other,
        json!({"name": "secret-prompt", "template_text": "theirs"}),
    )
    .await;
    let (status, body) = app
        .link(
            &other,
            json!({"prompt_name": "secret-prompt", "prompt_version": 1, "trace_id": trace}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Names are per organization: each sees its own version and runs.
    let theirs = app.compare(&other, "secret-prompt", "").await;
    assert_eq!(version(&theirs, 1)["runs"], 0);
    let mine = app.compare(&owner, "secret-prompt", "").await;
    assert_eq!(version(&mine, 1)["runs"], 1);
    let (_, fetched) = app.prompt_call(&owner, "GET", "/secret-prompt", None).await;
    assert_eq!(fetched["template_text"], "mine");
}

/// Poll a comparison until `pred` holds (links from spans arrive through
/// the writer).
async fn wait_compare(
    app: &TestApp,
    acct: &Account,
    name: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let cmp = app.compare(acct, name, "").await;
        if pred(&cmp) {
            return cmp;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {cmp}");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn batch_span_fields_link_runs_as_the_usage_route_does_even_before_the_version_exists() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let agent = format!("span-linked-{}", Uuid::new_v4().simple());
    app.create_prompt(&acct, json!({"name": "writer", "template_text": "one"}))
        .await;

    let mut runs = Vec::new();
    for (success, outcome, v) in [(true, "done", 1), (false, "failed", 1), (true, "done", 2)] {
        let (trace, mut body) = run(&agent, success, outcome, 1500, "0.005000");
        for span in body["traces"][0]["spans"].as_array_mut().unwrap() {
            span["prompt_name"] = json!("writer");
            span["prompt_version"] = json!(v);
        }
        app.stored_run(&acct, &body, trace).await;
        runs.push((trace, v));
    }
    // Version 2 is not registered yet: its run is not compared.
    let cmp = wait_compare(&app, &acct, "writer", |c| version(c, 1)["runs"] == 2).await;
    assert_eq!(cmp["versions"].as_array().unwrap().len(), 1);
    assert_eq!(version(&cmp, 1)["success_rate"], 50.0);
    // Registered later, the kept link counts.
    app.create_prompt(
        &acct,
        json!({"name": "writer", "version": 2, "template_text": "two"}),
    )
    .await;
    let from_spans = wait_compare(&app, &acct, "writer", |c| version(c, 2)["runs"] == 1).await;
    assert_eq!(version(&from_spans, 1)["runs"], 2);
    // The usage route for the same runs changes nothing: the same links.
    for (trace, v) in &runs {
        let (status, body) = app
            .link(
                &acct,
                json!({"prompt_name": "writer", "prompt_version": v, "trace_id": trace}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(app.compare(&acct, "writer", "").await, from_spans);
    // The span keeps its prompt as attributes.
    let (_, detail) = app
        .get(&acct.key, &format!("/dashboard/traces/{}", runs[0].0))
        .await;
    let text = detail.to_string();
    assert!(text.contains("agentvista.prompt.name"), "{detail}");
    // A span with half a reference is refused, naming the field.
    let (trace, mut body) = run(&agent, true, "x", 1, "0.000001");
    body["traces"][0]["spans"][0]["prompt_name"] = json!("writer");
    let (status, err) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(
        err["errors"][0]["field"],
        "traces[0].spans[0].prompt_version"
    );
    let _ = trace;
}

#[tokio::test]
async fn otlp_spans_from_the_python_sdk_link_by_our_attributes_and_langfuses() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let prompt = format!("otel-{}", Uuid::new_v4().simple());
    app.create_prompt(&acct, json!({"name": prompt, "template_text": "one"}))
        .await;
    app.create_prompt(
        &acct,
        json!({"name": prompt, "version": 2, "template_text": "two"}),
    )
    .await;
    let service = format!("otel-prompts-{}", Uuid::new_v4().simple());
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/clients/otel_prompts.py");
    let (endpoint, key, p) = (app.ingest.clone(), acct.key.clone(), prompt.clone());
    let ids: Value = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(crate::otlp::python())
            .arg(script)
            .arg(&service)
            .arg(&p)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("Authorization=Bearer {key}"),
            )
            .output()
            .expect("running the python client");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap();

    let cmp = wait_compare(&app, &acct, &prompt, |c| {
        version(c, 1)["runs"] == 2 && version(c, 2)["runs"] == 1
    })
    .await;
    let v1 = version(&cmp, 1);
    assert_eq!(v1["success_rate"], 50.0);
    assert_eq!(v1["outcomes"], json!({"resolved": 1, "escalated": 1}));
    assert_eq!(v1["total_tokens"], 240);
    assert_eq!(version(&cmp, 2)["outcomes"], json!({"resolved": 1}));
    // Linking the same runs through the route gives the same comparison.
    for (key, v) in [("v1", 1), ("v2", 2)] {
        for trace in ids[key].as_array().unwrap() {
            let (status, body) = app
                .link(
                    &acct,
                    json!({"prompt_name": prompt, "prompt_version": v, "trace_id": trace}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    assert_eq!(app.compare(&acct, &prompt, "").await, cmp);
}

/// Runs a prompt-rollup pass (waiting for the pass lock other tests'
/// passes may hold).
async fn prompt_rollup(app: &TestApp) {
    loop {
        let pass = query_api::store::prompt_stats::refresh(
            &app.query.0.ch,
            &app.query.0.pg,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
        if pass.is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_rollup_serves_current_days_and_a_change_is_read_raw_until_recomputed() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let agent = format!("rolled-{}", Uuid::new_v4().simple());
    let prompt = "rolled";
    app.create_prompt(&acct, json!({"name": prompt, "template_text": "one"}))
        .await;
    let mut traces = Vec::new();
    for (success, outcome, ms) in [(true, "ok", 100), (false, "bad", 300), (true, "ok", 200)] {
        let (trace, body) = run(&agent, success, outcome, ms, "0.001000");
        app.stored_run(&acct, &body, trace).await;
        traces.push(trace);
    }
    // Links ingested ten minutes ago (a computation counts the links older
    // than its start minus a safety margin for inserts in flight).
    let ch = &app.query.0.ch;
    for trace in &traces[..2] {
        ch.query(
            "INSERT INTO prompt_links (org_id, prompt_name, prompt_version, trace_id, span_id, source, \
               retention_days, version, ingested_at) \
             SELECT toUUID(?), ?, 1, toUUID(?), NULL, 'api', 30, 1, now() - 600",
        )
        .bind(acct.org_id.to_string())
        .bind(prompt)
        .bind(trace.to_string())
        .execute()
        .await
        .unwrap();
    }
    let raw = app.compare(&acct, prompt, "").await;
    assert_eq!(version(&raw, 1)["runs"], 2);
    prompt_rollup(&app).await;
    let cells: u64 = ch
        .query(
            "SELECT sum(runs) FROM prompt_daily FINAL WHERE org_id = toUUID(?) AND prompt_name = ?",
        )
        .bind(acct.org_id.to_string())
        .bind(prompt)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(cells, 2, "the pass computed the day");
    assert_eq!(app.compare(&acct, prompt, "").await, raw, "rolled up = raw");

    // The comparison reads the current cell: a newer computation of the
    // day, planted with 1000 more runs, shows.
    ch.query(
        "INSERT INTO prompt_daily SELECT * REPLACE (computed_at + toIntervalMicrosecond(1) AS computed_at, \
           runs + 1000 AS runs) \
         FROM prompt_daily WHERE org_id = toUUID(?) AND prompt_name = ? AND prompt_version = 1 \
         ORDER BY computed_at DESC LIMIT 1",
    )
    .bind(acct.org_id.to_string())
    .bind(prompt)
    .execute()
    .await
    .unwrap();
    assert_eq!(
        version(&app.compare(&acct, prompt, "").await, 1)["runs"],
        1002
    );
    // A partial day at the window's edge is read raw.
    let edge = app
        .compare(&acct, prompt, "?start=2024-01-15T09:00:00Z")
        .await;
    assert_eq!(version(&edge, 1)["runs"], 2);

    // A new link to a run of that day: the day is read raw, exact.
    let (status, _) = app
        .link(
            &acct,
            json!({"prompt_name": prompt, "prompt_version": 1, "trace_id": traces[2]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let linked = app.compare(&acct, prompt, "").await;
    assert_eq!(version(&linked, 1)["runs"], 3);
    assert_eq!(version(&linked, 1)["success_rate"], 66.7);
    // A PATCHed run: read raw as well.
    let r = app
        .client
        .patch(format!("{}/dashboard/traces/{}", app.api, traces[1]))
        .bearer_auth(&acct.key)
        .json(&json!({"success": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched = app.compare(&acct, prompt, "").await;
    assert_eq!(version(&patched, 1)["success_rate"], 100.0);
    // Recomputed, the rollup agrees with the raw answer.
    prompt_rollup(&app).await;
    assert_eq!(app.compare(&acct, prompt, "").await, patched);
}
