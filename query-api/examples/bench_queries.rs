//! Query benchmark: loads synthetic telemetry into a separate ClickHouse
//! database, starts the query API in process, and prints p50/p95 latency of
//! the dashboard's heaviest reads, each also as a ratio of the `/healthz`
//! round trip measured in the same run (the HTTP floor).
//!
//!     scripts/infra
//!     cargo run --release -p query-api --example bench_queries -- [SPANS] [ITERATIONS]
//!
//! SPANS defaults to 10,000,000 (10 spans per trace, 50 organizations, the
//! measured one holding a tenth of the data, 20 agents each, 60 days), plus
//! SPANS/5 log records and SPANS/10 metric points, and a large organization
//! with SPANS/10 runs (no spans). The data goes to the database
//! `agentvista_bench`, dropped at the start of each run. After the first
//! round, one rollup pass computes every day into `agent_daily` and
//! `prompt_daily`, and the reads they serve are timed again (ratios
//! against the first round). The large organization's runs are all linked
//! to four versions of a prompt (1,000,000 linked runs at 10M spans).
//!
//! With `--dashboard`, the query API also serves the built dashboard
//! (`web/dist`: `cd web && npm run build` first), one rollup pass runs, a
//! trace of 5,000 spans is added to the measured organization, and instead
//! of the HTTP reads `web/e2e/perf.mjs` measures the pages in Debian's
//! Chromium (time to content from navigation start, frame times while the
//! waterfall scrolls, the first page's JavaScript).

use agentvista_shared::config::CommonConfig;
use agentvista_shared::ids;
use std::time::{Duration, Instant};

mod support;

const DB: &str = "agentvista_bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dashboard = args.iter().any(|a| a == "--dashboard");
    args.retain(|a| a != "--dashboard");
    let spans: u64 = args.first().map_or(Ok(10_000_000), |s| s.parse())?;
    let iterations: usize = args.get(1).map_or(Ok(30), |s| s.parse())?;
    let traces = spans / 10;

    let mut common = CommonConfig::from_env()?;
    let server = writer::clickhouse_client(&common);
    server
        .query(&format!("DROP DATABASE IF EXISTS {DB}"))
        .execute()
        .await?;
    writer::schema::migrate(&server, DB).await?;
    common.clickhouse_database = DB.to_string();
    let ch = writer::clickhouse_client(&common)
        .with_database(DB)
        .with_setting("max_insert_threads", "2");

    // The measured organization, with a real account and key.
    let (org_id, key, email) = support::bench_user(&common).await?;
    let agents: Vec<String> = (0..20).map(|i| format!("agent-{i:02}")).collect();
    let agent_ids: Vec<String> = agents
        .iter()
        .map(|a| ids::agent_id(org_id, a).to_string())
        .collect();

    println!(
        "loading {spans} spans, {traces} traces, {} logs, {} metric points",
        spans / 5,
        spans / 10
    );
    // Rows of organization number k: k = 0 is the measured one (a tenth of
    // the rows), 1..=49 the others.
    let org_expr = |n: &str| {
        format!(
            "if({n} % 10 = 0, toUUID('{}'), toUUID(concat('00000000-0000-4000-8000-', leftPad(hex(({n} % 49) + 1), 12, '0'))))",
            org_id
        )
    };
    let agent_expr = |n: &str| {
        format!(
            "toUUID(arrayElement({:?}, (intDiv({n}, 10) % 20) + 1))",
            agent_ids
        )
        .replace('"', "'")
    };
    let trace_id =
        |n: &str| format!("toUUID(concat('00000000-0000-4000-9000-', leftPad(hex({n}), 12, '0')))");
    let span_id = |n: &str| {
        format!(
            "toUUID(concat('00000000-0000-0000-', substring(leftPad(hex({n}), 16, '0'), 1, 4), '-', substring(leftPad(hex({n}), 16, '0'), 5, 12)))"
        )
    };
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    let started = |n: &str| {
        format!(
            "fromUnixTimestamp64Micro(toInt64(({now_s} - ({n} * 7919) % (60 * 86400)) * 1000000))"
        )
    };
    let timed = |label: &'static str, rows: u64| (label, rows, Instant::now());
    let mut loads = Vec::new();

    // Runs numbered 0..count: `org`, `agent` and `agent_no` (its index in
    // `agents`) are expressions of `number`.
    let runs_sql = |org: &str, agent: &str, agent_no: &str, count: u64| {
        format!(
            "INSERT INTO traces (org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms, success, outcome, \
             total_tokens, total_cost, metadata, retention_days, version) \
             SELECT {org}, {tid}, {agent}, concat('agent-', leftPad(toString({agent_no}), 2, '0')), \
               if(number % 17 = 0, 'failed', 'completed'), {st}, NULL, toInt64(100 + (number * 31) % 5000), \
               if(number % 5 = 0, NULL, number % 3 != 0), arrayElement(['qualified', 'rejected', 'escalated'], (number % 3) + 1), \
               toInt64(500 + number % 3000), toDecimal64((number % 1000) / 100000, 9), map(), 90, 1 \
             FROM numbers({count})",
            tid = trace_id("number"),
            st = started("number"),
        )
    };

    let t = timed("traces", traces);
    ch.query(&runs_sql(
        &org_expr("number"),
        &agent_expr("number"),
        "intDiv(number, 10) % 20",
        traces,
    ))
    .execute()
    .await?;
    loads.push((t.0, t.1, t.2.elapsed()));

    let t = timed("spans", spans);
    ch.query(&format!(
        "INSERT INTO spans (org_id, trace_id, span_id, parent_span_id, agent_id, agent_name, span_type, name, status, \
         started_at, duration_ms, model, input_tokens, output_tokens, total_tokens, cost, attributes, retention_days, version) \
         SELECT {org}, {tid}, {sid}, if(number % 10 = 0, NULL, {parent}), \
           {agent}, concat('agent-', leftPad(toString(intDiv(number, 100) % 20), 2, '0')), \
           arrayElement(['agent', 'llm', 'tool', 'http', 'db', 'custom'], (number % 6) + 1), \
           concat(arrayElement(['plan', 'classify lead', 'crm lookup', 'fetch page', 'select orders', 'summarize'], (number % 6) + 1), ' ', toString(number % 97)), \
           if(number % 23 = 0, 'failed', 'completed'), {st}, toInt64(10 + number % 900), \
           if(number % 6 = 1, arrayElement(['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4'], (intDiv(number, 6) % 3) + 1), NULL), \
           toInt64(number % 800), toInt64(number % 120), toInt64(number % 920), toDecimal64((number % 100) / 100000, 9), \
           map('customer.tier', arrayElement(['gold', 'silver', 'bronze'], (number % 3) + 1)), 90, 1 \
         FROM numbers({spans})",
        org = org_expr("intDiv(number, 10)"), tid = trace_id("intDiv(number, 10)"), agent = agent_expr("intDiv(number, 10)"),
        st = started("intDiv(number, 10)"), sid = span_id("number"), parent = span_id("(number - number % 10)"),
    ))
    .execute()
    .await?;
    loads.push((t.0, t.1, t.2.elapsed()));

    let logs = spans / 5;
    let t = timed("logs", logs);
    ch.query(&format!(
        "INSERT INTO logs (org_id, log_id, timestamp, observed_timestamp, severity_number, severity_text, severity, body, \
         service_name, trace_id, attributes, resource_attributes, scope, retention_days, version) \
         SELECT {org}, generateUUIDv4(number), {st}, {st}, 9, 'INFO', arrayElement(['info', 'warn', 'error'], (number % 3) + 1), \
           if(number % 100000 = 0, concat('watchdog: xylophone stalled ', toString(number)), \
              concat(arrayElement(['connection refused upstream', 'request served in', 'cache miss for key', 'payment failed order'], (number % 4) + 1), ' ', toString(number))), \
           concat('svc-', toString(number % 8)), {tid}, map(), map(), 'bench', 90, 1 \
         FROM numbers({logs})",
        org = org_expr("number"), st = started("number"), tid = trace_id("number % 1000000"),
    ))
    .execute()
    .await?;
    loads.push((t.0, t.1, t.2.elapsed()));

    let points = spans / 10;
    let t = timed("metric points", points);
    ch.query(&format!(
        "INSERT INTO metric_points (org_id, metric_name, series_id, time, start_time, metric_type, unit, description, \
         service_name, attributes, resource_attributes, scope, value, temporality, is_monotonic, retention_days, version) \
         SELECT {org}, concat('metric.', toString(number % 50)), number % 1000, {st}, {st}, 'gauge', '1', '', \
           'svc', map('route', concat('/r', toString(number % 10))), map(), 'bench', (number % 1000) / 10, '', false, 90, 1 \
         FROM numbers({points})",
        org = org_expr("number"), st = started("number"),
    ))
    .execute()
    .await?;
    loads.push((t.0, t.1, t.2.elapsed()));
    insert_agents(&ch, org_id, &agent_ids, &agents).await?;

    // A large organization: as many runs as all the others together (no
    // spans), over the same 60 days and its own 20 agents, so that the
    // reads the run rollup serves are measured at two sizes.
    let (big_org, big_key) = support::bench_account(&common).await?;
    let big_agent_ids: Vec<String> = agents
        .iter()
        .map(|a| ids::agent_id(big_org, a).to_string())
        .collect();
    let t = timed("large org runs", traces);
    let big_agent =
        format!("toUUID(arrayElement({big_agent_ids:?}, (number % 20) + 1))").replace('"', "'");
    ch.query(&runs_sql(
        &format!("toUUID('{big_org}')"),
        &big_agent,
        "number % 20",
        traces,
    ))
    .execute()
    .await?;
    loads.push((t.0, t.1, t.2.elapsed()));
    insert_agents(&ch, big_org, &big_agent_ids, &agents).await?;
    // Every run of the large organization linked to one of four versions
    // of a prompt (links ingested an hour ago, as a history would be).
    let t = timed("prompt links", traces);
    ch.query(&format!(
        "INSERT INTO prompt_links (org_id, prompt_name, prompt_version, trace_id, span_id, source, retention_days, \
         version, ingested_at) \
         SELECT toUUID('{big_org}'), 'classify', toUInt32(number % 4 + 1), {tid}, NULL, 'api', 90, 1, now() - 3600 \
         FROM numbers({traces})",
        tid = trace_id("number"),
    ))
    .execute()
    .await?;
    loads.push((t.0, t.1, t.2.elapsed()));

    // Background merges of the fresh parts would compete with the queries
    // for the two cores: let them finish first (at most 10 minutes).
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(600) {
        let merging: u64 = ch
            .query("SELECT count() FROM system.merges WHERE database = currentDatabase()")
            .fetch_one()
            .await?;
        if merging == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "  merges settled after {:.0} s",
        settle.elapsed().as_secs_f64()
    );

    // The query API, in process, on the bench database.
    let mut config = query_api::Config::from_env()?;
    config.common.clickhouse_database = DB.to_string();
    config.listen = "127.0.0.1:0".parse()?;
    // The rollup worker runs when this harness says (below), not on a timer;
    // the webhook workers are off (this measures reads, as before they
    // existed; their own cost is in bench_webhooks).
    config.rollup.interval = Duration::ZERO;
    config.webhooks.events = false;
    config.webhooks.poll = Duration::ZERO;
    let web_dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    if dashboard {
        anyhow::ensure!(
            web_dist.join("index.html").exists(),
            "{} is missing: run `npm run build` in web/ first",
            web_dist.display()
        );
        config.web_dir = Some(web_dist.clone());
    }
    let server = query_api::build(config).await?;
    let state = server.state();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    let client = reqwest::Client::new();
    for v in 1..=4 {
        let r = client
            .post(format!("{base}/api/v1/dashboard/prompts/"))
            .bearer_auth(&big_key)
            .json(&serde_json::json!({"name": "classify", "version": v,
                "template_text": format!("Classify the lead (v{v}): {{{{inquiry}}}}")}))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().as_u16() == 201,
            "creating a prompt: {}",
            r.status()
        );
    }

    if dashboard {
        return dashboard_figures(
            &ch,
            &state,
            &base,
            org_id,
            &email,
            &agent_ids[0],
            iterations,
        )
        .await;
    }

    // Ids for the queries: a trace of the measured org, and a deep cursor.
    let deep = (traces / 20).min(5000);
    let sample: (String, i64) = ch
        .query("SELECT toString(trace_id), toInt64(toUnixTimestamp64Micro(started_at)) FROM traces WHERE org_id = toUUID(?) ORDER BY started_at DESC, trace_id DESC LIMIT 1 OFFSET ?")
        .bind(org_id.to_string())
        .bind(deep)
        .fetch_one()
        .await?;
    let deep_cursor = format!("{}_{}", sample.1, sample.0);
    let (a0, a1) = (&agent_ids[0], &agent_ids[1]);
    let (b0, b1) = (&big_agent_ids[0], &big_agent_ids[1]);
    let month_ago = agentvista_shared::time_fmt::format(
        time::OffsetDateTime::now_utc() - time::Duration::days(30),
    );
    let k = key.as_str();
    let bk = big_key.as_str();
    let cases: Vec<(&str, String, &str)> = vec![
        ("baseline: GET /healthz", format!("{base}/healthz"), k),
        ("trace by id", format!("{base}/api/v1/dashboard/traces/{}", sample.0), k),
        ("trace list, first page", format!("{base}/api/v1/dashboard/traces?page_size=50"), k),
        ("trace list, deep page + filters", format!("{base}/api/v1/dashboard/traces?page_size=50&success=true&status=completed&cursor={deep_cursor}"), k),
        ("trace list, span filter (model)", format!("{base}/api/v1/dashboard/traces?page_size=50&model=gpt-4o"), k),
        ("agent comparison, 30 days", format!("{base}/api/v1/dashboard/traces/compare?agent_ids={a0},{a1}&days=30"), k),
        ("agents list", format!("{base}/api/v1/agents"), k),
        ("agent stats, 30 days", format!("{base}/api/v1/agents/{a0}/stats?days=30"), k),
        ("agent runs, page 1", format!("{base}/api/v1/agents/{a0}/runs"), k),
        ("log search (2 terms + severity)", format!("{base}/api/v1/dashboard/logs/search?q=connection+refused&severity=error&limit=50"), k),
        // One record in 100,000 has this word (all of them the measured
        // organization's): the n-gram index skips the granules without it.
        ("log search (rare word)", format!("{base}/api/v1/dashboard/logs/search?q=xylophone&limit=50"), k),
        ("metric query, 1h buckets", format!("{base}/api/v1/dashboard/metrics/query?name=metric.10&step=3600&agg=avg"), k),
        ("metric streams", format!("{base}/api/v1/dashboard/metrics/"), k),
        ("large org: agent comparison, 30 days", format!("{base}/api/v1/dashboard/traces/compare?agent_ids={b0},{b1}&days=30"), bk),
        ("large org: agents list", format!("{base}/api/v1/agents"), bk),
        ("large org: agent stats, 30 days", format!("{base}/api/v1/agents/{b0}/stats?days=30"), bk),
        ("large org: prompt compare, 1M linked runs", format!("{base}/api/v1/dashboard/prompts/classify/compare"), bk),
        ("large org: prompt compare, 30 days", format!("{base}/api/v1/dashboard/prompts/classify/compare?start={month_ago}"), bk),
        ("prompt fetch (active version)", format!("{base}/api/v1/dashboard/prompts/classify"), bk),
    ];
    println!("\nloads (INSERT … SELECT inside ClickHouse):");
    for (label, rows, d) in &loads {
        println!(
            "  {label:<14} {rows:>11} rows in {:>6.1} s",
            d.as_secs_f64()
        );
    }
    println!("\n{iterations} requests each after 3 warm-ups, client and server on this machine:");
    println!(
        "  {:<46} {:>9} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p95 ms", "p50/base", "status"
    );
    let mut baseline = None;
    let mut raw = Vec::new();
    for (label, url, key) in &cases {
        let (p50, _) = measure(&client, key, label, url, iterations, &mut baseline).await?;
        if rolled_up(label) {
            raw.push((*label, p50));
        }
    }

    // The same reads once the rollup worker has computed every day (until
    // then, and for days that change, they compute from `traces FINAL`).
    let t = Instant::now();
    // (The lock is shared with any running stack's worker: wait for it.)
    let pass = loop {
        if let Some(n) =
            query_api::store::run_stats::refresh(&state.0.ch, &state.0.pg, Duration::ZERO).await?
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let prompt_pass = loop {
        if let Some(n) =
            query_api::store::prompt_stats::refresh(&state.0.ch, &state.0.pg, Duration::ZERO)
                .await?
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pass_s = t.elapsed().as_secs_f64();
    let cells: u64 = ch
        .query("SELECT count() FROM agent_daily")
        .fetch_one()
        .await?;
    println!(
        "\nrollup pass: {} organization-days computed into {cells} agent-day rows, and {prompt_pass} prompt-days, in {pass_s:.1} s; the same reads now:",
        pass
    );
    for (label, url, key) in cases.iter().filter(|(l, _, _)| rolled_up(l)) {
        let (p50, _) = measure(&client, key, label, url, iterations, &mut baseline).await?;
        let before = raw
            .iter()
            .find(|(l, _)| l == label)
            .map_or(f64::NAN, |r| r.1);
        println!(
            "  {:<46} {:>9.2}x the p50 before the rollup",
            "",
            p50 / before
        );
    }
    Ok(())
}

/// Spans of the large trace the dashboard's waterfall is measured on.
const LARGE_TRACE_SPANS: u64 = 5_000;

/// `--dashboard`: one rollup pass (as the worker would have run), a trace
/// of [`LARGE_TRACE_SPANS`] spans (a ten-ary tree) in the measured
/// organization, then `web/e2e/perf.mjs` in Chromium; prints its figures.
async fn dashboard_figures(
    ch: &clickhouse::Client,
    state: &query_api::AppState,
    base: &str,
    org_id: uuid::Uuid,
    email: &str,
    agent_id: &str,
    iterations: usize,
) -> anyhow::Result<()> {
    let t = Instant::now();
    while query_api::store::run_stats::refresh(&state.0.ch, &state.0.pg, Duration::ZERO)
        .await?
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("  rollup pass in {:.1} s", t.elapsed().as_secs_f64());
    let trace_id = "00000000-0000-4000-a000-000000005000";
    let started_us = (time::OffsetDateTime::now_utc().unix_timestamp() - 3600) * 1_000_000;
    ch.query(&format!(
        "INSERT INTO traces (org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms, success, \
         outcome, total_tokens, total_cost, metadata, retention_days, version) \
         VALUES (toUUID('{org_id}'), toUUID('{trace_id}'), toUUID('{agent_id}'), 'agent-00', 'completed', \
           fromUnixTimestamp64Micro({started_us}), NULL, 60000, true, 'qualified', 460000, 0.5, map(), 90, 1)"
    ))
    .execute()
    .await?;
    let span =
        |n: &str| format!("toUUID(concat('00000000-0000-0000-a000-', leftPad(hex({n}), 12, '0')))");
    ch.query(&format!(
        "INSERT INTO spans (org_id, trace_id, span_id, parent_span_id, agent_id, agent_name, span_type, name, status, \
         started_at, duration_ms, model, input_tokens, output_tokens, total_tokens, cost, attributes, retention_days, version) \
         SELECT toUUID('{org_id}'), toUUID('{trace_id}'), {sid}, if(number = 0, NULL, {parent}), toUUID('{agent_id}'), 'agent-00', \
           arrayElement(['agent', 'llm', 'tool', 'http', 'db', 'custom'], (number % 6) + 1), \
           concat(arrayElement(['plan', 'classify lead', 'crm lookup', 'fetch page', 'select orders', 'summarize'], (number % 6) + 1), ' ', toString(number)), \
           if(number % 97 = 0, 'failed', 'completed'), fromUnixTimestamp64Micro(toInt64({started_us} + number * 10000)), \
           toInt64(if(number = 0, 60000, 10 + number % 900)), if(number % 6 = 1, 'gpt-4o', NULL), \
           toInt64(number % 800), toInt64(number % 120), toInt64(number % 920), toDecimal64((number % 100) / 100000, 9), \
           map('customer.tier', 'gold', 'step', toString(number)), 90, 1 \
         FROM numbers({LARGE_TRACE_SPANS})",
        sid = span("number"),
        parent = span("intDiv(number - 1, 10)"),
    ))
    .execute()
    .await?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/e2e/perf.mjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .current_dir(script.parent().and_then(|p| p.parent()).unwrap_or(&script))
        .env("AV_BASE_URL", base)
        .env("AV_EMAIL", email)
        .env("AV_PASSWORD", support::BENCH_PASSWORD)
        .env("AV_TRACE_ID", trace_id)
        .env("AV_AGENT_ID", agent_id)
        .env("AV_ITERATIONS", iterations.to_string())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "perf.mjs failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or("{}")
            .as_bytes(),
    )?;
    println!("\ndashboard in Chromium, {iterations} navigations per case after 2 warm-ups (ms from navigation start to content):");
    for c in figures["cases"].as_array().into_iter().flatten() {
        println!(
            "  {:<46} p50 {:>8} p95 {:>8}",
            c["case"].as_str().unwrap_or(""),
            c["p50_ms"],
            c["p95_ms"]
        );
    }
    println!("  spans in the large trace: {}", figures["spans_in_trace"]);
    println!("  waterfall scroll: {}", figures["scroll"]);
    println!(
        "  first page JavaScript: {} bytes gzipped",
        figures["first_page_js_gzip_bytes"]
    );
    Ok(())
}

/// The agents of an organization (ids and names in the same order), as
/// ingestion would record them.
async fn insert_agents(
    ch: &clickhouse::Client,
    org_id: uuid::Uuid,
    ids: &[String],
    names: &[String],
) -> anyhow::Result<()> {
    ch.query(
        &format!(
            "INSERT INTO agents (org_id, agent_id, name, created_at) SELECT toUUID('{org_id}'), toUUID(id), name, now64(6) \
             FROM (SELECT arrayJoin(arrayZip({ids:?}, {names:?})) AS p, p.1 AS id, p.2 AS name)"
        )
        .replace('"', "'"),
    )
    .execute()
    .await?;
    Ok(())
}

/// Whether a case is a read that the run rollup (`agent_daily`) serves.
fn rolled_up(label: &str) -> bool {
    [
        "agent comparison",
        "agents list",
        "agent stats",
        "prompt compare",
    ]
    .iter()
    .any(|r| label.contains(r))
}

/// p50 and p95 of `iterations` GETs after 3 warm-ups, printed as a row;
/// the first call's p50 is the baseline of the ratio column.
async fn measure(
    client: &reqwest::Client,
    key: &str,
    label: &str,
    url: &str,
    iterations: usize,
    baseline: &mut Option<f64>,
) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(iterations);
    let mut status = 0;
    for i in 0..iterations + 3 {
        let started = Instant::now();
        let r = client
            .get(url)
            .bearer_auth(key)
            .timeout(Duration::from_secs(60))
            .send()
            .await?;
        status = r.status().as_u16();
        let _ = r.bytes().await?;
        if i >= 3 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let p =
        |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    let (p50, p95) = (p(0.5), p(0.95));
    let base_ms = *baseline.get_or_insert(p50);
    println!(
        "  {label:<46} {p50:>9.2} {p95:>9.2} {:>9.1} {status:>9}",
        p50 / base_ms
    );
    Ok((p50, p95))
}
