//! `POST /traces/batch`: the walk from the gateway to the query API, and
//! every way the gateway refuses a batch.

use crate::helpers::{batch, count_rows, count_rows_reaching, spawn_app, spawn_app_with};
use agentvista_shared::plan::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The contract's documented example batch (one fixture for every test).
const DOC_EXAMPLE: &str = include_str!("../../../tests/fixtures/doc-example-batch.json");

#[tokio::test]
async fn documented_example_is_ingested_and_read_back() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let body: Value = serde_json::from_str(DOC_EXAMPLE).unwrap();
    let (status, resp) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp, json!({"accepted_traces": 1, "accepted_spans": 1}));

    let agent_id = app.agent_id(&acct.key, "lead-qualifier").await;
    let agents = app
        .wait_for(&acct.key, "/agents", |b| b[0]["total_runs"] == 1)
        .await;
    let a = &agents[0];
    assert_eq!(a["name"], "lead-qualifier");
    assert_eq!(a["success_rate"], 100.0);
    assert_eq!(a["total_cost"], 0.0045);
    assert_eq!(a["avg_cost_per_run"], 0.0045);
    assert_eq!(a["last_run_at"], "2024-01-15T10:00:00Z");

    let runs = app
        .wait_for(&acct.key, &format!("/agents/{agent_id}/runs"), |b| {
            b["total"] == 1
        })
        .await;
    let run = &runs["runs"][0];
    assert_eq!(run["trace_id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["duration_ms"], 2000);
    assert_eq!(run["outcome"], "qualified");
    assert_eq!(run["total_cost_usd"], "0.004500");
    assert_eq!(run["total_tokens"], 1500);
    assert_eq!(runs["has_more"], false);

    let trace_id = "550e8400-e29b-41d4-a716-446655440000".parse().unwrap();
    assert_eq!(count_rows(&app, "spans", acct.org_id, trace_id).await, 1);
}

#[tokio::test]
async fn the_same_batch_twice_is_one_trace_and_one_span() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (trace_id, body) = batch("idempotent-agent", 3);
    for _ in 0..2 {
        let (status, resp) = app.post_batch(&acct.key, &body).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        assert_eq!(resp, json!({"accepted_traces": 1, "accepted_spans": 3}));
    }
    let agent_id = app.agent_id(&acct.key, "idempotent-agent").await;
    // Wait until both copies have been written, then every read shows one.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let raw: u64 = app
            .query
            .0
            .ch
            .query("SELECT count() FROM spans WHERE org_id = toUUID(?) AND trace_id = toUUID(?)")
            .bind(acct.org_id.to_string())
            .bind(trace_id.to_string())
            .fetch_one()
            .await
            .unwrap();
        if raw >= 6 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_rows(&app, "spans", acct.org_id, trace_id).await, 3);
    assert_eq!(
        count_rows_reaching(&app, "traces", acct.org_id, trace_id, 1).await,
        1
    );
    let (_, agents) = app.get(&acct.key, "/agents").await;
    assert_eq!(agents[0]["total_runs"], 1);
    let (_, runs) = app
        .get(&acct.key, &format!("/agents/{agent_id}/runs"))
        .await;
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    let (_, detail) = app.get(&acct.key, &format!("/agents/{agent_id}")).await;
    assert_eq!(detail["successful_runs"], 1);
    // The span-filter rollup saw both copies; the list still shows one run.
    for query in [
        "model=gpt-4o",
        "span_type=llm",
        "model=gpt-4o&span_type=llm",
    ] {
        let (_, list) = app
            .get(&acct.key, &format!("/dashboard/traces?{query}"))
            .await;
        assert_eq!(list["total"], 1, "{query}");
        assert_eq!(list["traces"].as_array().unwrap().len(), 1, "{query}");
    }
}

#[tokio::test]
async fn missing_and_invalid_keys_get_401() {
    let app = spawn_app().await;
    let (_, body) = batch("x", 1);
    let url = format!("{}/api/v1/traces/batch", app.ingest);
    let r = app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Missing or invalid API key."})
    );
    for bad in [
        "av_0000000000000000000000000000000000000000000000000000000000000000",
        "not-a-key",
    ] {
        let (status, resp) = app.post_batch(bad, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(resp, json!({"detail": "Missing or invalid API key."}));
    }
}

#[tokio::test]
async fn a_key_without_write_gets_403_and_without_read_cannot_query() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let read_only = app.create_key(&acct.token, &["read"]).await;
    let write_only = app.create_key(&acct.token, &["write"]).await;
    let (_, body) = batch("scoped", 1);
    let (status, resp) = app.post_batch(&read_only, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        resp,
        json!({"detail": "API key lacks the required scope: write."})
    );
    let (status, _) = app.post_batch(&write_only, &body).await;
    assert_eq!(status, StatusCode::OK);
    let (status, resp) = app.get(&write_only, "/agents").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        resp,
        json!({"detail": "API key lacks the required scope: read."})
    );
    let (status, resp) = app.get(&read_only, "/me/api-keys/ping/").await;
    assert_eq!((status, resp), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn invalid_batches_get_400_naming_the_field() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (_, good) = batch("validation", 1);
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = good.clone();
                b["traces"][0]["trace"].as_object_mut().unwrap().remove("trace_id");
                b
            },
            "traces[0].trace.trace_id: is required",
        ),
        (
            {
                let mut b = good.clone();
                b["traces"][0]["trace"]["status"] = json!("finished");
                b
            },
            "traces[0].trace.status: unknown value \"finished\", expected one of running, completed, failed, timed_out",
        ),
        (
            {
                let mut b = good.clone();
                b["traces"][0]["spans"][0]["started_at"] = json!("15/01/2024");
                b
            },
            "traces[0].spans[0].started_at: \"15/01/2024\" is not an ISO 8601 timestamp with a time zone",
        ),
        (
            {
                let mut b = good.clone();
                b["traces"][0]["trace"]["total_cost_usd"] = json!("a lot");
                b
            },
            "traces[0].trace.total_cost_usd: must be a decimal string such as \"0.004500\"",
        ),
        (batch("too-many", 101).1, "A batch accepts at most 100 spans in total; this one has 101."),
    ];
    for (body, detail) in cases {
        let (status, resp) = app.post_batch(&acct.key, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{detail}");
        assert_eq!(resp["detail"], detail);
    }
    // Malformed JSON.
    let r = app
        .client
        .post(format!("{}/api/v1/traces/batch", app.ingest))
        .bearer_auth(&acct.key)
        .header("content-type", "application/json")
        .body("{\"traces\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON body"),
        "{body}"
    );
    // Exactly 100 spans is fine.
    let (status, resp) = app.post_batch(&acct.key, &batch("hundred", 100).1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["accepted_spans"], 100);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let acct = app.account().await;
    let (_, mut body) = batch("big", 1);
    body["traces"][0]["spans"][0]["input"] = json!("x".repeat(100 * 1024));
    let (status, resp) = app.post_batch(&acct.key, &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp["detail"],
        "Request body exceeds the body size limit of 65536 bytes."
    );
}

#[tokio::test]
async fn every_oversized_body_gets_the_json_413_even_when_sent_in_full() {
    // 1 MiB bodies against a 64 KiB limit, declared and chunked: the
    // gateway reads (and discards) what the client still sends, so the
    // client (or a router in between) always gets the answer, never a
    // reset connection.
    let app = spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let acct = app.account().await;
    let big = vec![b'x'; 1024 * 1024];
    for i in 0..20 {
        let req = app
            .client
            .post(format!("{}/api/v1/traces/batch", app.ingest))
            .bearer_auth(&acct.key)
            .header("content-type", "application/json");
        let req = if i % 2 == 0 {
            req.body(big.clone())
        } else {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                big.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
            req.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        };
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "request {i}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["detail"],
            "Request body exceeds the body size limit of 65536 bytes."
        );
    }
}

#[tokio::test]
async fn oversized_bodies_through_the_router_get_the_json_413_every_time() {
    let app = spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let acct = app.account().await;
    let router = crate::helpers::start_router(&app);
    // 8 clients, 10 oversized bodies each, at once.
    let big = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
    let sends = (0..8).map(|_| {
        let (client, url, key, big) = (
            app.client.clone(),
            format!("{}/api/v1/traces/batch", router.url),
            acct.key.clone(),
            big.clone(),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..10 {
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(big.clone())
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                seen.push((status, body));
            }
            seen
        })
    });
    let mut statuses = std::collections::BTreeMap::new();
    for task in futures::future::join_all(sends).await {
        for (status, body) in task.unwrap() {
            *statuses.entry(status).or_insert(0) += 1;
            if status == 413 {
                assert_eq!(
                    body["detail"], "Request body exceeds the body size limit of 65536 bytes.",
                    "{body}"
                );
            }
        }
    }
    assert_eq!(statuses, [(413, 80)].into_iter().collect(), "{statuses:?}");
    // Beyond the router's own limit: its 413, in the same JSON envelope.
    let r = app
        .client
        .post(format!("{}/api/v1/traces/batch", router.url))
        .bearer_auth(&acct.key)
        .header("content-type", "application/json")
        .body(vec![b'x'; 17 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("router limit"),
        "{body}"
    );
    // The dashboard behind the same router still answers.
    let r = app
        .client
        .get(format!("{}/api/v1/agents", router.url))
        .bearer_auth(&acct.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn batches_need_json_post_and_answer_405_with_allow() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (_, body) = batch("media", 1);
    let r = app
        .client
        .post(format!("{}/api/v1/traces/batch", app.ingest))
        .bearer_auth(&acct.key)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Expected Content-Type: application/json."})
    );
    // The trailing-slash spelling is served too.
    let r = app
        .client
        .post(format!("{}/api/v1/traces/batch/", app.ingest))
        .bearer_auth(&acct.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in ["/api/v1/traces/batch", "/v1/traces", "/api/v1/otlp/v1/logs"] {
        let r = app
            .client
            .get(format!("{}{path}", app.ingest))
            .bearer_auth(&acct.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(r.headers()["allow"], "POST", "{path}");
        assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
    }
}

#[tokio::test]
async fn over_quota_gets_the_exact_429_and_reads_keep_working() {
    let app = spawn_app().await;
    let acct = app.account().await;
    query_api::store::accounts::set_plan(
        &app.query.0.pg,
        &app.query.0.redis,
        acct.org_id,
        Plan::Free,
        Some(5),
    )
    .await
    .unwrap();
    let app = spawn_app().await; // fresh key cache
    let (status, _) = app.post_batch(&acct.key, &batch("quota", 5).1).await;
    assert_eq!(status, StatusCode::OK);
    let (status, resp) = app.post_batch(&acct.key, &batch("quota", 1).1).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp, json!({"detail": "Monthly event limit exceeded."}));
    // A batch with no spans costs nothing and is still accepted.
    let (status, _) = app.post_batch(&acct.key, &batch("quota", 0).1).await;
    assert_eq!(status, StatusCode::OK);
    let agent = app.agent_id(&acct.key, "quota").await;
    let (status, _) = app.get(&acct.key, &format!("/agents/{agent}/runs")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn quota_is_exact_when_20_batches_race_at_the_limit() {
    let app = spawn_app().await;
    let acct = app.account().await;
    query_api::store::accounts::set_plan(
        &app.query.0.pg,
        &app.query.0.redis,
        acct.org_id,
        Plan::Free,
        Some(100),
    )
    .await
    .unwrap();
    let app = std::sync::Arc::new(spawn_app().await);
    // 30 spans already used, 20 batches of 7 race for the 70 left: exactly
    // 10 fit.
    let (status, _) = app.post_batch(&acct.key, &batch("race", 30).1).await;
    assert_eq!(status, StatusCode::OK);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        let key = acct.key.clone();
        tasks.push(tokio::spawn(async move {
            app.post_batch(&key, &batch("race", 7).1).await.0
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (10, 10));
    let mut redis = app.query.0.redis.clone();
    let key = ingest_gateway::quota::counter_key(acct.org_id, time::OffsetDateTime::now_utc());
    let used: i64 = redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(used, 100);
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_5_seconds() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let (status, _) = app.post_batch(&acct.key, &batch("revoke", 1).1).await;
    assert_eq!(status, StatusCode::OK);
    let (_, keys) = app.get(&acct.token, "/me/api-keys/").await;
    let key_id = keys["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| acct.key.starts_with(k["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .delete(format!("{}/me/api-keys/{key_id}/", app.api))
        .bearer_auth(&acct.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    loop {
        let (status, _) = app.post_batch(&acct.key, &batch("revoke", 1).1).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "revoked key still accepted after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The query API refuses it at once.
    let (status, _) = app.get(&acct.key, "/agents").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_flushed_key_cache_does_not_lock_out_valid_keys() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let mut redis = app.query.0.redis.clone();
    let hash = agentvista_shared::keys::hash(&acct.key);
    let _: () = redis::cmd("DEL")
        .arg(agentvista_shared::keys::redis_key(&hash))
        .query_async(&mut redis)
        .await
        .unwrap();
    let (status, _) = app.post_batch(&acct.key, &batch("cold-cache", 1).1).await;
    assert_eq!(status, StatusCode::OK);
    // The gateway wrote the entry back.
    let cached: Option<String> = redis::cmd("GET")
        .arg(agentvista_shared::keys::redis_key(&hash))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(cached.unwrap().contains(&acct.org_id.to_string()));
}

#[tokio::test]
async fn an_unreachable_broker_gets_503_with_retry_after_and_no_quota_is_spent() {
    let app = spawn_app_with(|c| {
        c.common.kafka_brokers = "127.0.0.1:1".into();
        c.produce_timeout = Duration::from_millis(1500);
    })
    .await;
    let acct = app.account().await;
    let r = app
        .client
        .post(format!("{}/api/v1/traces/batch", app.ingest))
        .bearer_auth(&acct.key)
        .json(&batch("unreachable", 4).1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("not accepted"),
        "{body}"
    );
    let mut redis = app.query.0.redis.clone();
    let key = ingest_gateway::quota::counter_key(acct.org_id, time::OffsetDateTime::now_utc());
    let used: Option<i64> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(used.unwrap_or(0), 0);
}
