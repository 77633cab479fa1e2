//! `/agents`: statistics over several runs, pagination, stats windows and
//! tenant isolation.

use crate::helpers::{batch, spawn_app};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn stats_and_runs_over_several_runs() {
    let app = spawn_app().await;
    let acct = app.account().await;
    // Three runs: success with cost 0.01, failure (success=false, status
    // failed) with cost 0.03, and one without a success signal.
    let mut bodies = Vec::new();
    for (i, (success, status, cost, started)) in [
        (json!(true), "completed", "0.010000", "2024-02-01T10:00:00Z"),
        (json!(false), "failed", "0.030000", "2024-02-01T11:00:00Z"),
        (json!(null), "completed", "0.020000", "2024-02-01T12:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, mut b) = batch("stats-agent", 1);
        let t = &mut b["traces"][0]["trace"];
        t["success"] = success;
        t["status"] = json!(status);
        t["total_cost_usd"] = json!(cost);
        t["started_at"] = json!(started);
        t["ended_at"] = json!(null);
        t["duration_ms"] = json!(1000 * (i + 1));
        t["outcome"] = json!(if i == 1 { "rejected" } else { "qualified" });
        bodies.push(b);
    }
    for b in &bodies {
        let (status, _) = app.post_batch(&acct.key, b).await;
        assert_eq!(status, StatusCode::OK);
    }
    let agent = app.agent_id(&acct.key, "stats-agent").await;
    let detail = app
        .wait_for(&acct.key, &format!("/agents/{agent}"), |b| {
            b["total_runs"] == 3
        })
        .await;
    assert_eq!(detail["success_rate"], 50.0);
    assert_eq!(detail["successful_runs"], 1);
    assert_eq!(detail["failed_runs"], 1);
    assert_eq!(detail["total_cost"], 0.06);
    // Mean over completed runs: (0.01 + 0.02) / 2.
    assert_eq!(detail["avg_cost_per_run"], 0.015);
    assert_eq!(detail["last_run_at"], "2024-02-01T12:00:00Z");
    assert_eq!(detail["outcomes"], json!({"qualified": 2, "rejected": 1}));
    // What each outcome costs, most runs first.
    assert_eq!(
        detail["cost_by_outcome"],
        json!([
            {"outcome": "qualified", "runs": 2, "total_cost": 0.03, "avg_cost_per_run": 0.015},
            {"outcome": "rejected", "runs": 1, "total_cost": 0.03, "avg_cost_per_run": 0.03},
        ])
    );

    let (_, page1) = app
        .get(
            &acct.key,
            &format!("/agents/{agent}/runs?page=1&page_size=2"),
        )
        .await;
    let (_, page2) = app
        .get(
            &acct.key,
            &format!("/agents/{agent}/runs?page=2&page_size=2"),
        )
        .await;
    assert_eq!(page1["total"], 3);
    assert_eq!(page1["has_more"], true);
    assert_eq!(page2["has_more"], false);
    let started: Vec<_> = page1["runs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["runs"].as_array().unwrap())
        .map(|r| r["started_at"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        started,
        [
            "2024-02-01T12:00:00Z",
            "2024-02-01T11:00:00Z",
            "2024-02-01T10:00:00Z"
        ]
    );
    // page_size is clamped to 1..=100.
    let (_, clamped) = app
        .get(&acct.key, &format!("/agents/{agent}/runs?page_size=1000"))
        .await;
    assert_eq!(clamped["page_size"], 100);
    let (_, clamped) = app
        .get(&acct.key, &format!("/agents/{agent}/runs?page_size=0"))
        .await;
    assert_eq!(clamped["page_size"], 1);

    for (days, window, len) in [
        ("30", "30d", 30),
        ("90", "90d", 90),
        ("7", "7d", 7),
        ("5", "7d", 7),
    ] {
        let (status, stats) = app
            .get(&acct.key, &format!("/agents/{agent}/stats?days={days}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stats["window"], window);
        assert_eq!(stats["agent_name"], "stats-agent");
        assert_eq!(stats["days"].as_array().unwrap().len(), len);
    }
}

#[tokio::test]
async fn stats_count_todays_runs() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let now = agentvista_shared::time_fmt::format(time::OffsetDateTime::now_utc());
    let (_, mut b) = batch("today-agent", 1);
    b["traces"][0]["trace"]["started_at"] = json!(now);
    b["traces"][0]["trace"]["ended_at"] = json!(null);
    let (status, _) = app.post_batch(&acct.key, &b).await;
    assert_eq!(status, StatusCode::OK);
    let agent = app.agent_id(&acct.key, "today-agent").await;
    let stats = app
        .wait_for(&acct.key, &format!("/agents/{agent}/stats"), |s| {
            s["days"].as_array().unwrap().last().unwrap()["runs"] == 1
        })
        .await;
    let today = &stats["days"][6];
    assert_eq!(today["successful_runs"], 1);
    assert_eq!(today["total_cost"], 0.0045);
    assert_eq!(today["total_tokens"], 1500);
    assert_eq!(today["avg_duration_ms"], 2000);
    // A day without runs: zero counts, and money null as everywhere a total
    // has nothing to sum.
    let empty = &stats["days"][0];
    assert_eq!(empty["runs"], 0);
    assert_eq!(empty["total_tokens"], 0);
    assert_eq!(empty["total_cost"], Value::Null);
    assert_eq!(empty["success_rate"], Value::Null);

    // Every agent's days in columns (the overview's sparklines).
    let (status, daily) = app.get(&acct.key, "/agents/daily?days=30").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(daily["window"], "30d");
    let today = time::OffsetDateTime::now_utc().date();
    assert_eq!(
        daily["first_day"],
        (today - time::Duration::days(29)).to_string()
    );
    let agents = daily["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{daily}");
    assert_eq!(agents[0]["agent_id"], agent.as_str());
    assert_eq!(agents[0]["agent_name"], "today-agent");
    let runs = agents[0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 30);
    assert_eq!(runs[29], 1);
    assert_eq!(runs[..29].iter().filter(|r| **r != 0).count(), 0);
    assert_eq!(agents[0]["success_rate"][29], 100.0);
    assert_eq!(agents[0]["success_rate"][0], Value::Null);
    assert_eq!(agents[0]["total_cost"][29], 0.0045);
    // Any other window is 7 days.
    let (_, week) = app.get(&acct.key, "/agents/daily?days=12").await;
    assert_eq!(week["window"], "7d");
    assert_eq!(week["agents"][0]["runs"].as_array().unwrap().len(), 7);
    // Another organization sees none of it.
    let other = app.account().await;
    let (status, theirs) = app.get(&other.key, "/agents/daily?days=30").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["agents"], json!([]));
}

#[tokio::test]
async fn another_organizations_agent_is_not_found() {
    let app = spawn_app().await;
    let a = app.account().await;
    let b = app.account().await;
    let (status, _) = app.post_batch(&a.key, &batch("secret-agent", 1).1).await;
    assert_eq!(status, StatusCode::OK);
    let agent = app.agent_id(&a.key, "secret-agent").await;
    for path in [
        format!("/agents/{agent}"),
        format!("/agents/{agent}/runs"),
        format!("/agents/{agent}/stats"),
    ] {
        let (status, body) = app.get(&b.key, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"detail": "Agent not found."}));
    }
    let (_, list) = app.get(&b.key, "/agents").await;
    assert_eq!(list, json!([]));
    // The same agent name in B is a different agent.
    let (status, _) = app.post_batch(&b.key, &batch("secret-agent", 1).1).await;
    assert_eq!(status, StatusCode::OK);
    let b_agent = app.agent_id(&b.key, "secret-agent").await;
    assert_ne!(agent, b_agent);
    let (status, _) = app.get(&b.key, "/agents/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
