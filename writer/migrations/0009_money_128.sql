-- Money sums in the per-day rollup as 128-bit integers: a day's costs of
-- one agent can add up beyond 64 bits of nano-dollars (the accepted
-- maximum is 1,000,000 USD a span or run). The rollup is recomputable;
-- existing rows are converted in place.
ALTER TABLE agent_daily MODIFY COLUMN cost_nanos Int128, MODIFY COLUMN completed_cost_nanos Int128;
