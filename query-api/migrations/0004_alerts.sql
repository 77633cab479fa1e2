-- Alerts: rules over runs (and, for composite rules, OTLP metrics), their
-- evaluation state, and their firing history.

CREATE TABLE IF NOT EXISTS alerts (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The user who created it: the email channel's recipient.
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id UUID,
    agent_name TEXT,
    target_service TEXT,
    type TEXT NOT NULL CHECK (type IN ('failure_rate', 'inactivity', 'cost_threshold', 'latency_threshold', 'composite')),
    threshold DOUBLE PRECISION,
    window_minutes INTEGER NOT NULL DEFAULT 60,
    min_runs INTEGER NOT NULL DEFAULT 5,
    cooldown_minutes INTEGER NOT NULL DEFAULT 60,
    channel TEXT NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'webhook', 'both')),
    webhook_url TEXT,
    -- Signs deliveries to webhook_url like an organization endpoint's.
    webhook_secret TEXT NOT NULL,
    composite_config JSONB,
    is_active BOOLEAN NOT NULL DEFAULT true,
    state TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'firing')),
    last_value DOUBLE PRECISION,
    last_evaluated_at TIMESTAMPTZ,
    last_fired_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (agent_id IS NOT NULL OR target_service IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS alerts_org ON alerts (org_id, created_at DESC);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts (type) WHERE is_active;

CREATE TABLE IF NOT EXISTS alert_events (
    id UUID PRIMARY KEY,
    alert_id UUID NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('fired', 'resolved')),
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, at DESC);

-- An alert's own webhook_url is delivered through the webhook machinery
-- (outbox, signing, retries, breaker) as an endpoint that belongs to the
-- alert: hidden from the organization's endpoint list and subscriptions.
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS alert_id UUID REFERENCES alerts (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX IF NOT EXISTS webhook_endpoints_alert ON webhook_endpoints (alert_id) WHERE alert_id IS NOT NULL;
