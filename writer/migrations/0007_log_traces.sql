-- The logs of a trace, by key. `logs` is ordered by time, so finding a
-- trace's records meant a bloom-filter pass over the organization's logs,
-- whose cost grows with them. One row per (organization, trace, record)
-- ordered by that key turns it into a key range, then a primary-key lookup
-- of the records themselves. Set-like (a record's id derives from its
-- content), so a re-sent record only repeats a row that merges away.
CREATE TABLE IF NOT EXISTS log_traces
(
    org_id UUID,
    trace_id UUID,
    timestamp DateTime64(9, 'UTC'),
    log_id UUID,
    ingested_at SimpleAggregateFunction(max, DateTime),
    retention_days SimpleAggregateFunction(max, UInt16)
)
ENGINE = AggregatingMergeTree
ORDER BY (org_id, trace_id, timestamp, log_id)
TTL ingested_at + toIntervalDay(retention_days)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS log_traces_mv TO log_traces AS
SELECT
    org_id,
    assumeNotNull(trace_id) AS trace_id,
    timestamp,
    log_id,
    max(ingested_at) AS ingested_at,
    max(retention_days) AS retention_days
FROM logs
WHERE isNotNull(trace_id)
GROUP BY org_id, trace_id, timestamp, log_id;

-- Records stored before this migration (harmless if run twice).
INSERT INTO log_traces
SELECT org_id, assumeNotNull(trace_id), timestamp, log_id, max(ingested_at), max(retention_days)
FROM logs
WHERE isNotNull(trace_id)
GROUP BY org_id, trace_id, timestamp, log_id;
