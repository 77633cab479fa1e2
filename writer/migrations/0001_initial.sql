-- Traces (runs): one row per version of a trace header; reads use FINAL so
-- that re-sent batches and Kafka redelivery never show twice. Retention
-- counts from ingestion (`ingested_at`), not from the event's own time, so
-- back-filled or replayed data is kept for the organization's full period.
CREATE TABLE IF NOT EXISTS traces
(
    org_id UUID,
    trace_id UUID,
    agent_id UUID,
    agent_name LowCardinality(String),
    status LowCardinality(String),
    started_at DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    ended_at Nullable(DateTime64(6, 'UTC')),
    duration_ms Nullable(Int64),
    success Nullable(Bool),
    outcome LowCardinality(Nullable(String)),
    total_tokens Nullable(Int64),
    total_cost Nullable(Decimal64(9)),
    metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    retention_days UInt16,
    version UInt64,
    ingested_at DateTime DEFAULT now(),
    INDEX idx_agent agent_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_started started_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (org_id, trace_id)
TTL ingested_at + toIntervalDay(retention_days);

CREATE TABLE IF NOT EXISTS spans
(
    org_id UUID,
    trace_id UUID,
    span_id UUID,
    parent_span_id Nullable(UUID),
    agent_id UUID,
    agent_name LowCardinality(String),
    span_type LowCardinality(String),
    name String,
    status LowCardinality(String),
    started_at DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    ended_at Nullable(DateTime64(6, 'UTC')),
    duration_ms Nullable(Int64),
    model LowCardinality(Nullable(String)),
    input_tokens Nullable(Int64),
    output_tokens Nullable(Int64),
    total_tokens Nullable(Int64),
    cost Nullable(Decimal64(9)),
    input Nullable(String) CODEC(ZSTD(3)),
    output Nullable(String) CODEC(ZSTD(3)),
    error Nullable(String) CODEC(ZSTD(3)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    retention_days UInt16,
    version UInt64,
    ingested_at DateTime DEFAULT now(),
    INDEX idx_started started_at TYPE minmax GRANULARITY 1,
    INDEX idx_model model TYPE set(256) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (org_id, trace_id, span_id)
TTL ingested_at + toIntervalDay(retention_days);

-- Agents: one row per (agent, flush); reads take min(created_at). (Rebuilt
-- by 0005 to keep the earliest row when rows merge.)
CREATE TABLE IF NOT EXISTS agents
(
    org_id UUID,
    agent_id UUID,
    name String,
    created_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (org_id, agent_id);
