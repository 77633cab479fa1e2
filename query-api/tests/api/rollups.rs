//! The per-day run rollup (`agent_daily`): reads answer exactly what the
//! runs say before and after the rollup worker computed a day, and after
//! the runs change under it (an outcome PATCH, a client re-sending its
//! batches, a re-send that moves a run to the previous day).

use crate::helpers::{batch, spawn_app, Account, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// One pass of the worker that computes every day at once (no settling
/// time). Another replica's pass may hold the lock: retry.
async fn roll_up(app: &TestApp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = &app.query.0;
        match query_api::store::run_stats::refresh(&state.ch, &state.pg, Duration::ZERO).await {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(e) => panic!("rollup pass failed: {e:#}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollup lock never free"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rows inserted into `traces` for the organization so far (every version).
async fn inserted(app: &TestApp, org: Uuid) -> u64 {
    app.query
        .0
        .ch
        .query("SELECT sum(inserts) FROM trace_day_inserts WHERE org_id = toUUID(?)")
        .bind(org.to_string())
        .fetch_one()
        .await
        .unwrap()
}

async fn wait_inserted(app: &TestApp, org: Uuid, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while inserted(app, org).await < n {
        assert!(std::time::Instant::now() < deadline, "runs never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every read that the rollup serves, in one list. The `days=7`
/// comparison ends now, so its `end` is left out.
async fn reads(
    app: &TestApp,
    acct: &Account,
    a: &str,
    b: &str,
    day: &dyn Fn(i64) -> String,
) -> Vec<Value> {
    let paths = [
        "/agents".to_string(),
        format!("/agents/{a}"),
        format!("/agents/{b}"),
        format!("/agents/{a}/stats?days=7"),
        format!("/agents/{b}/stats?days=30"),
        format!("/dashboard/traces/compare?agent_ids={a},{b}&days=7"),
        format!(
            "/dashboard/traces/compare?agent_ids={a},{b}&start={}T00:00:00Z&end={}T23:59:59.999999Z",
            day(5),
            day(2)
        ),
        format!(
            "/dashboard/traces/compare?agent_ids={a},{b}&start={}T12:00:00Z&end={}T12:00:00Z",
            day(4),
            day(3)
        ),
        "/agents/daily?days=30".to_string(),
    ];
    let mut out = Vec::new();
    for p in paths {
        let (status, mut body) = app.get(&acct.key, &p).await;
        assert_eq!(status, StatusCode::OK, "{p}: {body}");
        if p.ends_with("days=7") && p.contains("compare") {
            let o = body.as_object_mut().unwrap();
            assert!(o.remove("end").is_some());
        }
        out.push(body);
    }
    out
}

/// The same answers, read by read (a whole-list diff is unreadable).
fn assert_same(got: &[Value], want: &[Value], when: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "read {i} changed {when}");
    }
}

fn stats_day<'a>(stats: &'a Value, date: &str) -> &'a Value {
    stats["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no {date} in {stats}"))
}

#[tokio::test]
async fn rolled_up_days_answer_exactly_what_the_runs_say() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let today = time::OffsetDateTime::now_utc().date();
    let day = |ago: i64| (today - time::Duration::days(ago)).to_string();
    let run = |agent: &str, ago: i64, hour: u32, duration: i64, success: bool, outcome: &str| {
        let (id, mut b) = batch(agent, 1);
        let t = &mut b["traces"][0]["trace"];
        t["started_at"] = json!(format!("{}T{hour:02}:00:00Z", day(ago)));
        t["ended_at"] = Value::Null;
        t["duration_ms"] = json!(duration);
        t["success"] = json!(success);
        t["outcome"] = json!(outcome);
        (id, b)
    };
    // Agent a: three runs on each of the days 2..=5 ago (durations 100 to
    // 1200 ms, every fourth a failure) and one today; agent b: four runs
    // three days ago.
    let mut bodies = Vec::new();
    for i in 0..12i64 {
        let ok = i % 4 != 0;
        bodies.push(run(
            "roll-a",
            2 + i / 3,
            6 + 4 * (i % 3) as u32,
            100 * (i + 1),
            ok,
            if ok { "won" } else { "lost" },
        ));
    }
    bodies.push(run("roll-a", 0, 0, 5000, true, "won"));
    for i in 0..4i64 {
        bodies.push(run("roll-b", 3, 8 + i as u32, 50 * (i + 1), true, "won"));
    }
    for (_, b) in &bodies {
        assert_eq!(app.post_batch(&acct.key, b).await.0, StatusCode::OK);
    }
    wait_inserted(&app, acct.org_id, bodies.len() as u64).await;
    let a = app.agent_id(&acct.key, "roll-a").await;
    let b = app.agent_id(&acct.key, "roll-b").await;

    // Before any rollup: the values the runs give.
    let before = reads(&app, &acct, &a, &b, &day).await;
    let detail_a = &before[1];
    assert_eq!(detail_a["total_runs"], 13);
    assert_eq!(detail_a["successful_runs"], 10);
    assert_eq!(detail_a["failed_runs"], 3);
    assert_eq!(detail_a["outcomes"], json!({"won": 10, "lost": 3}));
    assert_eq!(detail_a["total_cost"], 0.0585);
    let stats_a = &before[3];
    assert_eq!(stats_day(stats_a, &day(2))["runs"], 3);
    assert_eq!(stats_day(stats_a, &day(2))["avg_duration_ms"], 200);
    assert_eq!(stats_day(stats_a, &day(0))["runs"], 1);
    // `days=7`: seven whole UTC days, today included.
    assert_eq!(before[5]["start"], format!("{}T00:00:00Z", day(6)));
    let whole = &before[6]["agents"];
    assert_eq!(whole[0]["runs"], 12);
    assert_eq!(whole[0]["p50_duration_ms"], 650);
    assert_eq!(whole[0]["daily"].as_array().unwrap().len(), 4);
    assert_eq!(whole[1]["runs"], 4);
    assert_eq!(whole[1]["p50_duration_ms"], 125);
    // Noon four days ago to noon three days ago: a's 14:00 run of day 4 and
    // its 06:00 and 10:00 runs of day 3, and b's four runs (08:00 to 11:00)
    // of day 3.
    let partial = &before[7]["agents"];
    assert_eq!(partial[0]["runs"], 3);
    assert_eq!(partial[1]["runs"], 4);

    // The worker computes the closed days; every read answers the same.
    roll_up(&app).await;
    let rolled: u64 = app
        .query
        .0
        .ch
        .query(
            "SELECT count() FROM agent_daily FINAL WHERE org_id = toUUID(?) AND day < today() - 1",
        )
        .bind(acct.org_id.to_string())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rolled, 5, "a on four days, b on one");
    assert_same(
        &reads(&app, &acct, &a, &b, &day).await,
        &before,
        "after the first rollup",
    );

    // An outcome PATCHed on a rolled-up day shows at once, and after the
    // next pass.
    let (patched, _) = &bodies[5]; // a, three days ago, a success
    let r = app
        .client
        .patch(format!("{}/dashboard/traces/{patched}", app.api))
        .bearer_auth(&acct.key)
        .json(&json!({"success": false, "outcome": "escalated"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after_patch = reads(&app, &acct, &a, &b, &day).await;
    assert_eq!(
        after_patch[1]["outcomes"],
        json!({"won": 9, "lost": 3, "escalated": 1})
    );
    assert_eq!(after_patch[1]["failed_runs"], 4);
    assert_eq!(stats_day(&after_patch[3], &day(3))["failed_runs"], 2);
    roll_up(&app).await;
    assert_same(
        &reads(&app, &acct, &a, &b, &day).await,
        &after_patch,
        "by rolling up the patched day",
    );

    // A client re-sending its batches (all but the patched run, which a
    // re-send would overwrite) changes nothing, rolled up or not.
    let written = inserted(&app, acct.org_id).await;
    let resent: Vec<_> = bodies.iter().filter(|(id, _)| id != patched).collect();
    for (_, body) in &resent {
        assert_eq!(app.post_batch(&acct.key, body).await.0, StatusCode::OK);
    }
    wait_inserted(&app, acct.org_id, written + resent.len() as u64).await;
    assert_same(
        &reads(&app, &acct, &a, &b, &day).await,
        &after_patch,
        "by the re-sent batches",
    );
    roll_up(&app).await;
    assert_same(
        &reads(&app, &acct, &a, &b, &day).await,
        &after_patch,
        "by rolling up the re-sent batches",
    );

    // A re-send that moves a run of two days ago to three days ago: the day
    // it left is counted without it, at once and after the next pass.
    let (moved_id, mut moved) = bodies[0].clone();
    moved["traces"][0]["trace"]["started_at"] = json!(format!("{}T23:00:00Z", day(3)));
    let written = inserted(&app, acct.org_id).await;
    assert_eq!(app.post_batch(&acct.key, &moved).await.0, StatusCode::OK);
    wait_inserted(&app, acct.org_id, written + 1).await;
    let after_move = reads(&app, &acct, &a, &b, &day).await;
    assert_eq!(
        stats_day(&after_move[3], &day(2))["runs"],
        2,
        "{moved_id} left day 2"
    );
    assert_eq!(stats_day(&after_move[3], &day(3))["runs"], 4);
    assert_eq!(after_move[1]["total_runs"], 13);
    roll_up(&app).await;
    assert_same(
        &reads(&app, &acct, &a, &b, &day).await,
        &after_move,
        "by rolling up the moved run",
    );

    // A day left with no run at all (its only run re-sent with a start on
    // the next day) is stamped by an empty row, so it counts as current
    // rather than being recomputed on every pass.
    let (lonely_id, mut lonely) = run("roll-a", 6, 12, 700, true, "won");
    let written = inserted(&app, acct.org_id).await;
    assert_eq!(app.post_batch(&acct.key, &lonely).await.0, StatusCode::OK);
    wait_inserted(&app, acct.org_id, written + 1).await;
    roll_up(&app).await;
    lonely["traces"][0]["trace"]["started_at"] = json!(format!("{}T01:00:00Z", day(5)));
    assert_eq!(app.post_batch(&acct.key, &lonely).await.0, StatusCode::OK);
    wait_inserted(&app, acct.org_id, written + 2).await;
    roll_up(&app).await;
    let (_, stats) = app
        .get(&acct.key, &format!("/agents/{a}/stats?days=7"))
        .await;
    assert_eq!(
        stats_day(&stats, &day(6))["runs"],
        0,
        "{lonely_id} left day 6"
    );
    assert_eq!(stats_day(&stats, &day(5))["runs"], 4);
    let empty: u64 = app
        .query
        .0
        .ch
        .query(
            "SELECT count() FROM agent_daily FINAL WHERE org_id = toUUID(?) AND day = toDate(?) \
             AND runs = 0 AND inserts_seen = (SELECT sum(inserts) FROM trace_day_inserts \
                                              WHERE org_id = toUUID(?) AND day BETWEEN toDate(?) - 1 AND toDate(?) + 1)",
        )
        .bind(acct.org_id.to_string())
        .bind(day(6))
        .bind(acct.org_id.to_string())
        .bind(day(6))
        .bind(day(6))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(empty, 1, "day 6 is stamped current, with no runs");

    // The reads do come from the rollup: a newer computation of a day (here
    // a forged one) is what they answer for that day.
    app.query
        .0
        .ch
        .query(
            "INSERT INTO agent_daily SELECT * REPLACE (inserts_seen + 1000000 AS inserts_seen, toUInt64(999) AS runs) \
             FROM agent_daily FINAL WHERE org_id = toUUID(?) AND agent_id = toUUID(?) AND day = toDate(?)",
        )
        .bind(acct.org_id.to_string())
        .bind(&a)
        .bind(day(4))
        .execute()
        .await
        .unwrap();
    let (_, stats) = app
        .get(&acct.key, &format!("/agents/{a}/stats?days=7"))
        .await;
    assert_eq!(stats_day(&stats, &day(4))["runs"], 999);
    assert_eq!(stats_day(&stats, &day(5))["runs"], 4);
}

/// Replicas take turns: while one holds the pass lock, another's pass is
/// skipped, not run alongside.
#[tokio::test]
async fn one_rollup_pass_at_a_time_across_replicas() {
    let app = spawn_app().await;
    let state = &app.query.0;
    // Another replica's pass, holding the lock (the key is the worker's).
    let mut other = state.pg.begin().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(query_api::store::run_stats::LOCK_KEY)
            .fetch_one(&mut *other)
            .await
            .unwrap();
        if got {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lock never free");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let skipped = query_api::store::run_stats::refresh(&state.ch, &state.pg, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(skipped, None);
    other.rollback().await.unwrap();
    roll_up(&app).await;
}
