//! `/dashboard/*`: traces (list, detail, outcome update, comparison), logs
//! search and metrics, over data sent through the real ingestion endpoints.

use crate::helpers::{batch, spawn_app, Account, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A run of `agent` with a root agent span, an LLM child and a tool
/// grandchild; returns its trace id.
async fn seed_tree(
    app: &TestApp,
    acct: &Account,
    agent: &str,
    started: &str,
    duration_ms: i64,
    success: Value,
) -> Uuid {
    let trace = Uuid::new_v4();
    let (root, llm, tool) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let body = json!({"traces": [{
        "trace": {"trace_id": trace, "agent": agent, "status": "completed", "started_at": started,
                  "duration_ms": duration_ms, "success": success, "outcome": "qualified"},
        "spans": [
            {"span_id": root, "type": "agent", "name": "plan", "started_at": started, "duration_ms": duration_ms},
            {"span_id": llm, "parent_span_id": root, "type": "llm", "name": "classify lead", "started_at": started,
             "model": "gpt-4o", "input_tokens": 100, "output_tokens": 20, "cost_usd": "0.001000",
             "attributes": {"customer.tier": "gold"}},
            {"span_id": tool, "parent_span_id": llm, "type": "tool", "name": "crm lookup", "started_at": started,
             "total_tokens": 5, "cost_usd": "0.000500"}
        ]
    }]});
    let (status, resp) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    trace
}

/// The first answer of `path` that counts `n` and lists them: the count
/// and the page are two queries run at once, so an insert landing between
/// them can give a count of `n` beside a page that does not show them yet
/// (more likely since an export's records without a trace spread over
/// several Kafka messages, each its own insert).
async fn wait_total(app: &TestApp, acct: &Account, path: &str, n: u64) -> Value {
    app.wait_for(&acct.key, path, |b| {
        b["total"] == n
            && b.as_object().is_some_and(|o| {
                o.values()
                    .any(|v| v.as_array().is_some_and(|a| a.len() as u64 == n))
            })
    })
    .await
}

#[tokio::test]
async fn trace_detail_is_a_tree_with_rollups_and_logs() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let trace = seed_tree(
        &app,
        &acct,
        "tree-agent",
        "2024-03-01T10:00:00Z",
        900,
        json!(true),
    )
    .await;
    // A log record linked to the trace, over OTLP.
    let logs = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tree-agent"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1709287200500000000", "severityNumber": 17,
            "body": {"stringValue": "CRM lookup slow"}, "traceId": trace.simple().to_string()}]}]}]});
    let r = app
        .client
        .post(format!("{}/v1/logs", app.ingest))
        .bearer_auth(&acct.key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let path = format!("/dashboard/traces/{trace}");
    let d = app
        .wait_for(&acct.key, &path, |b| {
            b["span_count"] == 3
                && b["trace"]["duration_ms"] == 900
                && b["logs"].as_array().is_some_and(|l| !l.is_empty())
        })
        .await;
    assert_eq!(d["trace"]["agent_name"], "tree-agent");
    assert_eq!(d["trace"]["duration_ms"], 900);
    let spans = d["spans"].as_array().unwrap();
    let names: Vec<_> = spans
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["depth"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("plan", 0), ("classify lead", 1), ("crm lookup", 2)]
    );
    assert_eq!(spans[0]["children"], json!([spans[1]["span_id"]]));
    // Roll-ups: 120 + 5 tokens, $0.0015 under the root.
    assert_eq!(spans[0]["subtree_tokens"], 125);
    assert_eq!(spans[0]["subtree_cost_usd"], "0.001500");
    assert_eq!(spans[1]["subtree_cost_usd"], "0.001500");
    assert_eq!(spans[1]["attributes"]["customer.tier"], "gold");
    assert_eq!(d["logs"][0]["body"], "CRM lookup slow");
    assert_eq!(d["logs"][0]["severity"], "error");

    // The way from a log to its trace: search by trace id.
    let (status, found) = app
        .get(
            &acct.key,
            &format!("/dashboard/logs/search?trace_id={trace}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["logs"][0]["trace_id"], trace.to_string());

    // Another organization sees nothing.
    let other = app.account().await;
    let (status, body) = app.get(&other.key, &path).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"detail": "Trace not found."}))
    );
    let r = app
        .client
        .patch(format!("{}{path}", app.api))
        .bearer_auth(&other.key)
        .json(&json!({"success": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn trace_list_filters_and_pages_without_gaps() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let mut traces = Vec::new();
    for i in 0..7 {
        let started = format!("2024-03-0{}T10:00:00Z", i + 1);
        let success = if i % 2 == 0 {
            json!(true)
        } else {
            json!(false)
        };
        let agent = if i < 5 { "list-a" } else { "list-b" };
        traces.push(seed_tree(&app, &acct, agent, &started, 100 * (i + 1), success).await);
    }
    let all = wait_total(&app, &acct, "/dashboard/traces", 7).await;
    // Newest first.
    assert_eq!(all["traces"][0]["trace_id"], traces[6].to_string());
    // Pages of 3 by cursor: every trace exactly once, in order.
    let mut seen = Vec::new();
    let mut path = "/dashboard/traces?page_size=3".to_string();
    loop {
        let (status, page) = app.get(&acct.key, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["traces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["trace_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/dashboard/traces?page_size=3&cursor={c}"),
            None => break,
        }
    }
    let want: Vec<String> = traces.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(seen, want);

    for (query, n) in [
        ("agent=list-b", 2),
        ("success=true", 4),
        ("success=false", 3),
        ("outcome=qualified", 7),
        ("status=failed", 0),
        ("start=2024-03-03T00:00:00Z&end=2024-03-05T23:59:59Z", 3),
        ("min_duration_ms=300&max_duration_ms=500", 3),
        ("model=gpt-4o", 7),
        ("model=claude", 0),
        ("span_type=tool", 7),
        // Model and span type must hold for the same span: the LLM span is
        // the gpt-4o one, the tool span has no model.
        ("model=gpt-4o&span_type=llm", 7),
        ("model=gpt-4o&span_type=tool", 0),
        ("span_type=tool&q=crm", 7),
        ("q=CRM%20LOOKUP", 7),
        ("q=crm%20nothing", 0),
        ("attribute=customer.tier%3Dgold", 7),
        ("attribute=customer.tier%3Dsilver", 0),
    ] {
        let (status, body) = app
            .get(&acct.key, &format!("/dashboard/traces?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["total"], n, "{query}");
        assert_eq!(
            body["traces"].as_array().unwrap().len(),
            n as usize,
            "{query}"
        );
    }
    let (_, by_duration) = app
        .get(
            &acct.key,
            "/dashboard/traces?sort=duration_ms&order=asc&page_size=2",
        )
        .await;
    assert_eq!(by_duration["traces"][0]["duration_ms"], 100);
    assert_eq!(by_duration["traces"][1]["duration_ms"], 200);

    for (query, field) in [
        ("status=done", "status"),
        ("success=maybe", "success"),
        ("start=yesterday", "start"),
        ("page_size=0", "page_size"),
        ("sort=name", "sort"),
        ("span_type=robot", "span_type"),
        ("agent_id=nope", "agent_id"),
        ("cursor=abc", "cursor"),
        ("min_duration_ms=-1", "min_duration_ms"),
    ] {
        let (status, body) = app
            .get(&acct.key, &format!("/dashboard/traces?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn outcome_updates_show_in_every_read_and_in_stats() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let trace = seed_tree(
        &app,
        &acct,
        "patch-agent",
        "2024-03-01T10:00:00Z",
        500,
        json!(true),
    )
    .await;
    let agent = app.agent_id(&acct.key, "patch-agent").await;
    wait_total(&app, &acct, "/dashboard/traces", 1).await;
    let url = format!("{}/dashboard/traces/{trace}", app.api);
    let read_only = app.create_key(&acct.token, &["read"]).await;
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&read_only)
        .json(&json!({"success": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&acct.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&acct.key)
        .json(&json!({"success": false, "outcome": "disqualified"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["success"].clone(), body["outcome"].clone()),
        (json!(false), json!("disqualified"))
    );
    let (_, d) = app
        .get(&acct.key, &format!("/dashboard/traces/{trace}"))
        .await;
    assert_eq!(d["trace"]["outcome"], "disqualified");
    assert_eq!(d["trace"]["duration_ms"], 500);
    let (_, list) = app.get(&acct.key, "/dashboard/traces?success=false").await;
    assert_eq!(list["total"], 1);
    let (_, detail) = app.get(&acct.key, &format!("/agents/{agent}")).await;
    assert_eq!(detail["success_rate"], 0.0);
    assert_eq!(detail["outcomes"], json!({"disqualified": 1}));
    // Only the outcome: success stays.
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&acct.token)
        .json(&json!({"outcome": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["success"].clone(), body["outcome"].clone()),
        (json!(false), Value::Null)
    );
}

#[tokio::test]
async fn agents_compare_over_a_window() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let today = time::OffsetDateTime::now_utc().date();
    let at = |days_ago: i64| format!("{}T12:00:00Z", today - time::Duration::days(days_ago));
    // Agent a: durations 100..=1000, 10 runs, 7 successes; b: 2 runs.
    for i in 0..10 {
        let (_, mut b) = batch("cmp-a", 1);
        let t = &mut b["traces"][0]["trace"];
        t["started_at"] = json!(at(i % 3));
        t["ended_at"] = Value::Null;
        t["duration_ms"] = json!(100 * (i + 1));
        t["success"] = json!(i < 7);
        t["outcome"] = json!(if i < 7 { "won" } else { "lost" });
        assert_eq!(app.post_batch(&acct.key, &b).await.0, StatusCode::OK);
    }
    for i in 0..2 {
        let (_, mut b) = batch("cmp-b", 1);
        b["traces"][0]["trace"]["started_at"] = json!(at(1));
        b["traces"][0]["trace"]["ended_at"] = Value::Null;
        b["traces"][0]["trace"]["duration_ms"] = json!(50 * (i + 1));
        assert_eq!(app.post_batch(&acct.key, &b).await.0, StatusCode::OK);
    }
    // An old run outside a 7-day window.
    let (_, mut old) = batch("cmp-a", 1);
    old["traces"][0]["trace"]["started_at"] = json!(at(20));
    old["traces"][0]["trace"]["ended_at"] = Value::Null;
    assert_eq!(app.post_batch(&acct.key, &old).await.0, StatusCode::OK);
    let a = app.agent_id(&acct.key, "cmp-a").await;
    let b = app.agent_id(&acct.key, "cmp-b").await;
    wait_total(&app, &acct, "/dashboard/traces", 13).await;
    let (status, cmp) = app
        .get(
            &acct.key,
            &format!("/dashboard/traces/compare?agent_ids={a},{b}&days=7"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cmp}");
    let ca = &cmp["agents"][0];
    assert_eq!(ca["agent_name"], "cmp-a");
    assert_eq!(ca["runs"], 10);
    assert_eq!(ca["success_rate"], 70.0);
    assert_eq!(ca["failure_rate"], 30.0);
    let p50 = ca["p50_duration_ms"].as_i64().unwrap();
    assert!((500..=600).contains(&p50), "p50 {p50}");
    let p95 = ca["p95_duration_ms"].as_i64().unwrap();
    assert!((900..=1000).contains(&p95), "p95 {p95}");
    assert_eq!(ca["total_cost"], 0.045);
    assert_eq!(ca["total_tokens"], 15000);
    assert_eq!(ca["outcomes"], json!({"won": 7, "lost": 3}));
    // `daily` is dense, as stats' days: all 7 days, those without runs
    // with 0 runs and no cost (null, as every money total without a cost).
    let daily = ca["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 7, "{cmp}");
    assert_eq!(
        daily
            .iter()
            .map(|d| d["runs"].as_u64().unwrap())
            .sum::<u64>(),
        10
    );
    assert_eq!(daily.iter().filter(|d| d["runs"] != 0).count(), 3, "{cmp}");
    for d in daily.iter().filter(|d| d["runs"] == 0) {
        assert_eq!(d["total_cost"], Value::Null, "{d}");
        assert_eq!(d["success_rate"], Value::Null, "{d}");
    }
    let cb = &cmp["agents"][1];
    assert_eq!(cb["runs"], 2);
    assert_eq!(cb["p50_duration_ms"], 75);

    let (status, _) = app
        .get(
            &acct.key,
            &format!("/dashboard/traces/compare?agent_ids={a}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let other = app.account().await;
    let (status, _) = app
        .get(
            &other.key,
            &format!("/dashboard/traces/compare?agent_ids={a},{b}"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn log_search_is_full_text_with_exact_filters() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let rec = |ts: &str, sev: i64, body: &str| json!({"timeUnixNano": ts, "severityNumber": sev, "body": {"stringValue": body}});
    let logs = json!({"resourceLogs": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api-gateway"}}]},
         "scopeLogs": [{"logRecords": [
            rec("1705320000000000000", 17, "Connection REFUSED: upstream timeout after 30s"),
            rec("1705320001000000000", 13, "connection pool nearly exhausted"),
            rec("1705320002000000000", 9, "request served"),
         ]}]},
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "worker"}}]},
         "scopeLogs": [{"logRecords": [
            rec("1705320003000000000", 17, "refused connection to db"),
            rec("1705319999000000000", 5, "disk 100% full, ÄRGER"),
         ]}]}
    ]});
    let r = app
        .client
        .post(format!("{}/v1/logs", app.ingest))
        .bearer_auth(&acct.key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let all = wait_total(&app, &acct, "/dashboard/logs/search", 5).await;
    // Newest first.
    assert_eq!(all["logs"][0]["body"], "refused connection to db");
    assert_eq!(all["logs"][0]["timestamp"], "2024-01-15T12:00:03Z");
    for (query, bodies) in [
        (
            "q=connection+refused",
            vec![
                "refused connection to db",
                "Connection REFUSED: upstream timeout after 30s",
            ],
        ),
        (
            "q=CONNECTION",
            vec![
                "refused connection to db",
                "connection pool nearly exhausted",
                "Connection REFUSED: upstream timeout after 30s",
            ],
        ),
        (
            "q=connection&severity=error&service_name=api-gateway",
            vec!["Connection REFUSED: upstream timeout after 30s"],
        ),
        (
            "start=2024-01-15T12:00:01Z&end=2024-01-15T12:00:02Z",
            vec!["request served", "connection pool nearly exhausted"],
        ),
        ("severity=warn", vec!["connection pool nearly exhausted"]),
        ("limit=1&offset=1", vec!["request served"]),
        // Terms are literal (`%` and `_` are not wildcards) and
        // case-insensitive beyond ASCII.
        ("q=100%25", vec!["disk 100% full, ÄRGER"]),
        ("q=1_0", vec![]),
        ("q=%25+full", vec!["disk 100% full, ÄRGER"]),
        ("q=ärger", vec!["disk 100% full, ÄRGER"]),
    ] {
        let (status, body) = app
            .get(&acct.key, &format!("/dashboard/logs/search?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let got: Vec<&str> = body["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["body"].as_str().unwrap())
            .collect();
        assert_eq!(got, bodies, "{query}");
    }
    let (_, paged) = app
        .get(&acct.key, "/dashboard/logs/search?limit=1&offset=1")
        .await;
    assert_eq!(paged["total"], 5);
    for (query, field) in [
        ("severity=loud", "severity"),
        ("trace_id=x", "trace_id"),
        ("limit=0", "limit"),
        ("start=noon", "start"),
    ] {
        let (status, body) = app
            .get(&acct.key, &format!("/dashboard/logs/search?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let other = app.account().await;
    let (_, none) = app.get(&other.key, "/dashboard/logs/search").await;
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn metric_streams_and_points() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let point = |t: &str, v: f64, route: &str| json!({"timeUnixNano": t, "asDouble": v, "attributes": [{"key": "route", "value": {"stringValue": route}}]});
    let body = json!({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
    "scopeMetrics": [{"metrics": [
        {"name": "z.cpu", "unit": "1", "description": "CPU", "gauge": {"dataPoints": [
            point("1705320000000000000", 0.5, "/a"), point("1705320030000000000", 0.7, "/a"),
            point("1705320060000000000", 0.9, "/b"), point("1705320090000000000", 0.1, "/b")]}},
        {"name": "a.latency", "unit": "ms", "histogram": {"aggregationTemporality": 1, "dataPoints": [
            {"timeUnixNano": "1705320000000000000", "count": "10", "sum": 100.0, "bucketCounts": ["0", "5", "5"], "explicitBounds": [0.0, 10.0]},
            {"timeUnixNano": "1705320010000000000", "count": 10, "sum": 300.0, "bucketCounts": [0, 0, 10], "explicitBounds": [0.0, 10.0]}]}}
    ]}]}]});
    let r = app
        .client
        .post(format!("{}/v1/metrics", app.ingest))
        .bearer_auth(&acct.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted_data_points": 6, "rejected_data_points": 0})
    );
    let streams = app
        .wait_for(&acct.key, "/dashboard/metrics/", |b| {
            b.as_array()
                .is_some_and(|a| a.len() == 2 && a[1]["data_point_count"] == 4)
        })
        .await;
    assert_eq!(
        streams,
        json!([
            {"name": "a.latency", "metric_type": "histogram", "unit": "ms", "description": "", "data_point_count": 2},
            {"name": "z.cpu", "metric_type": "gauge", "unit": "1", "description": "CPU", "data_point_count": 4}
        ])
    );
    let (status, q) = app
        .get(&acct.key, "/dashboard/metrics/query?name=z.cpu")
        .await;
    assert_eq!(status, StatusCode::OK);
    let values: Vec<f64> = q["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.5, 0.7, 0.9, 0.1]);
    assert_eq!(q["points"][0]["labels"], json!({"route": "/a"}));
    let (_, q) = app
        .get(
            &acct.key,
            "/dashboard/metrics/query?name=z.cpu&labels=%7B%22route%22%3A%22%2Fb%22%7D",
        )
        .await;
    assert_eq!(q["points"].as_array().unwrap().len(), 2);
    let (_, q) = app
        .get(&acct.key, "/dashboard/metrics/query?name=z.cpu&start=2024-01-15T12:00:30Z&end=2024-01-15T12:01:00Z&limit=500")
        .await;
    assert_eq!(q["points"].as_array().unwrap().len(), 2);
    // One-minute buckets: max of each.
    let (_, q) = app
        .get(
            &acct.key,
            "/dashboard/metrics/query?name=z.cpu&step=60&agg=max",
        )
        .await;
    let buckets: Vec<f64> = q["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_f64().unwrap())
        .collect();
    assert_eq!(buckets, [0.7, 0.9]);
    // Histogram median from merged delta buckets: 20 observations, 5 in
    // (0,10] and 15 in (10,inf): the median falls in the last bucket.
    let (_, q) = app
        .get(
            &acct.key,
            "/dashboard/metrics/query?name=a.latency&step=60&agg=p50",
        )
        .await;
    assert_eq!(q["buckets"][0]["value"], 10.0);
    let (_, q) = app
        .get(
            &acct.key,
            "/dashboard/metrics/query?name=a.latency&step=60&agg=p10",
        )
        .await;
    assert_eq!(q["status"], Value::Null);
    let (_, q) = app
        .get(&acct.key, "/dashboard/metrics/query?name=a.latency")
        .await;
    assert_eq!(q["points"][1]["bucket_counts"], json!([0, 0, 10]));

    let (status, body) = app
        .get(&acct.key, "/dashboard/metrics/query?name=nope")
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Metric not found."})
        )
    );
    for (query, field) in [
        ("", "name"),
        ("name=z.cpu&labels=oops", "labels"),
        ("name=z.cpu&limit=0", "limit"),
        ("name=z.cpu&step=60&agg=p95", "agg"),
    ] {
        let (status, body) = app
            .get(&acct.key, &format!("/dashboard/metrics/query?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let other = app.account().await;
    let (status, _) = app
        .get(&other.key, "/dashboard/metrics/query?name=z.cpu")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// When every read slot of a replica is taken, a dashboard read waits for
/// one, then gets a clear 503 with `Retry-After`; auth routes are not held
/// back; once a slot frees up, reads answer again.
#[tokio::test]
async fn reads_beyond_the_slots_get_503_then_recover() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let slots = &app.query.0.read_slots;
    let all = u32::try_from(app.query.0.config.max_reads).unwrap();
    let held = slots.acquire_many(all).await.unwrap();
    let started = std::time::Instant::now();
    let r = app
        .client
        .get(format!("{}/agents", app.api))
        .bearer_auth(&acct.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= app.query.0.config.read_wait);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("retry"), "{body}");
    let (status, _) = app.get(&acct.token, "/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    drop(held);
    let (status, body) = app.get(&acct.key, "/agents").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
