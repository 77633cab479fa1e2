-- When each exclusive background pass last started, across replicas: a
-- replica skips its pass when another started one within the interval, so
-- N replicas make one pass per interval, not N.

CREATE TABLE IF NOT EXISTS worker_runs (
    name TEXT PRIMARY KEY,
    last_started_at TIMESTAMPTZ NOT NULL
);
