-- OTLP: span kind, GenAI provider and cached tokens, resource and scope,
-- events and links (JSON arrays), where a span came from; logs and metric
-- points.
ALTER TABLE spans
    ADD COLUMN IF NOT EXISTS source LowCardinality(String) DEFAULT 'sdk',
    ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS provider LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS cached_tokens Nullable(Int64),
    ADD COLUMN IF NOT EXISTS cost_computed Bool DEFAULT false,
    ADD COLUMN IF NOT EXISTS status_message Nullable(String),
    ADD COLUMN IF NOT EXISTS resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS scope LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS events String DEFAULT '[]' CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS links String DEFAULT '[]' CODEC(ZSTD(3));

-- Logs: newest-first scans per organization; a token bloom filter on the
-- lowercased body (replaced by an n-gram filter in 0006) for full-text
-- search. `log_id` is derived from the
-- record's content, so a re-sent record replaces itself.
CREATE TABLE IF NOT EXISTS logs
(
    org_id UUID,
    log_id UUID,
    timestamp DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    observed_timestamp DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    severity_number UInt8,
    severity_text LowCardinality(String),
    severity LowCardinality(String),
    body String CODEC(ZSTD(3)),
    service_name LowCardinality(String),
    trace_id Nullable(UUID),
    span_id Nullable(UUID),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope LowCardinality(String),
    retention_days UInt16,
    version UInt64,
    ingested_at DateTime DEFAULT now(),
    INDEX idx_body lower(body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1,
    INDEX idx_trace trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (org_id, timestamp, log_id)
TTL ingested_at + toIntervalDay(retention_days);

-- Metric points: one row per data point; (series_id, time) identifies a
-- point, so re-sent points replace themselves.
CREATE TABLE IF NOT EXISTS metric_points
(
    org_id UUID,
    metric_name LowCardinality(String),
    series_id UInt64,
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    start_time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    metric_type LowCardinality(String),
    unit LowCardinality(String),
    description String,
    service_name LowCardinality(String),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope LowCardinality(String),
    value Nullable(Float64),
    temporality LowCardinality(String),
    is_monotonic Bool,
    count Nullable(UInt64),
    sum Nullable(Float64),
    min Nullable(Float64),
    max Nullable(Float64),
    bucket_counts Array(UInt64),
    explicit_bounds Array(Float64),
    exp_scale Int32,
    exp_zero_count UInt64,
    exp_positive_offset Int32,
    exp_positive_counts Array(UInt64),
    exp_negative_offset Int32,
    exp_negative_counts Array(UInt64),
    quantiles Array(Float64),
    quantile_values Array(Float64),
    retention_days UInt16,
    version UInt64,
    ingested_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(time)
ORDER BY (org_id, metric_name, series_id, time)
TTL ingested_at + toIntervalDay(retention_days);
