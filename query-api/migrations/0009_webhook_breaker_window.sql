-- When an endpoint's current streak of failed attempts began (NULL while
-- its last attempt succeeded): the breaker pauses it after
-- AV_WEBHOOK_BREAKER_THRESHOLD failed attempts in a row spanning at least
-- AV_WEBHOOK_BREAKER_WINDOW_SECS (a sustained failure, not one burst).
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS failing_since timestamptz;
