//! The prompt comparison: per-version figures of the runs linked to each
//! version, from the per-day rollup (`prompt_daily`) where it is provably
//! current and from `prompt_links FINAL` joined to `traces FINAL` for every
//! other day, in one query. Always exact (what the join says).
//!
//! The protocol is in `writer/migrations/0011_prompt_daily.sql`. A day's
//! newest computation is current when
//! - it saw at least the day's current windowed `trace_day_inserts` count
//!   (no run of the day or its neighbours changed since: the same rule as
//!   `agent_daily`, [`run_stats::split_days`]), and
//! - no link to a run of that day was ingested at or after its
//!   `links_before` (found through the links ingested since the oldest
//!   `links_before` in use: a small, key-ordered read).
//!
//! Every value is bound (`?`); only this module's own SQL fragments are
//! composed into statements.

use crate::error::AppResult;
use crate::sql::Bind;
use crate::store::run_stats::{self, apply, day_binds, day_of, windowed, DAY_US};
use clickhouse::Row;
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// How long before a computation's start a link must have been ingested
/// for the computation to count it: inserts in flight when it read (a
/// link's `ingested_at` is taken when its insert is formed) are covered
/// by this margin.
const LINK_MARGIN_SECS: u32 = 300;

/// The figures of one (version, day) cell over `traces FINAL` joined to
/// the links, as aggregate states where they merge, in the column order of
/// `prompt_daily` after `links_before`.
const CELL_AGGREGATES: &str = "count() AS runs, \
    countIf(success = true) AS successful, \
    countIf(success = false) AS unsuccessful, \
    countIf(isNotNull(success)) AS with_signal, \
    countIf(status = 'failed') AS failed_status, \
    countIf(isNotNull(total_cost)) AS cost_runs, \
    toInt128(sum(ifNull(total_cost, 0)) * 1000000000) AS cost_nanos, \
    toInt64(sum(ifNull(total_tokens, 0))) AS tokens, \
    toInt64(sum(ifNull(duration_ms, 0))) AS duration_sum, \
    countIf(isNotNull(duration_ms)) AS duration_runs, \
    quantilesExactStateIf(0.5, 0.95)(toFloat64(assumeNotNull(duration_ms)), isNotNull(duration_ms)) AS durations, \
    toInt64(toUnixTimestamp64Micro(min(started_at))) AS first_us, \
    toInt64(toUnixTimestamp64Micro(max(started_at))) AS last_us, \
    sumMapIf(map(CAST(assumeNotNull(outcome) AS String), toUInt64(1)), isNotNull(outcome)) AS outcomes";

const CELL_COLUMNS: &str =
    "runs, successful, unsuccessful, with_signal, failed_status, cost_runs, \
    cost_nanos, tokens, duration_sum, duration_runs, durations, first_us, last_us, outcomes";

/// The linked runs of one prompt on some days (`?` binds: org, window
/// start and end in µs, days, org, name), one row per (version, day).
const RAW_CELLS: &str = "SELECT l.prompt_version AS prompt_version, toDate(t.started_at) AS day, \
    {CELL_AGGREGATES}, max(t.retention_days) AS retention \
    FROM prompt_links AS l FINAL \
    INNER JOIN ( \
      SELECT trace_id, status, success, outcome, duration_ms, total_cost, total_tokens, started_at, retention_days \
      FROM traces FINAL \
      WHERE org_id = toUUID(?) \
        AND started_at >= fromUnixTimestamp64Micro(?) AND started_at <= fromUnixTimestamp64Micro(?) \
        AND toUInt16(toDate(started_at)) IN ? \
    ) AS t ON t.trace_id = l.trace_id \
    WHERE l.org_id = toUUID(?) AND l.prompt_name = ? \
    GROUP BY prompt_version, day";

/// The range of ClickHouse's `DateTime64(6)` (1900-01-01 to 2299-12-31),
/// the open ends of a window.
const MIN_US: i64 = -2_208_988_800_000_000;
const MAX_US: i64 = 10_413_791_999_000_000;

fn raw_cells() -> String {
    RAW_CELLS.replace("{CELL_AGGREGATES}", CELL_AGGREGATES)
}

/// One version's figures over its linked runs.
#[derive(Debug, Row, Deserialize)]
pub struct VersionTotals {
    pub prompt_version: u32,
    pub runs: u64,
    pub successful: u64,
    pub unsuccessful: u64,
    pub with_signal: u64,
    pub failed_status: u64,
    pub cost_runs: u64,
    /// Nano-dollars, 128 bits: a sum of stored amounts cannot overflow.
    pub cost_nanos: i128,
    pub tokens: i64,
    pub duration_sum: i64,
    pub duration_runs: u64,
    /// Exact p50 and p95 of the runs' durations.
    pub durations: Vec<f64>,
    pub first_us: i64,
    pub last_us: i64,
    pub outcomes: Vec<(String, u64)>,
}

/// What is known of one prompt's days: the organization's insert counts,
/// and each day's newest computation.
struct DayState {
    inserts: BTreeMap<u16, u64>,
    /// Day -> (inserts_seen, links_before) of its newest computation.
    computed: HashMap<u16, (u64, u32)>,
    /// Day -> the newest ingestion (unix s) of a link to one of its runs,
    /// among links ingested since the oldest `links_before` in use.
    linked: HashMap<u16, u32>,
}

impl DayState {
    /// Whether a day's newest computation is current.
    fn current(&self, day: u16) -> bool {
        self.computed.get(&day).is_some_and(|&(seen, before)| {
            seen >= windowed(&self.inserts, day)
                && self.linked.get(&day).is_none_or(|&newest| newest < before)
        })
    }
}

/// Read what decides which days are current: two small reads.
async fn day_state(
    ch: &clickhouse::Client,
    org_id: Uuid,
    name: &str,
    days: Option<(i64, i64)>,
) -> AppResult<DayState> {
    let org = org_id.to_string();
    let (lo, hi) = days.unwrap_or((0, 65_535));
    let rows: Vec<(u16, u64, u64, u32)> = ch
        .query(
            "SELECT d, sum(n), max(s), max(b) FROM ( \
               SELECT toUInt16(day) AS d, toUInt64(inserts) AS n, toUInt64(0) AS s, toUInt32(0) AS b \
               FROM trace_day_inserts WHERE org_id = toUUID(?) AND day >= toDate(?) AND day <= toDate(?) \
               UNION ALL \
               SELECT toUInt16(day), toUInt64(0), argMax(inserts_seen, computed_at), toUInt32(argMax(links_before, computed_at)) \
               FROM prompt_daily WHERE org_id = toUUID(?) AND prompt_name = ? AND day >= toDate(?) AND day <= toDate(?) \
               GROUP BY day) \
             GROUP BY d",
        )
        .bind(&org)
        .bind(lo.max(0))
        .bind(hi.clamp(0, 65_535))
        .bind(&org)
        .bind(name)
        .bind(lo.max(0))
        .bind(hi.clamp(0, 65_535))
        .fetch_all()
        .await?;
    let inserts = rows.iter().map(|&(d, n, _, _)| (d, n)).collect();
    let computed: HashMap<u16, (u64, u32)> = rows
        .iter()
        .filter(|r| r.3 > 0)
        .map(|&(d, _, s, b)| (d, (s, b)))
        .collect();
    let mut linked = HashMap::new();
    if let Some(since) = computed.values().map(|&(_, b)| b).min() {
        let recent: Vec<(u16, u32)> = ch
            .query(
                "SELECT toUInt16(toDate(t.started_at)) AS d, max(l.li) FROM \
                   (SELECT trace_id, toUInt32(max(ingested_at)) AS li FROM prompt_links \
                    WHERE org_id = toUUID(?) AND prompt_name = ? AND ingested_at >= toDateTime(?) \
                    GROUP BY trace_id) AS l \
                 INNER JOIN \
                   (SELECT trace_id, started_at FROM traces WHERE org_id = toUUID(?) AND trace_id IN \
                      (SELECT trace_id FROM prompt_links \
                       WHERE org_id = toUUID(?) AND prompt_name = ? AND ingested_at >= toDateTime(?))) AS t \
                 ON t.trace_id = l.trace_id \
                 GROUP BY d",
            )
            .bind(&org)
            .bind(name)
            .bind(since)
            .bind(&org)
            .bind(&org)
            .bind(name)
            .bind(since)
            .fetch_all()
            .await?;
        linked = recent.into_iter().collect();
    }
    Ok(DayState {
        inserts,
        computed,
        linked,
    })
}

/// The figures of each of `versions` of `name` over the runs linked to it
/// whose start lies in the window (inclusive, µs); versions without linked
/// runs are absent.
pub async fn compare(
    ch: &clickhouse::Client,
    org_id: Uuid,
    name: &str,
    versions: &[u32],
    start_us: Option<i64>,
    end_us: Option<i64>,
) -> AppResult<Vec<VersionTotals>> {
    let first = start_us.map(day_of);
    let last = end_us.map(day_of);
    let state = day_state(
        ch,
        org_id,
        name,
        Some((first.map_or(0, |f| f - 1), last.map_or(65_535, |l| l + 1))),
    )
    .await?;
    let whole = |d: i64| {
        start_us.is_none_or(|s| s <= d * DAY_US) && end_us.is_none_or(|e| (d + 1) * DAY_US - 1 <= e)
    };
    let (mut fresh, mut stale) = (Vec::new(), Vec::new());
    for (&day, &n) in &state.inserts {
        let d = i64::from(day);
        if n == 0 || first.is_some_and(|f| d < f) || last.is_some_and(|l| d > l) {
            continue;
        }
        if state.current(day) && whole(d) {
            fresh.push(day);
        } else {
            stale.push(day);
        }
    }
    let org = Bind::Str(org_id.to_string());
    let (mut parts, mut binds) = (Vec::new(), Vec::new());
    if !fresh.is_empty() {
        parts.push(format!(
            "SELECT prompt_version, day, {CELL_COLUMNS}, retention_days AS retention FROM prompt_daily \
             WHERE org_id = toUUID(?) AND prompt_name = ? AND day IN ? AND runs > 0 \
               AND (day, computed_at) IN (SELECT day, max(computed_at) FROM prompt_daily \
                                          WHERE org_id = toUUID(?) AND prompt_name = ? AND day IN ? GROUP BY day)"
        ));
        binds.extend([org.clone(), Bind::Str(name.to_string()), day_binds(&fresh)]);
        binds.extend([org.clone(), Bind::Str(name.to_string()), day_binds(&fresh)]);
    }
    if !stale.is_empty() {
        parts.push(raw_cells());
        binds.extend([
            org.clone(),
            Bind::Int(start_us.unwrap_or(MIN_US).clamp(MIN_US, MAX_US)),
            Bind::Int(end_us.unwrap_or(MAX_US).clamp(MIN_US, MAX_US)),
            day_binds(&stale),
            org.clone(),
            Bind::Str(name.to_string()),
        ]);
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    tracing::debug!(
        fresh = fresh.len(),
        stale = stale.len(),
        "prompt comparison plan"
    );
    let q = ch.query(&format!(
        "SELECT prompt_version, sum(runs) AS runs, sum(successful) AS successful, \
           sum(unsuccessful) AS unsuccessful, sum(with_signal) AS with_signal, \
           sum(failed_status) AS failed_status, sum(cost_runs) AS cost_runs, \
           sum(cost_nanos) AS cost_nanos, sum(tokens) AS tokens, sum(duration_sum) AS duration_sum, \
           sum(duration_runs) AS duration_runs, \
           quantilesExactMerge(0.5, 0.95)(durations) AS durations, \
           min(first_us) AS first_us, max(last_us) AS last_us, \
           CAST(sumMap(outcomes) AS Array(Tuple(String, UInt64))) AS outcomes \
         FROM ({}) WHERE prompt_version IN ? GROUP BY prompt_version",
        parts.join(" UNION ALL ")
    ));
    binds.push(Bind::UInts(
        versions.iter().map(|&v| u64::from(v)).collect(),
    ));
    Ok(apply(q, &binds).fetch_all().await?)
}

/// Serializes passes across replicas (any value shared by all of them).
pub const LOCK_KEY: i64 = 0x6176_7072_6f6d_7074; // "avprompt"

/// One pass: for every prompt with links, compute each day whose newest
/// computation is not current and which has settled. Returns the number of
/// (prompt, day) cells computed, or `None` when another replica holds the
/// lock. A prompt whose computation fails is logged and skipped; the pass
/// goes on with the others.
pub async fn refresh(
    ch: &clickhouse::Client,
    pg: &PgPool,
    settle: Duration,
) -> anyhow::Result<Option<usize>> {
    crate::workers::exclusive(pg, LOCK_KEY, refresh_locked(ch, settle)).await
}

async fn refresh_locked(ch: &clickhouse::Client, settle: Duration) -> anyhow::Result<usize> {
    let prompts: Vec<(String, String)> = ch
        .query("SELECT DISTINCT toString(org_id), prompt_name FROM prompt_links")
        .fetch_all()
        .await?;
    let mut computed = 0;
    for (org, name) in prompts {
        let Ok(org_id) = Uuid::parse_str(&org) else {
            continue;
        };
        match refresh_prompt(ch, org_id, &name, settle).await {
            Ok(n) => computed += n,
            Err(e) => {
                tracing::warn!(error = %e, %org_id, prompt = %name, "prompt rollup failed; skipped")
            }
        }
    }
    Ok(computed)
}

async fn refresh_prompt(
    ch: &clickhouse::Client,
    org_id: Uuid,
    name: &str,
    settle: Duration,
) -> anyhow::Result<usize> {
    // The clock of every stamp is ClickHouse's (links' `ingested_at`).
    let now: u32 = ch.query("SELECT toUInt32(now())").fetch_one().await?;
    let links_before = now.saturating_sub(LINK_MARGIN_SECS);
    let state = day_state(ch, org_id, name, None).await?;
    let last_inserts: BTreeMap<u16, u32> = ch
        .query(
            "SELECT toUInt16(day), toUInt32(max(ingested_at)) FROM trace_day_inserts \
             WHERE org_id = toUUID(?) GROUP BY day",
        )
        .bind(org_id.to_string())
        .fetch_all::<(u16, u32)>()
        .await?
        .into_iter()
        .collect();
    let settle = u32::try_from(settle.as_secs()).unwrap_or(u32::MAX);
    let due: Vec<(u16, u64)> = state
        .inserts
        .iter()
        .filter(|&(&day, &n)| n > 0 && !state.current(day))
        .filter(|&(&day, _)| {
            let newest = (day.saturating_sub(1)..=day.saturating_add(1))
                .filter_map(|d| last_inserts.get(&d))
                .max()
                .copied()
                .unwrap_or(0)
                .max(state.linked.get(&day).copied().unwrap_or(0));
            now.saturating_sub(newest) >= settle
        })
        .map(|(&day, _)| (day, windowed(&state.inserts, day)))
        .collect();
    for chunk in due.chunks(run_stats::DAYS_PER_STATEMENT) {
        compute(ch, org_id, name, chunk, links_before).await?;
    }
    Ok(due.len())
}

/// Compute `days` of one prompt into `prompt_daily`, each stamped with its
/// windowed count and `links_before`; days without linked runs get an
/// empty stamp row.
async fn compute(
    ch: &clickhouse::Client,
    org_id: Uuid,
    name: &str,
    days: &[(u16, u64)],
    links_before: u32,
) -> anyhow::Result<()> {
    let list: Vec<u16> = days.iter().map(|(d, _)| *d).collect();
    let counts: Vec<u64> = days.iter().map(|(_, n)| *n).collect();
    let lo = i64::from(list[0]) * DAY_US;
    let hi = (i64::from(list[list.len() - 1]) + 1) * DAY_US - 1;
    let org = Bind::Str(org_id.to_string());
    let computed_at: i64 = ch
        .query("SELECT toInt64(toUnixTimestamp64Micro(now64(6)))")
        .fetch_one()
        .await?;
    // A cell lives as long as the longest-kept of its runs; an empty stamp
    // for 90 days (the longest plan), it only saves recomputation.
    let q = ch.query(&format!(
        "INSERT INTO prompt_daily (org_id, prompt_name, day, prompt_version, computed_at, inserts_seen, \
           links_before, {CELL_COLUMNS}, ingested_at, retention_days) \
         SELECT toUUID(?), ?, day, prompt_version, fromUnixTimestamp64Micro(?), \
                transform(toUInt16(day), ?, ?, toUInt64(0)), toDateTime(?), {CELL_COLUMNS}, now(), retention \
         FROM ({raw}) \
         SETTINGS max_insert_threads = 1, min_insert_block_size_rows = 1000000000, \
                  min_insert_block_size_bytes = 100000000000",
        raw = raw_cells()
    ));
    apply(
        q,
        &[
            org.clone(),
            Bind::Str(name.to_string()),
            Bind::Int(computed_at),
            day_binds(&list),
            Bind::UInts(counts.clone()),
            Bind::Int(i64::from(links_before)),
            org.clone(),
            Bind::Int(lo),
            Bind::Int(hi),
            day_binds(&list),
            org.clone(),
            Bind::Str(name.to_string()),
        ],
    )
    .execute()
    .await?;
    let stamped: Vec<u16> = ch
        .query(
            "SELECT DISTINCT toUInt16(day) FROM prompt_daily \
             WHERE org_id = toUUID(?) AND prompt_name = ? AND computed_at = fromUnixTimestamp64Micro(?)",
        )
        .bind(org_id.to_string())
        .bind(name)
        .bind(computed_at)
        .fetch_all()
        .await?;
    let empty: Vec<(u64, u64)> = days
        .iter()
        .filter(|(d, _)| !stamped.contains(d))
        .map(|&(d, n)| (u64::from(d), n))
        .collect();
    if !empty.is_empty() {
        let q = ch.query(&format!(
            "INSERT INTO prompt_daily (org_id, prompt_name, day, prompt_version, computed_at, inserts_seen, \
               links_before, {CELL_COLUMNS}, ingested_at, retention_days) \
             SELECT toUUID(?), ?, toDate(toUInt16(p.1)), 0, fromUnixTimestamp64Micro(?), p.2, toDateTime(?), \
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
                    quantilesExactStateIf(0.5, 0.95)(toFloat64(0), false), 0, 0, \
                    CAST(map() AS Map(String, UInt64)), now(), 90 \
             FROM (SELECT arrayJoin(?) AS p) GROUP BY p"
        ));
        apply(
            q,
            &[
                org,
                Bind::Str(name.to_string()),
                Bind::Int(computed_at),
                Bind::Int(i64::from(links_before)),
                Bind::Pairs(empty),
            ],
        )
        .execute()
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(
        inserts: &[(u16, u64)],
        computed: &[(u16, u64, u32)],
        linked: &[(u16, u32)],
    ) -> DayState {
        DayState {
            inserts: inserts.iter().copied().collect(),
            computed: computed.iter().map(|&(d, s, b)| (d, (s, b))).collect(),
            linked: linked.iter().copied().collect(),
        }
    }

    #[test]
    fn a_day_is_current_when_no_run_changed_and_no_link_came_since() {
        let s = state(
            &[(10, 2), (11, 3), (20, 1)],
            &[(10, 5, 1_000), (11, 4, 1_000), (20, 1, 1_000)],
            &[(20, 1_000), (10, 999)],
        );
        assert!(s.current(10), "its link predates the computation");
        assert!(!s.current(11), "a run of the day or a neighbour changed");
        assert!(!s.current(20), "a link came at the computation's watermark");
        assert!(!s.current(30), "never computed");
    }
}
