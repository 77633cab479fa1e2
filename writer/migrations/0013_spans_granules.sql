-- Smaller index granules for `spans`, so that reading one trace reads
-- little besides that trace. A trace read (`GET /traces/{id}`, the span
-- tree) decompresses and merges (FINAL) every granule that may hold the
-- trace, one in each part. ClickHouse caps a granule at 8,192 rows or 10
-- MB (`index_granularity_bytes`); a realistic GenAI span with its message
-- text is about 1.7 KB, so a granule held about 6,000 of them and a read of
-- one trace's 100 spans went through some 6,000 rows a part: 31 ms of
-- ClickHouse CPU on 2.3M such spans in 6 parts. With granules capped at 1
-- MiB (about 600 such spans; small spans still reach the 8,192-row cap) it
-- is 14 ms (BENCHMARKS.md, "Session 11"). Inserts and merges cost the same
-- within the measurement's noise.
--
-- The setting cannot be altered on an existing table, so `spans` is
-- rebuilt: a table with the same columns, indexes and constraints
-- (`CREATE TABLE ... AS spans`), every partition attached from the old one
-- (hard links: nothing is rewritten; attached parts keep their granules
-- until a merge rewrites them), and the two swapped atomically. The
-- materialized view `span_facets_mv` follows the name `spans` across the
-- swap (ClickHouse 26.9; the suites' facet filters run on a schema migrated
-- this way). Parts a writer added to the old table after the attach (their
-- block numbers pass the highest one each partition had just before it)
-- are copied after the swap, once inserts that were in flight at the swap
-- have had 3 s to finish; a part merged across that line is copied whole,
-- and a span stored twice is one row to every read (FINAL) and merges
-- away. On a replicated cluster the second replica of a shard joins the
-- table the first one built and attaches its own copy too: reads stay
-- exact (FINAL) and the copies merge away, but the shard's disk holds both
-- until they do. Re-running this after a crash at any statement ends in
-- the same state (a crash between the swap and the copy loses the rows
-- inserted in that window).
DROP TABLE IF EXISTS spans_rebuilt SYNC;

DROP TABLE IF EXISTS spans_rebuild_mark;

CREATE TABLE spans_rebuilt AS spans
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (org_id, trace_id, span_id)
TTL ingested_at + toIntervalDay(retention_days)
SETTINGS index_granularity = 8192, index_granularity_bytes = 1048576;

CREATE TABLE spans_rebuild_mark ENGINE = Memory AS
SELECT partition_id, max(max_block_number) AS attached_up_to
FROM system.parts
WHERE database = currentDatabase() AND table = 'spans' AND active
GROUP BY partition_id;

ALTER TABLE spans_rebuilt ATTACH PARTITION ALL FROM spans;

EXCHANGE TABLES spans AND spans_rebuilt;

SELECT sleep(3);

INSERT INTO spans SELECT * FROM spans_rebuilt
WHERE _part IN (
    SELECT p.name
    FROM system.parts AS p
    LEFT JOIN spans_rebuild_mark AS m ON p.partition_id = m.partition_id
    WHERE p.database = currentDatabase() AND p.table = 'spans_rebuilt' AND p.active
      AND p.max_block_number > m.attached_up_to
);

DROP TABLE spans_rebuilt SYNC;

DROP TABLE spans_rebuild_mark;
