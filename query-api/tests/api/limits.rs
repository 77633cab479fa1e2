//! Inputs at and beyond the accepted limits: what ingestion acknowledges
//! always reads back (money at its maximum, times at the window's edges,
//! mixed histogram bounds, parent cycles, OTLP-only runs), and what it does
//! not accept is a 400 or a `partial_success` naming why.

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn now() -> String {
    agentvista_shared::time_fmt::format(time::OffsetDateTime::now_utc())
}

fn assert_400_naming(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with(field),
        "want a detail naming {field}: {body}"
    );
}

#[tokio::test]
async fn money_at_the_accepted_maximum_reads_back_everywhere() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let t = now();
    // One run and one span of 1,000,000 USD each: the accepted maximum.
    let trace = Uuid::new_v4();
    let (status, body) = app
        .post_batch(
            &acct.key,
            &json!({"traces": [{"trace": {"trace_id": trace, "agent": "whale", "started_at": t, "total_cost_usd": "1000000"},
                "spans": [{"span_id": Uuid::new_v4(), "name": "big", "started_at": t, "cost_usd": "1000000.000000"}]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // 10,000 more runs of the maximum: their sum (10^10 USD) is beyond 64
    // bits of nano-dollars.
    for _ in 0..100 {
        let traces: Vec<Value> = (0..100)
            .map(|_| json!({"trace": {"trace_id": Uuid::new_v4(), "agent": "whale", "started_at": t, "total_cost_usd": "1000000", "outcome": "won"}}))
            .collect();
        let (status, body) = app
            .post_batch(&acct.key, &json!({ "traces": traces }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Beyond the maximum: a 400 naming the field.
    let (status, body) = app
        .post_batch(
            &acct.key,
            &json!({"traces": [{"trace": {"trace_id": Uuid::new_v4(), "agent": "whale", "started_at": t, "total_cost_usd": "1000000.01"}}]}),
        )
        .await;
    assert_400_naming(status, &body, "traces[0].trace.total_cost_usd");

    let detail = app
        .wait_for(&acct.key, &format!("/dashboard/traces/{trace}"), |b| {
            b["span_count"] == 1
        })
        .await;
    assert_eq!(detail["trace"]["total_cost_usd"], "1000000.000000");
    assert_eq!(detail["spans"][0]["cost_usd"], "1000000.000000");
    assert_eq!(detail["spans"][0]["subtree_cost_usd"], "1000000.000000");
    let list = app
        .wait_for(
            &acct.key,
            "/dashboard/traces?sort=total_cost&page_size=5",
            |b| b["total"] == 10_001,
        )
        .await;
    assert_eq!(list["traces"][0]["total_cost_usd"], "1000000.000000");
    // The cursor of a cost-sorted page leads on.
    let cursor = list["next_cursor"].as_str().unwrap();
    let (status, next) = app
        .get(
            &acct.key,
            &format!("/dashboard/traces?sort=total_cost&page_size=5&cursor={cursor}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["traces"].as_array().unwrap().len(), 5);

    let agent = app.agent_id(&acct.key, "whale").await;
    let want = 1e6 * 10_001.0;
    let agents = app
        .wait_for(&acct.key, "/agents", |b| b[0]["total_runs"] == 10_001)
        .await;
    assert_eq!(agents[0]["total_cost"].as_f64(), Some(want), "{agents}");
    let (status, one) = app.get(&acct.key, &format!("/agents/{agent}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["total_cost"].as_f64(), Some(want));
    // The outcome's cost, summed over runs at the maximum.
    let won = &one["cost_by_outcome"][0];
    assert_eq!(won["outcome"], "won", "{one}");
    assert_eq!(
        won["total_cost"].as_f64(),
        Some(1e6 * won["runs"].as_f64().unwrap())
    );
    assert_eq!(won["avg_cost_per_run"].as_f64(), Some(1e6));
    let (status, daily) = app.get(&acct.key, "/agents/daily?days=7").await;
    assert_eq!(status, StatusCode::OK, "{daily}");
    let (status, stats) = app
        .get(&acct.key, &format!("/agents/{agent}/stats?days=7"))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let (_, body) = app
        .post_batch(&acct.key, &crate::helpers::batch("minnow", 1).1)
        .await;
    assert_eq!(body["accepted_traces"], 1);
    let minnow = app.agent_id(&acct.key, "minnow").await;
    let (status, cmp) = app
        .get(
            &acct.key,
            &format!("/dashboard/traces/compare?agent_ids={agent},{minnow}&days=7"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cmp}");
}

#[tokio::test]
async fn times_outside_the_windows_are_400s_naming_the_parameter() {
    let app = spawn_app().await;
    let acct = app.account().await;
    for (path, field) in [
        ("/dashboard/logs/search?start=0001-01-01T00:00:00Z", "start"),
        ("/dashboard/logs/search?end=9999-12-31T23:59:59Z", "end"),
        (
            "/dashboard/metrics/query?name=x&start=0001-01-01T00:00:00Z",
            "start",
        ),
        (
            "/dashboard/metrics/query?name=x&end=9999-12-31T23:59:59Z",
            "end",
        ),
        ("/dashboard/traces?start=0001-01-01T00:00:00Z", "start"),
        ("/dashboard/traces?end=2150-01-01T00:00:00Z", "end"),
    ] {
        let (status, body) = app.get(&acct.key, path).await;
        assert_400_naming(status, &body, field);
    }
    // The widest queryable window answers, empty.
    let (status, body) = app
        .get(
            &acct.key,
            "/dashboard/logs/search?start=1970-01-01T00:00:00Z&end=2099-12-31T23:59:59Z",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 0);

    // Ingestion: a run after 2149 (which used to vanish from statistics)
    // or before the five-year window is refused, naming the field.
    for (started, why) in [
        ("2150-01-01T00:00:00Z", "future"),
        ("2000-01-01T00:00:00Z", "past"),
    ] {
        let (status, body) = app
            .post_batch(
                &acct.key,
                &json!({"traces": [{"trace": {"trace_id": Uuid::new_v4(), "agent": "a", "started_at": started}}]}),
            )
            .await;
        assert_400_naming(status, &body, "traces[0].trace.started_at");
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    // 100 span-less runs over 100 months: refused whole, naming the first
    // run outside the window.
    let traces: Vec<Value> = (0..100)
        .map(|i| {
            let at = time::OffsetDateTime::now_utc() - time::Duration::days(31 * i);
            json!({"trace": {"trace_id": Uuid::new_v4(), "agent": "a", "started_at": agentvista_shared::time_fmt::format(at)}})
        })
        .collect();
    let (status, body) = app
        .post_batch(&acct.key, &json!({ "traces": traces }))
        .await;
    assert_400_naming(status, &body, "traces[");
    assert!(
        body["detail"].as_str().unwrap().contains("five years"),
        "{body}"
    );

    // OTLP: spans and log records over 101 months; those older than five
    // years are rejected in partial_success, the rest stored.
    let now_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let month_ns = 31 * 86_400 * 1_000_000_000i128;
    let trace_hex = Uuid::new_v4().simple().to_string();
    let spans: Vec<Value> = (0..101)
        .map(|i| {
            let start = now_ns - i as i128 * month_ns;
            json!({"traceId": trace_hex, "spanId": format!("{:016x}", i + 1), "parentSpanId": "00000000000000ff",
                   "name": "old", "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string()})
        })
        .collect();
    let (status, body) = app.post_otlp(&acct.key, "traces",
        &json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "months"}}]},
            "scopeSpans": [{"spans": spans}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rejected = body["rejected_spans"].as_u64().unwrap();
    assert!(rejected > 30 && rejected < 45, "{body}");
    assert_eq!(body["accepted_spans"].as_u64().unwrap() + rejected, 101);
    assert!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("five years"),
        "{body}"
    );
    let logs: Vec<Value> = (0..101)
        .map(|i| json!({"timeUnixNano": (now_ns - i as i128 * month_ns).to_string(), "body": {"stringValue": format!("m{i}")}}))
        .collect();
    let (status, body) = app
        .post_otlp(
            &acct.key,
            "logs",
            &json!({"resourceLogs": [{"scopeLogs": [{"logRecords": logs}]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["accepted_log_records"].as_u64().unwrap(),
        101 - rejected,
        "{body}"
    );
    let accepted = 101 - rejected;
    app.wait_for(
        &acct.key,
        "/dashboard/logs/search?start=1970-01-01T00:00:00Z",
        |b| b["total"] == accepted,
    )
    .await;
}

#[tokio::test]
async fn histograms_with_malformed_or_mixed_bounds_never_break_percentiles() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let t = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let point = |route: &str, counts: Value, bounds: Value| {
        json!({"timeUnixNano": t.to_string(), "count": 10, "sum": 50.0, "bucketCounts": counts, "explicitBounds": bounds,
               "attributes": [{"key": "route", "value": {"stringValue": route}}]})
    };
    let (status, body) = app.post_otlp(&acct.key, "metrics",
        &json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "h.latency", "unit": "ms", "histogram": {"aggregationTemporality": 1, "dataPoints": [
                point("/a", json!([0, 10, 0]), json!([0.0, 10.0])),
                point("/b", json!([0, 10, 0]), json!([0.0, 20.0])),
                point("/c", json!([5, 5]), json!([0.0, 10.0])),
                point("/d", json!([1, 2, 3]), json!([10.0, 5.0]))]}}]}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted_data_points"], 2, "{body}");
    assert_eq!(body["rejected_data_points"], 2, "{body}");
    app.wait_for(&acct.key, "/dashboard/metrics/", |b| {
        b.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["data_point_count"] == 2)
    })
    .await;
    for agg in ["p50", "p95", "p99", "avg", "count"] {
        let (status, q) = app
            .get(
                &acct.key,
                &format!("/dashboard/metrics/query?name=h.latency&step=60&agg={agg}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{agg}: {q}");
        let v = q["buckets"][0]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{agg}: {q}"));
        assert!(v.is_finite(), "{agg}: {q}");
    }
    // 10 in (0,10] and 10 in (0,20]: 15 of 20 below 10, p50 = 20/3.
    let (_, q) = app
        .get(
            &acct.key,
            "/dashboard/metrics/query?name=h.latency&step=60&agg=p50",
        )
        .await;
    let p50 = q["buckets"][0]["value"].as_f64().unwrap();
    assert!((p50 - 20.0 / 3.0).abs() < 1e-6, "{q}");
}

#[tokio::test]
async fn page_numbers_are_bounded() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (_, body) = app
        .post_batch(&acct.key, &crate::helpers::batch("pager", 1).1)
        .await;
    assert_eq!(body["accepted_traces"], 1);
    let agent = app.agent_id(&acct.key, "pager").await;
    for path in [
        "/me/api-keys/?page=9223372036854775807".to_string(),
        "/me/api-keys/?page=0".to_string(),
        format!("/agents/{agent}/runs?page=9223372036854775807"),
        format!("/agents/{agent}/runs?page=10001"),
    ] {
        let (status, body) = app.get(&acct.key, &path).await;
        assert_400_naming(status, &body, "page");
    }
    let (status, body) = app
        .get(&acct.key, &format!("/agents/{agent}/runs?page=10000"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["has_more"], false);
    assert_eq!(body["runs"], json!([]));
}

#[tokio::test]
async fn parent_cycles_read_back_as_roots_and_nothing_goes_missing() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let t = now();
    let trace = Uuid::new_v4();
    let [a, b, c, d] = [
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    ];
    // d is its own parent; a -> b -> a is a cycle; c hangs under b.
    let span = |id: Uuid, parent: Uuid, tokens: i64| json!({"span_id": id, "parent_span_id": parent, "name": "s", "started_at": t, "total_tokens": tokens});
    let (status, body) = app
        .post_batch(
            &acct.key,
            &json!({"traces": [{"trace": {"trace_id": trace, "agent": "loops", "started_at": t},
                "spans": [span(a, b, 1), span(b, a, 2), span(c, b, 4), span(d, d, 8)]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail = app
        .wait_for(&acct.key, &format!("/dashboard/traces/{trace}"), |b| {
            b["span_count"] == 4
        })
        .await;
    let spans = detail["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4, "{detail}");
    let by_id = |id: Uuid| {
        spans
            .iter()
            .find(|s| s["span_id"] == id.to_string())
            .unwrap()
    };
    for id in [a, b, d] {
        assert_eq!(by_id(id)["depth"], 0, "{detail}");
    }
    assert_eq!(by_id(c)["depth"], 1);
    assert_eq!(by_id(b)["children"], json!([c]));
    assert_eq!(by_id(b)["subtree_tokens"], 6);
    assert_eq!(by_id(d)["subtree_tokens"], 8);
    assert_eq!(by_id(d)["children"], json!([]));
}

#[tokio::test]
async fn duplicates_within_a_batch_are_400s_naming_them() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let t = now();
    let trace = Uuid::new_v4();
    let span = json!({"span_id": Uuid::new_v4(), "name": "s", "started_at": t, "total_tokens": 10});
    let (status, body) = app
        .post_batch(
            &acct.key,
            &json!({"traces": [{"trace": {"trace_id": trace, "agent": "dup", "started_at": t}, "spans": [span, span]}]}),
        )
        .await;
    assert_400_naming(status, &body, "traces[0].spans[1].span_id");
    let entry = json!({"trace": {"trace_id": trace, "agent": "dup", "started_at": t}});
    let (status, body) = app
        .post_batch(&acct.key, &json!({"traces": [entry, entry]}))
        .await;
    assert_400_naming(status, &body, "traces[1].trace.trace_id");
    // Nothing of either was stored or metered; the same trace sent once is
    // acknowledged as one run.
    let (status, body) = app
        .post_batch(&acct.key, &json!({"traces": [{"trace": {"trace_id": trace, "agent": "dup", "started_at": t}, "spans": [span]}]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"accepted_traces": 1, "accepted_spans": 1}));
    let detail = app
        .wait_for(&acct.key, &format!("/dashboard/traces/{trace}"), |b| {
            b["span_count"] == 1
        })
        .await;
    assert_eq!(detail["trace"]["total_tokens"], 10);
}

#[tokio::test]
async fn a_run_made_only_of_otlp_child_spans_can_be_patched() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let other = app.account().await;
    let trace_hex = Uuid::new_v4().simple().to_string();
    let start = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    // Two child spans whose root was never exported: no run header.
    let spans: Vec<Value> = (1..=2)
        .map(|i| json!({"traceId": trace_hex, "spanId": format!("{i:016x}"), "parentSpanId": "00000000000000ff",
                        "name": "child", "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 2_000_000_000).to_string(),
                        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}}]}))
        .collect();
    let (status, body) = app.post_otlp(&acct.key, "traces",
        &json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orphan"}}]},
            "scopeSpans": [{"spans": spans}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let trace = Uuid::parse_str(&trace_hex).unwrap();
    app.wait_for(&acct.key, &format!("/dashboard/traces/{trace}"), |b| {
        b["span_count"] == 2
    })
    .await;
    let patch = |key: String, body: Value| {
        let app = &app;
        async move {
            let r = app
                .client
                .patch(format!("{}/dashboard/traces/{trace}", app.api))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Another organization cannot, and learns nothing.
    let (status, _) = patch(other.key.clone(), json!({"success": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, run) = patch(
        acct.key.clone(),
        json!({"success": true, "outcome": "resolved"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["success"], true);
    assert_eq!(run["outcome"], "resolved");
    assert_eq!(run["agent_name"], "orphan");
    assert_eq!(run["total_tokens"], 10);
    assert_eq!(run["duration_ms"], 2000);
    let (status, detail) = app
        .get(&acct.key, &format!("/dashboard/traces/{trace}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["trace"]["success"], true);
    assert_eq!(detail["trace"]["outcome"], "resolved");
    assert_eq!(detail["span_count"], 2);
}

#[tokio::test]
async fn query_string_type_errors_name_the_parameter() {
    let app = spawn_app().await;
    let acct = app.account().await;
    for (path, field) in [
        ("/dashboard/logs/search?limit=abc", "limit"),
        ("/dashboard/traces?page_size=1.5", "page_size"),
        ("/me/api-keys/?page=x", "page"),
        ("/dashboard/metrics/query?name=m&step=soon", "step"),
    ] {
        let (status, body) = app.get(&acct.key, path).await;
        assert_400_naming(status, &body, field);
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn sum_over_a_cumulative_counter_is_the_increase_per_bucket() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let minute = 60_000_000_000i128;
    let t0 = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / minute - 10) * minute;
    // One series: 10, 15, 30 in the first minute; a reset to 5, then 9, in
    // the second.
    let points: Vec<Value> = [(0, 10), (20, 15), (40, 30), (70, 5), (100, 9)]
        .iter()
        .map(|(s, v)| json!({"timeUnixNano": (t0 + s * 1_000_000_000).to_string(), "asInt": v.to_string()}))
        .collect();
    let (status, body) = app.post_otlp(&acct.key, "metrics",
        &json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "requests.total", "unit": "1", "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": points}}]}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.wait_for(&acct.key, "/dashboard/metrics/", |b| {
        b.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["data_point_count"] == 5)
    })
    .await;
    let values = |agg: &'static str| {
        let app = &app;
        let key = acct.key.clone();
        async move {
            let (status, q) = app
                .get(
                    &key,
                    &format!("/dashboard/metrics/query?name=requests.total&step=60&agg={agg}"),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{q}");
            q["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["value"].as_f64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    // The increase (5 + 15; then the reset's 5 + 4), not a sum of totals.
    assert_eq!(values("sum").await, vec![20.0, 9.0]);
    assert_eq!(values("max").await, vec![30.0, 9.0]);
}

#[tokio::test]
async fn usage_shows_the_plan_and_the_spans_metered_this_month_to_members_only() {
    let app = spawn_app().await;
    let (acct, other) = (app.account().await, app.account().await);
    let path = format!("/org/{}/usage", acct.org_slug);
    let (status, before) = app.get(&acct.key, &path).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["plan"], "free");
    assert_eq!(before["spans_used"], 0);
    assert_eq!(before["percent_used"], 0.0);
    assert_eq!(
        before["monthly_span_limit"],
        agentvista_shared::plan::Plan::Free.monthly_span_limit()
    );
    assert_eq!(before["retention_days"], 3);
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(before["month"], agentvista_shared::time_fmt::month_key(now));
    assert!(before["resets_at"]
        .as_str()
        .unwrap()
        .ends_with("-01T00:00:00Z"));

    let (_, body) = crate::helpers::batch("usage-bot", 3);
    let (status, _) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = app.get(&acct.key, &path).await;
    assert_eq!(after["spans_used"], 3, "counted when the gateway accepts");
    // The session works as well as the key; another organization and no
    // credential do not.
    let (status, by_token) = app.get(&acct.token, &path).await;
    assert_eq!(
        (status, by_token["spans_used"].clone()),
        (StatusCode::OK, json!(3))
    );
    let (status, body) = app.get(&other.key, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app.get(&other.token, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = app
        .client
        .get(format!("{}{path}", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app.get(&acct.key, "/org/no-such-org/usage").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
