-- Per-day run rollups behind agent summaries, daily stats and comparisons.
--
-- `traces` is a ReplacingMergeTree: a re-delivered batch, a client retry or
-- a PATCHed outcome is a second row that only FINAL hides, so a sum kept by
-- a materialized view would count it twice. The rollup is instead computed
-- from `traces FINAL` by the query API's rollup worker, one (organization,
-- day) at a time, and a read trusts it only while it is provably current:
--
-- * `trace_day_inserts` counts every row ever inserted into `traces`, per
--   (organization, start day), through a materialized view. The count only
--   grows, so it is a change counter: a duplicate only makes it grow too.
-- * The worker reads the counts first, then computes the day from
--   `traces FINAL`, and stamps every row of that computation with
--   `inserts_seen`: the count of the day and of its two neighbours (a run
--   whose start moves by a re-send can leave a day only for the next or
--   previous one; that insert is counted there).
-- * A read uses a day's rollup only if its newest computation saw at least
--   the current count; any other day in the window is computed from
--   `traces FINAL` in the same query. Today is therefore always read raw
--   while runs arrive, and closed days from the rollup.
CREATE TABLE IF NOT EXISTS trace_day_inserts
(
    org_id UUID,
    day Date,
    inserts SimpleAggregateFunction(sum, UInt64),
    ingested_at SimpleAggregateFunction(max, DateTime),
    retention_days SimpleAggregateFunction(max, UInt16)
)
ENGINE = AggregatingMergeTree
ORDER BY (org_id, day)
TTL ingested_at + toIntervalDay(retention_days)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_day_inserts_mv TO trace_day_inserts AS
SELECT
    org_id,
    toDate(started_at) AS day,
    count() AS inserts,
    max(ingested_at) AS ingested_at,
    max(retention_days) AS retention_days
FROM traces
GROUP BY org_id, day;

-- Runs stored before this migration (run twice, it only raises the counts,
-- which is harmless: a higher count only marks days as not yet rolled up).
INSERT INTO trace_day_inserts
SELECT org_id, toDate(started_at), count(), max(ingested_at), max(retention_days)
FROM traces
GROUP BY org_id, toDate(started_at);

-- One row per (organization, day, agent) and computation. Rows of one
-- computation share `inserts_seen` and land in one part, so a read that
-- takes a day's newest computation sees all of it.
CREATE TABLE IF NOT EXISTS agent_daily
(
    org_id UUID,
    day Date,
    agent_id UUID,
    inserts_seen UInt64,
    runs UInt64,
    successful UInt64,
    unsuccessful UInt64,
    with_signal UInt64,
    failed_status UInt64,
    cost_runs UInt64,
    cost_nanos Int64,
    completed_cost_runs UInt64,
    completed_cost_nanos Int64,
    tokens Int64,
    duration_sum Int64,
    duration_runs UInt64,
    completed_duration_runs UInt64,
    last_run_us Int64,
    durations AggregateFunction(quantiles(0.5, 0.95, 0.99), Int64),
    completed_durations AggregateFunction(quantiles(0.5, 0.95, 0.99), Int64),
    outcomes Map(String, UInt64),
    ingested_at DateTime,
    retention_days UInt16
)
ENGINE = ReplacingMergeTree(inserts_seen)
ORDER BY (org_id, day, agent_id)
TTL ingested_at + toIntervalDay(retention_days)
-- A read wants one organization's few dozen rows, each carrying duration
-- samples: small granules keep it from decoding its neighbours' samples.
SETTINGS index_granularity = 256;
