-- Per-organization model prices, overriding shared/prices.json. USD per
-- million tokens. Mirrored into Redis (av:prices:<org_id>) for the gateway.
CREATE TABLE IF NOT EXISTS model_prices (
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    input_per_million NUMERIC(20, 9) NOT NULL CHECK (input_per_million >= 0),
    output_per_million NUMERIC(20, 9) NOT NULL CHECK (output_per_million >= 0),
    cached_input_per_million NUMERIC(20, 9) NOT NULL CHECK (cached_input_per_million >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, model)
);
