//! Alert evaluation benchmark: the duration of one evaluator pass over 100,
//! 1,000 and 10,000 active alerts (failure rate, p95 latency, daily cost
//! and inactivity in turn, one per agent) on a data set of 1,000,000 runs
//! (the runs of the 10M-span query benchmark) across 1,000 organizations
//! and 10,000 agents over the last 7 days, each also as a ratio of the
//! pass over 100 alerts in the same run. The first pass of each size
//! records the firings (events and queued emails); the second is the
//! steady state.
//!
//!     scripts/infra
//!     cargo run --release -p query-api --example bench_alerts -- [RUNS]

use std::time::Instant;

const DB: &str = "agentvista_bench_alerts";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |s| s.parse())?;
    let mut common = agentvista_shared::config::CommonConfig::from_env()?;
    let server = writer::clickhouse_client(&common);
    server
        .query(&format!("DROP DATABASE IF EXISTS {DB}"))
        .execute()
        .await?;
    writer::schema::migrate(&server, DB).await?;
    common.clickhouse_database = DB.to_string();
    let ch = writer::clickhouse_client(&common).with_database(DB);
    let (pg, _) = query_api::connect_pg(&common).await?;
    let bench = uuid::Uuid::new_v4().simple().to_string();
    let prefix = &bench[..8];

    // 1,000 organizations of 10 agents; org k's id ends in k's hex, under a
    // per-run prefix; agent ids are the agent-name derivation of the product.
    let org =
        |k: &str| format!("toUUID(concat('{prefix}-0000-4000-8000-', leftPad(hex({k}), 12, '0')))");
    // Agent ids as the product derives them (uuid v5 of the organization
    // and the name): agent j of org k at index k * 10 + j.
    let agents: Vec<String> = (0..1000u32)
        .flat_map(|k| {
            let org_id: uuid::Uuid = format!("{prefix}-0000-4000-8000-{k:012x}")
                .parse()
                .expect("uuid");
            (0..10).map(move |j| {
                agentvista_shared::ids::agent_id(org_id, &format!("agent-{j}")).to_string()
            })
        })
        .collect();
    println!("loading {runs} runs over 1,000 organizations and 10,000 agents");
    let t = Instant::now();
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    ch.query(&format!(
        "INSERT INTO traces (org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms, success, \
           outcome, total_tokens, total_cost, metadata, retention_days, version) \
         SELECT {o}, generateUUIDv4(number), \
           toUUID(arrayElement(?, toUInt32((intDiv(number, 10) % 1000) * 10 + number % 10 + 1))), \
           concat('agent-', toString(number % 10)), if(number % 17 = 0, 'failed', 'completed'), \
           fromUnixTimestamp64Micro(toInt64(({now_s} - (number * 7919) % (7 * 86400)) * 1000000)), NULL, \
           toInt64(100 + (number * 31) % 5000), NULL, NULL, 1000, toDecimal64((number % 1000) / 100000, 9), map(), 90, 1 \
         FROM numbers({runs})",
        o = org("intDiv(number, 10) % 1000")
    ))
    .bind(&agents)
    .with_setting("max_query_size", "16777216")
    .execute()
    .await?;
    println!("  loaded in {:.1} s", t.elapsed().as_secs_f64());

    // The organizations and an owner in PostgreSQL.
    let owner = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'bench', 'x')")
        .bind(owner)
        .bind(format!("bench-{bench}@example.com"))
        .execute(&pg)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO organizations (id, slug, name) \
         SELECT ('{prefix}-0000-4000-8000-' || lpad(to_hex(k), 12, '0'))::uuid, 'bench-{bench}-' || k, 'bench' \
         FROM generate_series(0, 999) AS k"
    ))
    .execute(&pg)
    .await?;

    let mut base = None;
    println!("\n| active alerts | first pass (firings recorded) | second pass | second pass / 100-alert second pass |");
    println!("|---|---|---|---|");
    for n in [100i64, 1_000, 10_000] {
        sqlx::query("UPDATE alerts SET is_active = false WHERE is_active")
            .execute(&pg)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO alerts (id, org_id, user_id, target_service, type, threshold, channel, webhook_secret) \
             SELECT gen_random_uuid(), ('{prefix}-0000-4000-8000-' || lpad(to_hex(i / 10), 12, '0'))::uuid, $1, \
               'agent-' || (i % 10), \
               (ARRAY['failure_rate', 'latency_threshold', 'cost_threshold', 'inactivity'])[i % 4 + 1], \
               (ARRAY[0.05, 4000, 1, 2])[i % 4 + 1], 'email', 'x' \
             FROM generate_series(0, $2 - 1) AS i"
        ))
        .bind(owner)
        .bind(n)
        .execute(&pg)
        .await?;
        let t = Instant::now();
        let first_events = query_api::workers::alerts::evaluate(&pg, &ch, "http://bench").await?;
        let first = t.elapsed();
        let t = Instant::now();
        query_api::workers::alerts::evaluate(&pg, &ch, "http://bench").await?;
        let second = t.elapsed();
        let b = *base.get_or_insert(second);
        println!(
            "| {n} | {:.2} s ({first_events} firings) | {:.2} s | {:.1} |",
            first.as_secs_f64(),
            second.as_secs_f64(),
            second.as_secs_f64() / b.as_secs_f64().max(1e-9)
        );
    }
    // Leave nothing active behind.
    sqlx::query(&format!(
        "DELETE FROM organizations WHERE slug LIKE 'bench-{bench}-%'"
    ))
    .execute(&pg)
    .await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(owner)
        .execute(&pg)
        .await?;
    server
        .query(&format!("DROP DATABASE IF EXISTS {DB}"))
        .execute()
        .await?;
    Ok(())
}
