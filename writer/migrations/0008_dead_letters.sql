-- ClickHouse's own insert validation as the last line: an event time the
-- gateway's window would never let through (before 1970, or after the
-- per-day rollups' `Date` ends in 2149) is refused with VIOLATED_CONSTRAINT,
-- which the writer treats as permanent: the message goes to `dead_letters`
-- instead of being stored where reads would wrap or misplace it.
ALTER TABLE traces ADD CONSTRAINT IF NOT EXISTS started_in_range
    CHECK started_at >= toDateTime64('1970-01-01 00:00:00', 6, 'UTC') AND started_at < toDateTime64('2149-06-01 00:00:00', 6, 'UTC');
ALTER TABLE spans ADD CONSTRAINT IF NOT EXISTS started_in_range
    CHECK started_at >= toDateTime64('1970-01-01 00:00:00', 6, 'UTC') AND started_at < toDateTime64('2149-06-01 00:00:00', 6, 'UTC');
ALTER TABLE logs ADD CONSTRAINT IF NOT EXISTS timestamp_in_range
    CHECK timestamp >= toDateTime64('1970-01-01 00:00:00', 9, 'UTC') AND timestamp < toDateTime64('2149-06-01 00:00:00', 9, 'UTC');
ALTER TABLE metric_points ADD CONSTRAINT IF NOT EXISTS time_in_range
    CHECK time >= toDateTime64('1970-01-01 00:00:00', 9, 'UTC') AND time < toDateTime64('2149-06-01 00:00:00', 9, 'UTC');

-- Messages that ClickHouse can never accept (a permanent insert error) or
-- that cannot be decoded: one row per Kafka message, keyed by its position,
-- so a redelivered poison message is recorded once. `payload` is the
-- message as it was on the topic (hex); `writer dead-letters replay`
-- re-inserts it and marks it `replayed` (a newer version of the row).
CREATE TABLE IF NOT EXISTS dead_letters
(
    topic String,
    partition Int32,
    offset Int64,
    org_id UUID,
    error String,
    payload String CODEC(ZSTD(3)),
    failed_at DateTime64(6, 'UTC'),
    status LowCardinality(String),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (topic, partition, offset)
TTL toDateTime(failed_at) + toIntervalDay(30);
