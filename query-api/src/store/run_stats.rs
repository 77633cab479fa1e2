//! Per-day run rollups (`agent_daily`) and the reads that combine them with
//! raw `traces FINAL` rows.
//!
//! The protocol is in `writer/migrations/0004_agent_daily.sql`. In short:
//! `trace_day_inserts` counts every row inserted into `traces` per
//! (organization, start day); a computation of a day is stamped with the
//! count of that day and its two neighbours as read *before* the
//! computation read `traces`; a read uses a day's rollup only when its
//! newest computation saw at least the current count, and computes every
//! other day of its window from `traces FINAL` in the same query. So a read
//! is always exact (what `traces FINAL` says), and its cost follows the days
//! that changed since the last computation, not the runs of the window.
//!
//! Every value is bound (`?`); only this module's own SQL fragments are
//! composed into statements.

use crate::error::AppResult;
use crate::sql::Bind;
use clickhouse::Row;
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// A UTC day in microseconds.
pub const DAY_US: i64 = 86_400_000_000;

/// Day numbers (days since 1970-01-01, as ClickHouse's `Date`) to dates
/// and back.
pub fn date_of(day: u16) -> time::Date {
    time::Date::from_calendar_date(1970, time::Month::January, 1).expect("valid date")
        + time::Duration::days(i64::from(day))
}

pub fn day_number(date: time::Date) -> i64 {
    (date.midnight().assume_utc().unix_timestamp()).div_euclid(86_400)
}

/// One (agent, day) cell's aggregates over `traces FINAL`, in the column
/// order of `agent_daily` after `inserts_seen`. Used by the worker to fill
/// the rollup and by reads for the days the rollup does not cover yet.
const CELL_AGGREGATES: &str = "count() AS runs, \
    countIf(success = true) AS successful, \
    countIf(success = false) AS unsuccessful, \
    countIf(isNotNull(success)) AS with_signal, \
    countIf(status = 'failed') AS failed_status, \
    countIf(isNotNull(total_cost)) AS cost_runs, \
    toInt128(sum(ifNull(total_cost, 0)) * 1000000000) AS cost_nanos, \
    countIf(status = 'completed' AND isNotNull(total_cost)) AS completed_cost_runs, \
    toInt128(sumIf(ifNull(total_cost, 0), status = 'completed') * 1000000000) AS completed_cost_nanos, \
    toInt64(sum(ifNull(total_tokens, 0))) AS tokens, \
    toInt64(sum(ifNull(duration_ms, 0))) AS duration_sum, \
    countIf(isNotNull(duration_ms)) AS duration_runs, \
    countIf(isNotNull(duration_ms) AND status = 'completed') AS completed_duration_runs, \
    toInt64(toUnixTimestamp64Micro(max(started_at))) AS last_run_us, \
    quantilesStateIf(0.5, 0.95, 0.99)(assumeNotNull(duration_ms), isNotNull(duration_ms)) AS durations, \
    quantilesStateIf(0.5, 0.95, 0.99)(assumeNotNull(duration_ms), isNotNull(duration_ms) AND status = 'completed') AS completed_durations, \
    sumMapIf(map(CAST(assumeNotNull(outcome) AS String), toUInt64(1)), isNotNull(outcome)) AS outcomes, \
    sumMapIf(map(CAST(assumeNotNull(outcome) AS String), toUInt64(1)), isNotNull(outcome) AND isNotNull(total_cost)) AS outcome_cost_runs, \
    sumMapIf(map(CAST(assumeNotNull(outcome) AS String), toInt128(toDecimal128(assumeNotNull(total_cost), 9) * 1000000000)), \
             isNotNull(outcome) AND isNotNull(total_cost)) AS outcome_cost_nanos";

const CELL_COLUMNS: &str = "runs, successful, unsuccessful, with_signal, failed_status, cost_runs, cost_nanos, \
    completed_cost_runs, completed_cost_nanos, tokens, duration_sum, duration_runs, completed_duration_runs, \
    last_run_us, durations, completed_durations, outcomes, outcome_cost_runs, outcome_cost_nanos";

/// Sums over cells; `quantiles` interpolate over the merged samples (exact
/// up to 8,192 runs per result, like `quantile`).
const MERGED: &str = "sum(runs) AS runs, sum(successful) AS successful, sum(unsuccessful) AS unsuccessful, \
    sum(with_signal) AS with_signal, sum(failed_status) AS failed_status, sum(cost_runs) AS cost_runs, \
    sum(cost_nanos) AS cost_nanos, sum(completed_cost_runs) AS completed_cost_runs, \
    sum(completed_cost_nanos) AS completed_cost_nanos, sum(tokens) AS tokens, sum(duration_sum) AS duration_sum, \
    sum(duration_runs) AS duration_runs, sum(completed_duration_runs) AS completed_duration_runs, \
    max(last_run_us) AS last_run_us, quantilesMerge(0.5, 0.95, 0.99)(durations) AS durations, \
    quantilesMerge(0.5, 0.95, 0.99)(completed_durations) AS completed_durations, \
    CAST(sumMap(outcomes) AS Array(Tuple(String, UInt64))) AS outcomes, \
    CAST(sumMap(outcome_cost_runs) AS Array(Tuple(String, UInt64))) AS outcome_cost_runs, \
    CAST(sumMap(outcome_cost_nanos) AS Array(Tuple(String, Int128))) AS outcome_cost_nanos";

/// Totals of an agent, over a whole window or one day of it.
#[derive(Debug, Row, Deserialize)]
pub struct Totals {
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    /// Totals of the whole window, not of one day.
    pub whole: bool,
    /// Days since 1970-01-01 (UTC); meaningless when `whole`.
    pub day: u16,
    pub runs: u64,
    pub successful: u64,
    pub unsuccessful: u64,
    pub with_signal: u64,
    pub failed_status: u64,
    pub cost_runs: u64,
    /// 128 bits: a sum of stored amounts cannot overflow.
    pub cost_nanos: i128,
    pub completed_cost_runs: u64,
    pub completed_cost_nanos: i128,
    pub tokens: i64,
    pub duration_sum: i64,
    pub duration_runs: u64,
    pub completed_duration_runs: u64,
    pub last_run_us: i64,
    /// p50, p95, p99 of the runs' durations.
    pub durations: Vec<f64>,
    /// p50, p95, p99 of completed runs' durations.
    pub completed_durations: Vec<f64>,
    /// Runs by outcome.
    pub outcomes: Vec<(String, u64)>,
    /// Runs with a cost, by outcome.
    pub outcome_cost_runs: Vec<(String, u64)>,
    /// The sum of those runs' costs (nano-dollars), by outcome.
    pub outcome_cost_nanos: Vec<(String, i128)>,
}

impl Totals {
    /// Quantile `i` (0: p50, 1: p95, 2: p99) of all runs, if any has a
    /// duration.
    pub fn duration_quantile(&self, i: usize) -> Option<f64> {
        (self.duration_runs > 0)
            .then(|| self.durations.get(i).copied())
            .flatten()
    }

    pub fn completed_duration_quantile(&self, i: usize) -> Option<f64> {
        (self.completed_duration_runs > 0)
            .then(|| self.completed_durations.get(i).copied())
            .flatten()
    }

    pub fn avg_duration_ms(&self) -> Option<f64> {
        (self.duration_runs > 0).then(|| self.duration_sum as f64 / self.duration_runs as f64)
    }
}

/// What a read covers: an organization, optionally some agents, optionally
/// an inclusive window of start times (µs since the epoch).
pub struct Scope<'a> {
    pub org_id: Uuid,
    pub agents: Option<&'a [Uuid]>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
}

/// The cells of a scope: a subquery with one row per (agent, day) that has
/// runs, from the rollup where it is current and from `traces FINAL`
/// elsewhere.
pub struct Cells {
    sql: String,
    binds: Vec<Bind>,
}

pub(crate) fn day_of(us: i64) -> i64 {
    us.div_euclid(DAY_US)
}

pub(crate) fn day_binds(days: &[u16]) -> Bind {
    Bind::UInts(days.iter().map(|&d| u64::from(d)).collect())
}

/// Per-day insert counts of `rows` (day, count) summed over each day and
/// its neighbours.
pub(crate) fn windowed(counts: &BTreeMap<u16, u64>, day: u16) -> u64 {
    let at = |d: i64| -> u64 {
        u16::try_from(d)
            .ok()
            .and_then(|d| counts.get(&d))
            .copied()
            .unwrap_or(0)
    };
    let d = i64::from(day);
    at(d - 1) + at(d) + at(d + 1)
}

/// Which days of a scope the rollup covers: days with inserts, split into
/// (fresh, stale). A day is fresh when it lies wholly inside the window and
/// its newest computation saw at least the current windowed count.
pub(crate) fn split_days(
    inserts: &BTreeMap<u16, u64>,
    seen: &HashMap<u16, u64>,
    first: Option<i64>,
    last: Option<i64>,
    whole: impl Fn(i64) -> bool,
) -> (Vec<u16>, Vec<u16>) {
    let (mut fresh, mut stale) = (Vec::new(), Vec::new());
    for (&day, &n) in inserts {
        let d = i64::from(day);
        if n == 0 || first.is_some_and(|f| d < f) || last.is_some_and(|l| d > l) {
            continue;
        }
        let current = seen.get(&day).is_some_and(|&s| s >= windowed(inserts, day));
        if current && whole(d) {
            fresh.push(day);
        } else {
            stale.push(day);
        }
    }
    (fresh, stale)
}

/// Plan the cells of `scope`: one small read (insert counts and newest
/// computations per day) decides which days come from the rollup.
pub async fn cells(ch: &clickhouse::Client, scope: &Scope<'_>) -> AppResult<Cells> {
    let org = Bind::Str(scope.org_id.to_string());
    let first = scope.start_us.map(day_of);
    let last = scope.end_us.map(day_of);
    // The days of the window and their neighbours (the stamps count them).
    let lo_day = first.map_or(0, |f| (f - 1).max(0));
    let hi_day = last.map_or(65_535, |l| (l + 1).clamp(0, 65_535));
    // One round trip: per day, the insert count and the newest
    // computation's stamp.
    let range = "org_id = toUUID(?) AND day >= toDate(?) AND day <= toDate(?)";
    let mut q = ch.query(&format!(
        "SELECT d, sum(n), max(s) FROM ( \
           SELECT toUInt16(day) AS d, toUInt64(inserts) AS n, toUInt64(0) AS s FROM trace_day_inserts \
           WHERE {range} \
           UNION ALL \
           SELECT toUInt16(day), toUInt64(0), inserts_seen FROM agent_daily WHERE {range}) \
         GROUP BY d"
    ));
    for _ in 0..2 {
        q = apply(q, &[org.clone(), Bind::Int(lo_day), Bind::Int(hi_day)]);
    }
    let days: Vec<(u16, u64, u64)> = q.fetch_all().await?;
    let inserts: BTreeMap<u16, u64> = days.iter().map(|&(d, n, _)| (d, n)).collect();
    let seen: HashMap<u16, u64> = days
        .iter()
        .filter(|&&(_, _, s)| s > 0)
        .map(|&(d, _, s)| (d, s))
        .collect();
    let whole = |d: i64| {
        scope.start_us.is_none_or(|s| s <= d * DAY_US)
            && scope.end_us.is_none_or(|e| (d + 1) * DAY_US - 1 <= e)
    };
    let (fresh, stale) = split_days(&inserts, &seen, first, last, whole);
    let agents = scope
        .agents
        .map(|a| Bind::Strs(a.iter().map(Uuid::to_string).collect()));
    let agent_filter = if agents.is_some() {
        " AND agent_id IN ?"
    } else {
        ""
    };
    let (mut parts, mut binds) = (Vec::new(), Vec::new());
    if !fresh.is_empty() {
        parts.push(format!(
            "SELECT agent_id, day, {CELL_COLUMNS} FROM agent_daily \
             WHERE org_id = toUUID(?) AND day IN ?{agent_filter} AND runs > 0 \
               AND (day, inserts_seen) IN (SELECT day, max(inserts_seen) FROM agent_daily \
                                           WHERE org_id = toUUID(?) AND day IN ? GROUP BY day) \
             LIMIT 1 BY day, agent_id"
        ));
        binds.extend([org.clone(), day_binds(&fresh)]);
        binds.extend(agents.clone());
        binds.extend([org.clone(), day_binds(&fresh)]);
    }
    if !stale.is_empty() {
        let lo = i64::from(stale[0]) * DAY_US;
        let hi = (i64::from(stale[stale.len() - 1]) + 1) * DAY_US - 1;
        let lo = scope.start_us.map_or(lo, |s| s.max(lo));
        let hi = scope.end_us.map_or(hi, |e| e.min(hi));
        parts.push(format!(
            "SELECT agent_id, toDate(started_at) AS day, {CELL_AGGREGATES} FROM traces FINAL \
             WHERE org_id = toUUID(?){agent_filter} \
               AND started_at >= fromUnixTimestamp64Micro(?) AND started_at <= fromUnixTimestamp64Micro(?) \
               AND toUInt16(toDate(started_at)) IN ? \
             GROUP BY agent_id, day"
        ));
        binds.push(org.clone());
        binds.extend(agents.clone());
        binds.extend([Bind::Int(lo), Bind::Int(hi), day_binds(&stale)]);
    }
    if parts.is_empty() {
        parts.push(format!(
            "SELECT agent_id, day, {CELL_COLUMNS} FROM agent_daily WHERE 0"
        ));
    }
    let sql = parts.join(" UNION ALL ");
    tracing::debug!(fresh = fresh.len(), stale = stale.len(), %sql, "run statistics plan");
    Ok(Cells { sql, binds })
}

pub(crate) fn apply(mut q: clickhouse::query::Query, binds: &[Bind]) -> clickhouse::query::Query {
    let mut f = crate::sql::Filter::default();
    f.bind_more(binds.iter().cloned());
    q = f.apply(q);
    q
}

/// How [`Cells::totals`] groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One row per agent over the whole window.
    Agent,
    /// One row per agent and day, days in order.
    AgentDay,
    /// Both, from one scan (`Totals::whole` tells them apart).
    Both,
}

impl Cells {
    /// Totals of the cells, grouped as asked.
    pub async fn totals(
        &self,
        ch: &clickhouse::Client,
        grouping: Grouping,
    ) -> AppResult<Vec<Totals>> {
        let (whole, day, group) = match grouping {
            Grouping::Agent => ("true", "0", "agent_id"),
            Grouping::AgentDay => ("false", "day", "agent_id, day"),
            Grouping::Both => (
                "grouping(day) = 1",
                "day",
                "GROUPING SETS ((agent_id), (agent_id, day))",
            ),
        };
        let q = ch.query(&format!(
            "SELECT agent_id, toBool({whole}) AS whole, toUInt16({day}) AS day, {MERGED} \
             FROM ({sql}) GROUP BY {group} ORDER BY whole DESC, day, agent_id",
            sql = self.sql
        ));
        Ok(apply(q, &self.binds).fetch_all().await?)
    }
}

/// How the rollup worker runs.
#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// Time between passes; zero disables the worker.
    pub interval: Duration,
    /// A day (with its neighbours) must have had no insert for this long
    /// before it is computed, so that a day still receiving runs is not
    /// recomputed on every pass (reads compute it raw meanwhile).
    pub settle: Duration,
}

/// Days of one organization per computation: bounds the rows (agents x
/// days) that must land in one part.
pub(crate) const DAYS_PER_STATEMENT: usize = 31;

/// Serializes passes across replicas (any value; it only has to be the same
/// everywhere).
pub const LOCK_KEY: i64 = 0x6176_726f_6c6c_7570; // "avrollup"

#[derive(Row, Deserialize)]
struct InsertCount {
    #[serde(with = "clickhouse::serde::uuid")]
    org_id: Uuid,
    day: u16,
    inserts: u64,
    last_insert: u32,
}

/// One pass of the rollup worker: compute every day whose rollup is behind
/// and which has settled. Returns the number of days computed, or `None`
/// when another replica holds the lock. Safe to run on several replicas at
/// once even without the lock (each computation is stamped with the counts
/// it read first); the lock only saves the duplicate work.
pub async fn refresh(
    ch: &clickhouse::Client,
    pg: &PgPool,
    settle: Duration,
) -> anyhow::Result<Option<usize>> {
    // A transaction-level lock: however the pass ends (an error, a dropped
    // future), the transaction ends and the lock with it.
    crate::workers::exclusive(pg, LOCK_KEY, refresh_locked(ch, settle)).await
}

async fn refresh_locked(ch: &clickhouse::Client, settle: Duration) -> anyhow::Result<usize> {
    let now: u32 = ch.query("SELECT toUInt32(now())").fetch_one().await?;
    let rows: Vec<InsertCount> = ch
        .query(
            "SELECT org_id, toUInt16(day) AS day, sum(inserts) AS inserts, toUInt32(max(ingested_at)) AS last_insert \
             FROM trace_day_inserts GROUP BY org_id, day",
        )
        .fetch_all()
        .await?;
    let seen: HashMap<(Uuid, u16), u64> = ch
        .query("SELECT toString(org_id), toUInt16(day), max(inserts_seen) FROM agent_daily GROUP BY org_id, day")
        .fetch_all::<(String, u16, u64)>()
        .await?
        .into_iter()
        .filter_map(|(org, day, n)| Some(((Uuid::parse_str(&org).ok()?, day), n)))
        .collect();
    /// An organization's insert counts and newest insert (unix seconds)
    /// per day.
    #[derive(Default)]
    struct OrgDays {
        counts: BTreeMap<u16, u64>,
        last: BTreeMap<u16, u32>,
    }
    let mut orgs: HashMap<Uuid, OrgDays> = HashMap::new();
    for r in rows {
        let days = orgs.entry(r.org_id).or_default();
        days.counts.insert(r.day, r.inserts);
        days.last.insert(r.day, r.last_insert);
    }
    let settle = u32::try_from(settle.as_secs()).unwrap_or(u32::MAX);
    let mut computed = 0;
    for (org, OrgDays { counts, last }) in &orgs {
        let mut due: Vec<(u16, u64)> = Vec::new();
        for (&day, &n) in counts {
            if n == 0 {
                continue;
            }
            let window = windowed(counts, day);
            if seen.get(&(*org, day)).is_some_and(|&s| s >= window) {
                continue;
            }
            let newest = (day.saturating_sub(1)..=day.saturating_add(1))
                .filter_map(|d| last.get(&d))
                .max()
                .copied()
                .unwrap_or(0);
            if now.saturating_sub(newest) < settle {
                continue;
            }
            due.push((day, window));
        }
        for chunk in due.chunks(DAYS_PER_STATEMENT) {
            compute(ch, *org, chunk).await?;
            computed += chunk.len();
        }
    }
    Ok(computed)
}

/// Compute `days` of `org` from `traces FINAL` into `agent_daily`, each
/// stamped with its windowed count. One statement, squashed into one block
/// so that a day's rows become visible together.
async fn compute(ch: &clickhouse::Client, org: Uuid, days: &[(u16, u64)]) -> anyhow::Result<()> {
    let list: Vec<u16> = days.iter().map(|(d, _)| *d).collect();
    let counts: Vec<u64> = days.iter().map(|(_, n)| *n).collect();
    let pairs: Vec<(u64, u64)> = days.iter().map(|&(d, n)| (u64::from(d), n)).collect();
    let lo = i64::from(list[0]) * DAY_US;
    let hi = (i64::from(list[list.len() - 1]) + 1) * DAY_US - 1;
    let org = Bind::Str(org.to_string());
    let q = ch.query(&format!(
        "INSERT INTO agent_daily (org_id, day, agent_id, inserts_seen, {CELL_COLUMNS}, ingested_at, retention_days) \
         SELECT org_id, toDate(started_at) AS day, agent_id, \
                transform(toUInt16(day), ?, ?, toUInt64(0)) AS inserts_seen, \
                {CELL_AGGREGATES}, max(ingested_at), max(retention_days) \
         FROM traces FINAL \
         WHERE org_id = toUUID(?) \
           AND started_at >= fromUnixTimestamp64Micro(?) AND started_at <= fromUnixTimestamp64Micro(?) \
           AND toUInt16(toDate(started_at)) IN ? \
         GROUP BY org_id, day, agent_id \
         SETTINGS max_insert_threads = 1, min_insert_block_size_rows = 1000000000, \
                  min_insert_block_size_bytes = 100000000000"
    ));
    apply(
        q,
        &[
            day_binds(&list),
            Bind::UInts(counts),
            org.clone(),
            Bind::Int(lo),
            Bind::Int(hi),
            day_binds(&list),
        ],
    )
    .execute()
    .await?;
    // A day whose runs all moved to another day computes to no rows; stamp
    // it with an empty row (which reads skip: `runs > 0`) so that it counts
    // as current instead of being recomputed on every pass. It expires
    // after a day, like a stamp nobody needs.
    let q = ch.query(
        "SELECT DISTINCT toUInt16(day) FROM agent_daily \
         WHERE org_id = toUUID(?) AND (toUInt16(day), inserts_seen) IN ?",
    );
    let stamped: Vec<u16> = apply(q, &[org.clone(), Bind::Pairs(pairs)])
        .fetch_all()
        .await?;
    let empty: Vec<(u64, u64)> = days
        .iter()
        .filter(|(d, _)| !stamped.contains(d))
        .map(|&(d, n)| (u64::from(d), n))
        .collect();
    if !empty.is_empty() {
        let q = ch.query(&format!(
            "INSERT INTO agent_daily (org_id, day, agent_id, inserts_seen, {CELL_COLUMNS}, ingested_at, retention_days) \
             SELECT toUUID(?), toDate(toUInt16(p.1)), toUUID(?), p.2, \
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
                    quantilesStateIf(0.5, 0.95, 0.99)(toInt64(0), false), \
                    quantilesStateIf(0.5, 0.95, 0.99)(toInt64(0), false), \
                    CAST(map() AS Map(String, UInt64)), CAST(map() AS Map(String, UInt64)), \
                    CAST(map() AS Map(String, Int128)), now(), 1 \
             FROM (SELECT arrayJoin(?) AS p) GROUP BY p"
        ));
        apply(
            q,
            &[org, Bind::Str(Uuid::nil().to_string()), Bind::Pairs(empty)],
        )
        .execute()
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(u16, u64)]) -> BTreeMap<u16, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn day_numbers_are_clickhouse_dates() {
        let d = time::Date::from_calendar_date(2026, time::Month::November, 28).unwrap();
        assert_eq!(day_number(d), 20785);
        assert_eq!(date_of(20785), d);
        assert_eq!(date_of(0).to_string(), "1970-01-01");
    }

    #[test]
    fn windowed_counts_include_neighbours() {
        let c = counts(&[(10, 2), (11, 3), (13, 5)]);
        assert_eq!(windowed(&c, 10), 5);
        assert_eq!(windowed(&c, 11), 5);
        assert_eq!(windowed(&c, 12), 8);
        assert_eq!(windowed(&c, 0), 0);
        assert_eq!(windowed(&c, u16::MAX), 0);
    }

    #[test]
    fn a_day_is_fresh_only_when_its_computation_saw_the_current_count() {
        let c = counts(&[(10, 2), (11, 3), (20, 1)]);
        let seen: HashMap<u16, u64> = [(10, 5), (11, 4), (20, 1)].into_iter().collect();
        let (fresh, stale) = split_days(&c, &seen, None, None, |_| true);
        assert_eq!(fresh, vec![10, 20]);
        assert_eq!(stale, vec![11]);
    }

    #[test]
    fn partial_days_at_the_window_edges_are_read_raw() {
        let c = counts(&[(10, 1), (20, 1), (30, 1)]);
        let seen: HashMap<u16, u64> = [(10, 1), (20, 1), (30, 1)].into_iter().collect();
        let (fresh, stale) = split_days(&c, &seen, Some(10), Some(30), |d| d == 20);
        assert_eq!(fresh, vec![20]);
        assert_eq!(stale, vec![10, 30]);
        let (fresh, stale) = split_days(&c, &seen, Some(11), Some(29), |_| true);
        assert_eq!((fresh, stale), (vec![20], vec![]));
    }
}
