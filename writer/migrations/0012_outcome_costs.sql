-- Cost per outcome in the per-day run rollup: for each outcome, the runs
-- that carry a cost and the sum of their costs (nano-dollars, 128 bits as
-- in 0009). Cells computed before this migration lack them, so the rollup
-- is emptied: it is derived data, reads compute every day from `traces`
-- until the rollup worker's next pass has filled it again, and each answer
-- stays exact meanwhile.
ALTER TABLE agent_daily
    ADD COLUMN IF NOT EXISTS outcome_cost_runs Map(String, UInt64) AFTER outcomes,
    ADD COLUMN IF NOT EXISTS outcome_cost_nanos Map(String, Int128) AFTER outcome_cost_runs;
TRUNCATE TABLE IF EXISTS agent_daily;
