-- `agents` was a ReplacingMergeTree without a version: a background merge
-- kept the *last* row of an agent, so its `created_at` (read as the
-- minimum) moved forward once an agent sent again. The agent id is derived
-- from (organization, name), so the name never differs between rows; keep
-- the earliest creation time instead. Rebuilt and swapped atomically; rows
-- a writer inserts into the old table during the swap are copied over
-- after it (a copy twice is harmless: `min` and `any`). Re-running it after
-- a crash at any statement ends in the same state.
DROP TABLE IF EXISTS agents_first;

CREATE TABLE agents_first
(
    org_id UUID,
    agent_id UUID,
    name SimpleAggregateFunction(any, String),
    created_at SimpleAggregateFunction(min, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (org_id, agent_id);

INSERT INTO agents_first
SELECT org_id, agent_id, any(name), min(created_at) FROM agents GROUP BY org_id, agent_id;

EXCHANGE TABLES agents AND agents_first;

INSERT INTO agents
SELECT org_id, agent_id, any(name), min(created_at) FROM agents_first GROUP BY org_id, agent_id;

DROP TABLE agents_first;
