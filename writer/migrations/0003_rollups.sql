-- Rollups. Reads use FINAL over ReplacingMergeTree tables so that a
-- re-delivered or updated row is seen once; a rollup maintained on insert
-- sees every inserted copy, so only set-like rollups (idempotent under
-- re-insertion) are kept this way: a sum or a count would count a
-- re-delivered batch twice.

-- One row per (organization, model, span type, trace) that has such a span:
-- the trace list's `model` / `span_type` filters find their traces by key
-- range here instead of scanning every span of the organization. A
-- re-delivered span only repeats a row that merges away, and the reads
-- take trace ids as a set.
CREATE TABLE IF NOT EXISTS span_facets
(
    org_id UUID,
    model LowCardinality(String),
    span_type LowCardinality(String),
    trace_id UUID,
    ingested_at SimpleAggregateFunction(max, DateTime),
    retention_days SimpleAggregateFunction(max, UInt16)
)
ENGINE = AggregatingMergeTree
ORDER BY (org_id, model, span_type, trace_id)
TTL ingested_at + toIntervalDay(retention_days);

CREATE MATERIALIZED VIEW IF NOT EXISTS span_facets_mv TO span_facets AS
SELECT
    org_id,
    ifNull(model, '') AS model,
    span_type,
    trace_id,
    max(ingested_at) AS ingested_at,
    max(retention_days) AS retention_days
FROM spans
GROUP BY org_id, model, span_type, trace_id;

-- Spans stored before this migration (harmless if run twice).
INSERT INTO span_facets
SELECT org_id, ifNull(model, ''), span_type, trace_id, max(ingested_at), max(retention_days)
FROM spans
GROUP BY org_id, model, span_type, trace_id;
