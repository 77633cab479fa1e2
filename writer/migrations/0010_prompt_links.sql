-- Prompt usage links: which runs used which prompt version. Written by the
-- writer for spans that carry a prompt reference (attributes
-- `agentvista.prompt.name` / `agentvista.prompt.version`, Langfuse's
-- `langfuse.prompt.*`, or the SDK batch's `prompt_name` / `prompt_version`)
-- and by the query API's `POST /dashboard/prompts/usage`. Keyed so that a
-- repeated link (a re-sent batch, a second span of the same run, a retried
-- call) collapses into one; reads use FINAL. A link may name a version that
-- is not registered yet: it is kept and counts once the version exists.
-- The per-version analytics join these rows to `traces FINAL` here, in
-- ClickHouse, so a PATCHed outcome counts at once.
CREATE TABLE IF NOT EXISTS prompt_links
(
    org_id UUID,
    prompt_name String,
    prompt_version UInt32,
    trace_id UUID,
    span_id Nullable(UUID),
    source LowCardinality(String),
    retention_days UInt16,
    version UInt64,
    ingested_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (org_id, prompt_name, prompt_version, trace_id)
TTL ingested_at + toIntervalDay(retention_days);
