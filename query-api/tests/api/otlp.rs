//! OTLP/HTTP ingestion with the real OpenTelemetry Python SDK and exporters
//! (protobuf, with and without gzip), and with hand-built bodies for the
//! JSON mapping, stitching and refusals. Values are read back from
//! ClickHouse and the query API.

use crate::helpers::{batch, spawn_app, start_router, TestApp};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("AV_OTEL_PYTHON") {
        return p.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join(".stack/otel-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: scripts/test installs it (tests/requirements-otel.txt)",
        p.display()
    );
    p
}

/// How the Python client is pointed at AgentVista.
#[derive(Clone, Copy)]
enum Endpoint {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporters append `/v1/<signal>`).
    Base,
    /// Each exporter built with `endpoint=` (posted to verbatim), as the
    /// contract's Python example does.
    Explicit,
}

/// Run the Python client against `endpoint`; returns the ids it printed.
fn run_python(endpoint: &str, how: Endpoint, key: &str, service: &str, compression: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients/otel_python.py");
    let mut cmd = std::process::Command::new(python());
    match how {
        Endpoint::Base => cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        Endpoint::Explicit => cmd
            .env("AV_EXPLICIT_ENDPOINT", endpoint)
            .env("AV_API_KEY", key),
    };
    let out = cmd
        .arg(script)
        .arg(service)
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("Authorization=Bearer {key}"),
        )
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
        .output()
        .expect("running the python client");
    assert!(
        out.status.success(),
        "python client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

async fn query_json(app: &TestApp, sql: &str, binds: &[String]) -> Vec<Value> {
    let mut q = app.query.0.ch.query(&format!("{sql} FORMAT JSONEachRow"));
    for b in binds {
        q = q.bind(b.as_str());
    }
    let mut cursor = q.fetch_bytes("JSONEachRow").unwrap();
    let bytes = cursor.collect().await.unwrap();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Poll a query until it returns at least `n` rows.
async fn wait_rows(app: &TestApp, sql: &str, binds: &[String], n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = query_json(app, sql, binds).await;
        if rows.len() >= n || Instant::now() > deadline {
            assert!(
                rows.len() >= n,
                "timed out waiting for {n} rows of {sql}: {rows:?}"
            );
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn w3c_to_uuid(hex32: &str) -> String {
    Uuid::parse_str(hex32).unwrap().to_string()
}

/// Where the Python client sends: straight to the gateway, or through the
/// router (nginx with the deployment's configuration) to the API's URLs.
#[derive(Clone, Copy)]
enum Via {
    Gateway(&'static str),
    Router(&'static str),
}

async fn check_python_export(compression: &str, via: Via, how: Endpoint) {
    let app = spawn_app().await;
    let acct = app.account().await;
    let service = format!("py-agent-{compression}");
    let router = matches!(via, Via::Router(_)).then(|| start_router(&app));
    let endpoint = match via {
        Via::Gateway(suffix) => format!("{}{suffix}", app.ingest),
        Via::Router(suffix) => format!("{}{suffix}", router.as_ref().unwrap().url),
    };
    let ids = tokio::task::spawn_blocking({
        let (endpoint, key, service, compression) = (
            endpoint.clone(),
            acct.key.clone(),
            service.clone(),
            compression.to_string(),
        );
        move || run_python(&endpoint, how, &key, &service, &compression)
    })
    .await
    .unwrap();
    let org = acct.org_id.to_string();
    let trace_id = w3c_to_uuid(ids["trace_id"].as_str().unwrap());

    // Spans: the tree, the GenAI fields, computed cost, attributes, events.
    let spans = wait_rows(
        &app,
        "SELECT name, span_type, kind, status, toString(parent_span_id) AS parent, toString(span_id) AS id, \
         model, provider, input_tokens, output_tokens, total_tokens, toString(cost) AS cost, cost_computed, \
         agent_name, attributes, resource_attributes, events, error, source, scope \
         FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) ORDER BY started_at",
        &[org.clone(), trace_id.clone()],
        3,
    )
    .await;
    assert_eq!(spans.len(), 3);
    let by_name = |n: &str| spans.iter().find(|s| s["name"] == n).unwrap().clone();
    let root = by_name("invoke_agent planner");
    let llm = by_name("chat gpt-4o-mini");
    let tool = by_name("execute_tool search");
    let root_id = format!(
        "00000000-0000-0000-{}-{}",
        &ids["root_span_id"].as_str().unwrap()[..4],
        &ids["root_span_id"].as_str().unwrap()[4..]
    );
    assert_eq!(root["id"], root_id.as_str());
    assert_eq!(root["span_type"], "agent");
    assert!(root["parent"].is_null(), "{root}");
    assert_eq!(llm["parent"], root_id.as_str());
    assert_eq!(tool["parent"], root_id.as_str());
    assert_eq!(llm["span_type"], "llm");
    assert_eq!(llm["kind"], "internal");
    assert_eq!(llm["model"], "gpt-4o-mini");
    assert_eq!(llm["provider"], "openai");
    assert_eq!(
        (
            llm["input_tokens"].clone(),
            llm["output_tokens"].clone(),
            llm["total_tokens"].clone()
        ),
        (json!(1000), json!(200), json!(1200))
    );
    // gpt-4o-mini: 1000 * $0.15/M + 200 * $0.60/M = 0.00015 + 0.00012
    assert_eq!(llm["cost"], "0.00027");
    assert_eq!(llm["cost_computed"], true);
    assert_eq!(llm["attributes"]["custom.flag"], "true");
    assert_eq!(llm["resource_attributes"]["deployment.environment"], "test");
    assert_eq!(llm["agent_name"], service.as_str());
    assert_eq!(llm["source"], "otlp");
    assert_eq!(llm["scope"], "agentvista-tests@1.0");
    assert_eq!(tool["span_type"], "tool");
    assert_eq!(tool["status"], "failed");
    assert_eq!(tool["error"], "search backend down");
    let events: Value = serde_json::from_str(tool["events"].as_str().unwrap()).unwrap();
    assert_eq!(events[0]["name"], "exception");
    assert_eq!(events[0]["attributes"]["exception.type"], "ValueError");

    // The run derived from the root span, under the service's agent.
    let agent_id = app.agent_id(&acct.key, &service).await;
    let runs = app
        .wait_for(&acct.key, &format!("/agents/{agent_id}/runs"), |b| {
            b["runs"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["trace_id"] == trace_id.as_str()))
        })
        .await;
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["trace_id"] == trace_id.as_str())
        .unwrap();
    assert_eq!(run["status"], "completed");
    assert_eq!(run["outcome"], "resolved");
    assert_eq!(run["total_tokens"], 1200);
    assert_eq!(run["total_cost_usd"], "0.000270");

    // Metrics: the counter's cumulative value and the histogram's buckets.
    let sums = wait_rows(
        &app,
        "SELECT metric_type, unit, description, value, temporality, is_monotonic, attributes, service_name \
         FROM metric_points FINAL WHERE org_id = toUUID(?) AND metric_name = 'agent.requests'",
        std::slice::from_ref(&org),
        1,
    )
    .await;
    assert_eq!(sums[0]["metric_type"], "sum");
    assert_eq!(sums[0]["value"].as_f64(), Some(5.0));
    assert_eq!(sums[0]["temporality"], "cumulative");
    assert_eq!(sums[0]["is_monotonic"], true);
    assert_eq!(sums[0]["unit"], "1");
    assert_eq!(sums[0]["description"], "Requests handled");
    assert_eq!(sums[0]["attributes"]["route"], "/chat");
    assert_eq!(sums[0]["service_name"], service.as_str());
    let hists = wait_rows(
        &app,
        "SELECT metric_type, count, sum, min, max, bucket_counts, explicit_bounds \
         FROM metric_points FINAL WHERE org_id = toUUID(?) AND metric_name = 'agent.latency'",
        std::slice::from_ref(&org),
        1,
    )
    .await;
    let h = &hists[0];
    assert_eq!(h["metric_type"], "histogram");
    assert_eq!(h["count"].to_string().trim_matches('"'), "4");
    let num = |v: &Value| v.as_f64().unwrap();
    assert_eq!(
        (num(&h["sum"]), num(&h["min"]), num(&h["max"])),
        (750.0, 5.0, 700.0)
    );
    // SDK default bounds 0,5,10,25,50,75,100,250,500,750,1000,...
    let bounds = h["explicit_bounds"].as_array().unwrap();
    let counts: Vec<u64> = h["bucket_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_str()
                .map_or_else(|| c.as_u64().unwrap(), |s| s.parse().unwrap())
        })
        .collect();
    assert_eq!(counts.len(), bounds.len() + 1);
    assert_eq!(counts.iter().sum::<u64>(), 4);
    let bucket_of = |v: f64| {
        bounds
            .iter()
            .position(|b| v <= b.as_f64().unwrap())
            .unwrap_or(bounds.len())
    };
    assert_eq!(counts[bucket_of(5.0)], 1);
    assert_eq!(counts[bucket_of(700.0)], 1);

    // Logs: severity, body, the link to the trace.
    let logs = wait_rows(
        &app,
        "SELECT severity, severity_number, body, toString(trace_id) AS trace_id, toString(span_id) AS span_id, service_name \
         FROM logs FINAL WHERE org_id = toUUID(?) ORDER BY timestamp",
        std::slice::from_ref(&org),
        2,
    )
    .await;
    let error = logs.iter().find(|l| l["severity"] == "error").unwrap();
    assert_eq!(error["severity_number"], 17);
    assert_eq!(error["body"], "Payment FAILED for order A-17");
    assert_eq!(
        error["trace_id"],
        w3c_to_uuid(ids["log_trace_id"].as_str().unwrap()).as_str()
    );
    assert_eq!(error["service_name"], service.as_str());
    let info = logs.iter().find(|l| l["severity"] == "info").unwrap();
    assert_eq!(info["body"], "warm-up complete");
    assert!(info["trace_id"].is_null());
}

#[tokio::test]
async fn python_sdk_protobuf_gzip_under_the_otlp_path() {
    check_python_export("gzip", Via::Gateway("/api/v1/otlp"), Endpoint::Base).await;
}

#[tokio::test]
async fn python_sdk_protobuf_plain_at_the_base_url() {
    check_python_export("none", Via::Gateway(""), Endpoint::Base).await;
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` set to the API's base URL: the exporters
/// post to `/api/v1/v1/traces|metrics|logs`.
#[tokio::test]
async fn python_sdk_with_the_api_base_url_as_its_endpoint() {
    check_python_export("gzip", Via::Router("/api/v1"), Endpoint::Base).await;
}

/// The contract page's own example: every exporter built with
/// `endpoint="<base>/api/v1"` posts there verbatim (`POST /api/v1`), and
/// the gateway tells the three signals apart by their bodies.
#[tokio::test]
async fn python_sdk_exactly_as_the_contract_page_configures_it() {
    check_python_export("none", Via::Router("/api/v1"), Endpoint::Explicit).await;
}

fn otlp_json_trace(trace_hex: &str, service: &str) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": trace_hex, "spanId": "00f067aa0ba902b7", "parentSpanId": "0000000000000001",
             "name": "SELECT orders", "kind": 3, "startTimeUnixNano": "1705312800200000000",
             "endTimeUnixNano": 1705312800300000000u64,
             "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}},
                            {"key": "db.rows", "value": {"intValue": "12"}}]},
            {"traceId": trace_hex, "spanId": "00f067aa0ba902b8",
             "name": "broken", "startTimeUnixNano": "1705312800250000000"},
            {"traceId": "zz", "spanId": "00f067aa0ba902b9", "name": "bad id"}
        ]}]
    }]})
}

#[tokio::test]
async fn json_spans_stitch_into_an_sdk_trace_and_answer_in_json() {
    let app = spawn_app().await;
    let acct = app.account().await;
    // An SDK run whose root span id is 0000000000000001 in W3C terms.
    let trace = Uuid::new_v4();
    let trace_hex = trace.simple().to_string();
    let (_, mut sdk) = batch("stitched-agent", 1);
    sdk["traces"][0]["trace"]["trace_id"] = json!(trace);
    sdk["traces"][0]["spans"][0]["trace_id"] = json!(trace);
    sdk["traces"][0]["spans"][0]["span_id"] = json!("00000000-0000-0000-0000-000000000001");
    let (status, _) = app.post_batch(&acct.key, &sdk).await;
    assert_eq!(status, StatusCode::OK);

    // The bad id makes the whole JSON body invalid (hex decoding is part of
    // the JSON mapping): 400.
    let r = app
        .client
        .post(format!("{}/api/v1/otlp/v1/traces", app.ingest))
        .bearer_auth(&acct.key)
        .json(&otlp_json_trace(&trace_hex, "orders-db"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("traceId"),
        "{body}"
    );

    // Without it: 200 in JSON with the counts.
    let mut good = otlp_json_trace(&trace_hex, "orders-db");
    good["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .pop();
    let r = app
        .client
        .post(format!("{}/v1/traces", app.ingest))
        .bearer_auth(&acct.key)
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"accepted_traces": 1, "accepted_spans": 2, "rejected_spans": 0})
    );

    let org = acct.org_id.to_string();
    let spans = wait_rows(
        &app,
        "SELECT name, span_type, toString(parent_span_id) AS parent, agent_name, attributes, duration_ms \
         FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) ORDER BY started_at",
        &[org.clone(), trace.to_string()],
        3,
    )
    .await;
    let db = spans.iter().find(|s| s["name"] == "SELECT orders").unwrap();
    assert_eq!(db["span_type"], "db");
    assert_eq!(db["parent"], "00000000-0000-0000-0000-000000000001");
    assert_eq!(db["agent_name"], "orders-db");
    assert_eq!(db["attributes"]["db.rows"], "12");
    assert_eq!(db["duration_ms"], 100);
    // One trace: the SDK header wins over the run derived from "broken".
    let traces = wait_rows(
        &app,
        "SELECT agent_name FROM traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)",
        &[org, trace.to_string()],
        1,
    )
    .await;
    assert_eq!(traces, vec![json!({"agent_name": "stitched-agent"})]);
}

#[tokio::test]
async fn protobuf_requests_get_protobuf_answers_and_refusals() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let url = format!("{}/v1/traces", app.ingest);
    let req = ExportTraceServiceRequest {
        resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
            scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                spans: vec![
                    opentelemetry_proto::tonic::trace::v1::Span {
                        trace_id: Uuid::new_v4().as_bytes().to_vec(),
                        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                        name: "ok".into(),
                        start_time_unix_nano: 1_705_312_800_000_000_000,
                        end_time_unix_nano: 1_705_312_801_000_000_000,
                        ..Default::default()
                    },
                    opentelemetry_proto::tonic::trace::v1::Span {
                        trace_id: vec![0; 16],
                        span_id: vec![1; 8],
                        name: "zero trace id".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = app
        .client
        .post(&url)
        .bearer_auth(&acct.key)
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let resp = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    let partial = resp.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );

    // Unknown key: 401, as a google.rpc.Status in protobuf.
    let r = app
        .client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let status = ingest_gateway::otlp::RpcStatus::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 16);

    // Garbage protobuf: 400. Other content types: 415 in JSON.
    let r = app
        .client
        .post(&url)
        .bearer_auth(&acct.key)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(&url)
        .bearer_auth(&acct.key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("application/x-protobuf"));

    // A gzip bomb: refused with 413, naming the decompressed limit.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &vec![0u8; 64 * 1024 * 1024]).unwrap();
    let bomb = enc.finish().unwrap();
    let r = app
        .client
        .post(&url)
        .bearer_auth(&acct.key)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let status = ingest_gateway::otlp::RpcStatus::decode(r.bytes().await.unwrap()).unwrap();
    assert!(
        status.message.contains("decompressed size"),
        "{}",
        status.message
    );

    // A missing resourceLogs in JSON: 400 naming it.
    let r = app
        .client
        .post(format!("{}/v1/logs", app.ingest))
        .bearer_auth(&acct.key)
        .json(&json!({"resourceSpans": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "resourceLogs: is required"
    );
}

#[tokio::test]
async fn otlp_spans_count_against_the_quota() {
    let app = spawn_app().await;
    let acct = app.account().await;
    query_api::store::accounts::set_plan(
        &app.query.0.pg,
        &app.query.0.redis,
        acct.org_id,
        agentvista_shared::plan::Plan::Free,
        Some(2),
    )
    .await
    .unwrap();
    let app = spawn_app().await;
    let mut good = otlp_json_trace(&Uuid::new_v4().simple().to_string(), "quota-svc");
    good["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .pop();
    let post = |body: Value| {
        app.client
            .post(format!("{}/v1/traces", app.ingest))
            .bearer_auth(&acct.key)
            .json(&body)
            .send()
    };
    assert_eq!(post(good.clone()).await.unwrap().status(), StatusCode::OK);
    let r = post(good).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Monthly event limit exceeded."})
    );
    // Logs are not events.
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1705312800000000000", "severityNumber": 9, "body": {"stringValue": "still accepted"}}
    ]}]}]});
    let r = app
        .client
        .post(format!("{}/v1/logs", app.ingest))
        .bearer_auth(&acct.key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted_log_records": 1, "rejected_log_records": 0})
    );
}

/// Run the JavaScript client against `endpoint`; returns the ids it printed.
fn run_js(endpoint: &str, key: &str, service: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients/js");
    assert!(
        dir.join("node_modules").exists(),
        "{}/node_modules is missing: scripts/test installs it (npm ci)",
        dir.display()
    );
    let out = std::process::Command::new("node")
        .arg(dir.join("otel_js.mjs"))
        .arg(service)
        .current_dir(&dir)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("Authorization=Bearer {key}"),
        )
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "js client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("client prints JSON")
}

#[tokio::test]
async fn javascript_sdk_json_exporters() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let service = "js-agent";
    let endpoint = format!("{}/api/v1/otlp", app.ingest);
    let ids = tokio::task::spawn_blocking({
        let (endpoint, key) = (endpoint.clone(), acct.key.clone());
        move || run_js(&endpoint, &key, service)
    })
    .await
    .unwrap();
    let org = acct.org_id.to_string();
    let trace_id = w3c_to_uuid(ids["trace_id"].as_str().unwrap());
    let spans = wait_rows(
        &app,
        "SELECT name, span_type, status, toString(parent_span_id) AS parent, model, provider, \
         input_tokens, output_tokens, total_tokens, toString(cost) AS cost, cost_computed, error, events \
         FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) ORDER BY started_at",
        &[org.clone(), trace_id.clone()],
        3,
    )
    .await;
    let root_hex = ids["root_span_id"].as_str().unwrap();
    let root_id = format!("00000000-0000-0000-{}-{}", &root_hex[..4], &root_hex[4..]);
    let llm = spans.iter().find(|s| s["name"] == "chat claude").unwrap();
    assert_eq!(llm["span_type"], "llm");
    assert_eq!(llm["parent"], root_id.as_str());
    assert_eq!(llm["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(llm["provider"], "anthropic");
    assert_eq!(
        (
            llm["input_tokens"].clone(),
            llm["output_tokens"].clone(),
            llm["total_tokens"].clone()
        ),
        (json!(2000), json!(100), json!(2100))
    );
    // The client's cost wins over the price table.
    assert_eq!(llm["cost"], "0.123456");
    assert_eq!(llm["cost_computed"], false);
    let tool = spans
        .iter()
        .find(|s| s["name"] == "execute_tool fetch")
        .unwrap();
    assert_eq!(tool["span_type"], "tool");
    assert_eq!(tool["status"], "failed");
    assert_eq!(tool["error"], "fetch timed out");
    let agent = app.agent_id(&acct.key, service).await;
    app.wait_for(&acct.key, &format!("/agents/{agent}/runs"), |b| {
        b["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["trace_id"] == trace_id.as_str()))
    })
    .await;

    let sums = wait_rows(
        &app,
        "SELECT metric_type, value, is_monotonic FROM metric_points FINAL \
         WHERE org_id = toUUID(?) AND metric_name = 'js.requests'",
        std::slice::from_ref(&org),
        1,
    )
    .await;
    assert_eq!(sums[0]["metric_type"], "sum");
    assert_eq!(sums[0]["value"].as_f64(), Some(7.0));
    let hists = wait_rows(
        &app,
        "SELECT metric_type, count, sum FROM metric_points FINAL \
         WHERE org_id = toUUID(?) AND metric_name = 'js.latency'",
        std::slice::from_ref(&org),
        1,
    )
    .await;
    assert_eq!(hists[0]["metric_type"], "histogram");
    assert_eq!(hists[0]["count"].to_string().trim_matches('"'), "3");
    assert_eq!(hists[0]["sum"].as_f64(), Some(303.0));

    let logs = wait_rows(
        &app,
        "SELECT severity, body, toString(trace_id) AS trace_id, attributes FROM logs FINAL \
         WHERE org_id = toUUID(?) ORDER BY severity_number",
        std::slice::from_ref(&org),
        2,
    )
    .await;
    assert_eq!(logs[0]["severity"], "warn");
    assert_eq!(logs[0]["body"], "Disk almost FULL on node-3");
    assert_eq!(logs[0]["trace_id"], trace_id.as_str());
    assert_eq!(logs[0]["attributes"]["node"], "node-3");
    assert_eq!(logs[1]["severity"], "fatal");
    let body: Value = serde_json::from_str(logs[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"event": "crash", "code": 42}));
}

#[tokio::test]
async fn an_organizations_price_override_is_used_for_computed_costs() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let other = app.account().await;
    query_api::store::accounts::set_price(
        &app.query.0.pg,
        &app.query.0.redis,
        acct.org_id,
        "gpt-4o-2024-08-06",
        "1",
        "2",
        "0.5",
    )
    .await
    .unwrap();
    let span = |trace: &str| {
        json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "priced"}}]},
            "scopeSpans": [{"spans": [{"traceId": trace, "spanId": "00f067aa0ba902b7", "name": "chat",
                "startTimeUnixNano": "1705312800000000000", "endTimeUnixNano": "1705312801000000000",
                "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                               {"key": "gen_ai.usage.input_tokens", "value": {"intValue": 1000000}},
                               {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "500000"}}]}]}]}]})
    };
    for (a, trace) in [(&acct, Uuid::new_v4()), (&other, Uuid::new_v4())] {
        let r = app
            .client
            .post(format!("{}/v1/traces", app.ingest))
            .bearer_auth(&a.key)
            .json(&span(&trace.simple().to_string()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let rows = wait_rows(
            &app,
            "SELECT toString(cost) AS cost FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)",
            &[a.org_id.to_string(), trace.to_string()],
            1,
        )
        .await;
        // Override: 1M * $1/M + 0.5M * $2/M = $2; shipped gpt-4o: $2.50 + $5.
        let want = if a.org_id == acct.org_id { "2" } else { "7.5" };
        assert_eq!(rows[0]["cost"], want);
    }
}

/// A GenAI span's message text is stored once (in `input` / `output`, the
/// attribute replaced by a marker), and every read shows it as sent: the
/// span's attributes, its input and output, and the `attribute=` filter.
#[tokio::test]
async fn message_text_is_stored_once_and_read_back_under_its_attribute() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let trace = Uuid::new_v4();
    let now_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let input = r#"[{"role":"user","parts":[{"type":"text","content":"Qualify lead 42"}]}]"#;
    let output = r#"[{"role":"assistant","parts":[{"type":"text","content":"Qualified."}]}]"#;
    let s = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [s("service.name", "message-agent")]},
        "scopeSpans": [{"scope": {"name": "genai"}, "spans": [{
            "traceId": trace.simple().to_string(), "spanId": "1111111111111111",
            "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": (now_ns - 1_000_000_000).to_string(),
            "endTimeUnixNano": now_ns.to_string(),
            "attributes": [
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.input.messages", input),
                s("gen_ai.output.messages", output),
                s("app.note", "kept"),
            ]}]}]
    }]});
    let r = app
        .client
        .post(format!("{}/api/v1/otlp/v1/traces", app.ingest))
        .bearer_auth(&acct.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // Stored once: the text in its columns, a marker in the map.
    let rows = wait_rows(
        &app,
        "SELECT input, output, attributes FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)",
        &[acct.org_id.to_string(), trace.to_string()],
        1,
    )
    .await;
    assert_eq!(rows[0]["input"], input);
    assert_eq!(rows[0]["output"], output);
    assert_eq!(
        rows[0]["attributes"],
        json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "agentvista.promoted.input": "gen_ai.input.messages",
            "agentvista.promoted.output": "gen_ai.output.messages",
            "app.note": "kept",
        })
    );

    // Read back as sent.
    let detail = app
        .wait_for(&acct.key, &format!("/dashboard/traces/{trace}"), |b| {
            b["span_count"] == 1
        })
        .await;
    let span = &detail["spans"][0];
    assert_eq!(span["input"], input);
    assert_eq!(span["output"], output);
    assert_eq!(
        span["attributes"],
        json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": input,
            "gen_ai.output.messages": output,
            "app.note": "kept",
        })
    );

    // The attribute filter still finds the run by the promoted attribute,
    // and not by a text it does not have.
    let find = |value: &str| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("attribute", &format!("gen_ai.output.messages={value}"))
            .finish();
        format!("/dashboard/traces?{q}")
    };
    let (status, list) = app.get(&acct.key, &find(output)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [trace.to_string().as_str()]);
    let (_, none) = app.get(&acct.key, &find("something else")).await;
    assert_eq!(none["traces"], json!([]));
}
