-- Prompt versions: control data of each organization. One row per
-- (organization, name, version); at most one active version per name, the
-- "current default" a runtime fetch returns. Usage links and the analytics
-- over them live in ClickHouse (`prompt_links`, beside the runs).

CREATE TABLE IF NOT EXISTS prompt_versions (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    template_text TEXT NOT NULL,
    description TEXT,
    is_active BOOLEAN NOT NULL DEFAULT false,
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at TIMESTAMPTZ,
    CONSTRAINT prompt_versions_name_version UNIQUE (org_id, name, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS prompt_versions_active
    ON prompt_versions (org_id, name) WHERE is_active;
