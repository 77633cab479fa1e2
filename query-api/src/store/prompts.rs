//! Prompts: versions in PostgreSQL (control data), usage links and the
//! per-version analytics in ClickHouse (`prompt_links`, joined to
//! `traces FINAL` there, so that any number of runs is counted exactly and
//! a PATCHed outcome counts at once).
//!
//! Invariants: names are unique per organization; `(org, name, version)`
//! is unique; at most one version of a name is active (a partial unique
//! index), and every change of the active version of a name holds that
//! name's advisory lock, so concurrent creates and activations never leave
//! two active versions or none.

use crate::error::AppResult;
use agentvista_shared::error::{ApiError, ErrorKind};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// A prompt version as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPrompt {
    pub id: Uuid,
    pub name: String,
    pub version: i32,
    pub template_text: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub created_at: OffsetDateTime,
    /// The template's variables as computed when it was written (NULL for
    /// versions older than the column).
    pub variables: Option<Vec<String>>,
}

const COLUMNS: &str =
    "id, name, version, template_text, description, is_active, created_at, variables";

/// A new version as validated by the route.
pub struct NewPrompt<'a> {
    pub name: &'a str,
    pub version: i32,
    pub template_text: &'a str,
    pub description: Option<&'a str>,
    /// The template's `{{variable}}` names, stored with it.
    pub variables: &'a [String],
}

/// Serialize every change of the active version of one name.
async fn lock_name(tx: &mut Transaction<'_, Postgres>, org_id: Uuid, name: &str) -> AppResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 7))")
        .bind(org_id.to_string())
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Register a version; it becomes the name's active version. A 409 when
/// the name already has this version.
pub async fn create(
    pg: &PgPool,
    org_id: Uuid,
    user_id: Uuid,
    new: &NewPrompt<'_>,
) -> AppResult<StoredPrompt> {
    let mut tx = pg.begin().await?;
    lock_name(&mut tx, org_id, new.name).await?;
    sqlx::query("UPDATE prompt_versions SET is_active = false WHERE org_id = $1 AND name = $2 AND is_active")
        .bind(org_id)
        .bind(new.name)
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query_as::<_, StoredPrompt>(&format!(
        "INSERT INTO prompt_versions (id, org_id, name, version, template_text, description, is_active, created_by, activated_at, variables) \
         VALUES ($1, $2, $3, $4, $5, $6, true, $7, now(), $8) \
         ON CONFLICT ON CONSTRAINT prompt_versions_name_version DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(new.name)
    .bind(new.version)
    .bind(new.template_text)
    .bind(new.description)
    .bind(user_id)
    .bind(new.variables)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(prompt) = inserted else {
        // The transaction (and its deactivation) is rolled back on drop.
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("Prompt {:?} already has version {}.", new.name, new.version),
        )
        .into());
    };
    tx.commit().await?;
    Ok(prompt)
}

/// Every version of the organization, by name then newest version first.
pub async fn list(
    pg: &PgPool,
    org_id: Uuid,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<StoredPrompt>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE org_id = $1 \
         ORDER BY name, version DESC LIMIT $2 OFFSET $3"
    ))
    .bind(org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pg)
    .await?)
}

/// The versions of one name, newest first (empty when the name is
/// unknown).
pub async fn versions(
    pg: &PgPool,
    org_id: Uuid,
    name: &str,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<StoredPrompt>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE org_id = $1 AND name = $2 \
         ORDER BY version DESC LIMIT $3 OFFSET $4"
    ))
    .bind(org_id)
    .bind(name)
    .bind(limit)
    .bind(offset)
    .fetch_all(pg)
    .await?)
}

/// Whether the organization has a prompt of this name.
pub async fn name_exists(pg: &PgPool, org_id: Uuid, name: &str) -> AppResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM prompt_versions WHERE org_id = $1 AND name = $2)",
    )
    .bind(org_id)
    .bind(name)
    .fetch_one(pg)
    .await?)
}

/// One version, or the active one when `version` is `None`.
pub async fn get(
    pg: &PgPool,
    org_id: Uuid,
    name: &str,
    version: Option<i32>,
) -> AppResult<Option<StoredPrompt>> {
    let q = match version {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM prompt_versions WHERE org_id = $1 AND name = $2 AND version = $3"
        ),
        None => format!(
            "SELECT {COLUMNS} FROM prompt_versions WHERE org_id = $1 AND name = $2 AND is_active"
        ),
    };
    let mut q = sqlx::query_as(&q).bind(org_id).bind(name);
    if let Some(v) = version {
        q = q.bind(v);
    }
    Ok(q.fetch_optional(pg).await?)
}

/// Make `version` the name's active version (a rollback, or a roll
/// forward); `None` when the version does not exist.
pub async fn activate(
    pg: &PgPool,
    org_id: Uuid,
    name: &str,
    version: i32,
) -> AppResult<Option<StoredPrompt>> {
    let mut tx = pg.begin().await?;
    lock_name(&mut tx, org_id, name).await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM prompt_versions WHERE org_id = $1 AND name = $2 AND version = $3)",
    )
    .bind(org_id)
    .bind(name)
    .bind(version)
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE prompt_versions SET is_active = false \
         WHERE org_id = $1 AND name = $2 AND is_active AND version <> $3",
    )
    .bind(org_id)
    .bind(name)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    let prompt: StoredPrompt = sqlx::query_as(&format!(
        "UPDATE prompt_versions SET is_active = true, \
           activated_at = CASE WHEN is_active THEN activated_at ELSE now() END \
         WHERE org_id = $1 AND name = $2 AND version = $3 RETURNING {COLUMNS}"
    ))
    .bind(org_id)
    .bind(name)
    .bind(version)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(prompt))
}

/// Where a usage link points.
pub struct Link {
    pub org_id: Uuid,
    pub retention_days: u16,
    pub prompt_name: String,
    pub prompt_version: u32,
    pub trace_id: Uuid,
    pub span_id: Option<Uuid>,
}

/// Whether the organization has stored this trace (a run or any span) and,
/// when `span_id` is given, that span in it.
pub async fn trace_has(
    ch: &clickhouse::Client,
    org_id: Uuid,
    trace_id: Uuid,
    span_id: Option<Uuid>,
) -> AppResult<bool> {
    let (org, tid) = (org_id.to_string(), trace_id.to_string());
    let found: Option<u8> = match span_id {
        None => {
            ch.query(
                "SELECT 1 FROM (SELECT 1 FROM traces WHERE org_id = toUUID(?) AND trace_id = toUUID(?) LIMIT 1 \
                 UNION ALL SELECT 1 FROM spans WHERE org_id = toUUID(?) AND trace_id = toUUID(?) LIMIT 1) LIMIT 1",
            )
            .bind(&org)
            .bind(&tid)
            .bind(&org)
            .bind(&tid)
            .fetch_optional()
            .await?
        }
        Some(span) => {
            ch.query(
                "SELECT 1 FROM spans WHERE org_id = toUUID(?) AND trace_id = toUUID(?) AND span_id = toUUID(?) LIMIT 1",
            )
            .bind(&org)
            .bind(&tid)
            .bind(span.to_string())
            .fetch_optional()
            .await?
        }
    };
    Ok(found.is_some())
}

/// Store a link (a repeat collapses into the same row).
pub async fn link(ch: &clickhouse::Client, l: &Link) -> AppResult<()> {
    ch.query(
        "INSERT INTO prompt_links (org_id, prompt_name, prompt_version, trace_id, span_id, source, retention_days, version) \
         SELECT toUUID(?), ?, ?, toUUID(?), CAST(? AS Nullable(UUID)), 'api', ?, ?",
    )
    .bind(l.org_id.to_string())
    .bind(&l.prompt_name)
    .bind(l.prompt_version)
    .bind(l.trace_id.to_string())
    .bind(l.span_id.map(|s| s.to_string()))
    .bind(l.retention_days)
    .bind(agentvista_shared::window::now_ns())
    .execute()
    .await?;
    Ok(())
}
