-- Per-day rollup of the prompt comparison: per (organization, prompt name,
-- day of the run's start, version), the figures of the linked runs. The
-- comparison reads a day from here only while it is provably current, and
-- computes every other day from `prompt_links FINAL` joined to
-- `traces FINAL` in the same query, so an answer is always exact (see
-- query-api/src/store/prompt_stats.rs):
--
-- * a change to a run (a new row in `traces`: a re-send, a PATCH) raises
--   `trace_day_inserts` of its day (0004); a computation is stamped with
--   the windowed count it read first (`inserts_seen`), as `agent_daily` is;
-- * a new link is seen by its ingestion time: a computation saw every link
--   ingested before `links_before` (its start, minus a margin for inserts
--   in flight); the days of the runs linked since are read raw.
--
-- Rows of one computation share `computed_at` and land in one part; a read
-- takes each day's newest computation. A day computed to no linked runs is
-- stamped with one `prompt_version = 0`, `runs = 0` row (reads skip it).
CREATE TABLE IF NOT EXISTS prompt_daily
(
    org_id UUID,
    prompt_name String,
    day Date,
    prompt_version UInt32,
    computed_at DateTime64(6, 'UTC'),
    inserts_seen UInt64,
    links_before DateTime,
    runs UInt64,
    successful UInt64,
    unsuccessful UInt64,
    with_signal UInt64,
    failed_status UInt64,
    cost_runs UInt64,
    cost_nanos Int128,
    tokens Int64,
    duration_sum Int64,
    duration_runs UInt64,
    durations AggregateFunction(quantilesExact(0.5, 0.95), Float64),
    first_us Int64,
    last_us Int64,
    outcomes Map(String, UInt64),
    ingested_at DateTime,
    retention_days UInt16
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (org_id, prompt_name, day, prompt_version)
TTL ingested_at + toIntervalDay(retention_days)
SETTINGS index_granularity = 256;
