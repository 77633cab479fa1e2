-- Rollups. Reads use FINAL over ReplacingMergeTree tables so that a
-- re-delivered or updated row is seen once; a rollup maintained on insert
-- sees every inserted copy, so only set-like aggregates (idempotent under
-- re-insertion) are kept this way: a sum or a count would count a
-- re-delivered batch twice.

-- The distinct (model, span type) pairs of each trace's spans: the trace
-- list's span filters (`model`, `span_type`) read one row per trace here
-- instead of every span. A re-delivered span adds nothing to the set.
CREATE TABLE IF NOT EXISTS trace_span_facets
(
    org_id UUID,
    trace_id UUID,
    facets AggregateFunction(groupUniqArray, Tuple(String, String)),
    ingested_at SimpleAggregateFunction(max, DateTime),
    retention_days SimpleAggregateFunction(max, UInt16)
)
ENGINE = AggregatingMergeTree
ORDER BY (org_id, trace_id)
TTL ingested_at + toIntervalDay(retention_days);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_span_facets_mv TO trace_span_facets AS
SELECT
    org_id,
    trace_id,
    groupUniqArrayState((CAST(ifNull(model, '') AS String), CAST(span_type AS String))) AS facets,
    max(ingested_at) AS ingested_at,
    max(retention_days) AS retention_days
FROM spans
GROUP BY org_id, trace_id;

-- Spans stored before this migration (harmless if run twice: a set union).
INSERT INTO trace_span_facets
SELECT
    org_id,
    trace_id,
    groupUniqArrayState((CAST(ifNull(model, '') AS String), CAST(span_type AS String))),
    max(ingested_at),
    max(retention_days)
FROM spans
GROUP BY org_id, trace_id;
