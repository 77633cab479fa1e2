-- Email: an outbox of messages to send over SMTP (alert notifications,
-- and the admins' notice when a webhook endpoint is paused).

CREATE TABLE IF NOT EXISTS emails (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- The alert event that made it, for the alert's history.
    alert_event_id UUID REFERENCES alert_events (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS emails_pending ON emails (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS emails_alert_event ON emails (alert_event_id) WHERE alert_event_id IS NOT NULL;
