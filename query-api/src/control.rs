//! Control-plane operations shared by the routes and the admin command:
//! accounts, organizations and API keys (PostgreSQL, with the key cache in
//! Redis that the ingestion gateway reads).

use crate::error::{AppError, AppResult};
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::keys::{self, KeyRecord, KeyRecordRow, KEY_RECORD_SELECT};
use agentvista_shared::plan::Plan;
use agentvista_shared::pricing::{self, Price};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// A slug from a free-form name: lowercase ASCII letters, digits and dashes.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(40).collect();
    if out.is_empty() {
        "org".to_string()
    } else {
        out
    }
}

/// Create a user with a personal organization (the user is its admin).
pub async fn create_user(
    pg: &PgPool,
    email: &str,
    name: &str,
    password_hash: String,
    plan: Plan,
) -> AppResult<(User, Organization)> {
    let mut tx = pg.begin().await?;
    let user: User = match sqlx::query_as(
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4) \
         RETURNING id, email, name, password_hash, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .fetch_one(&mut *tx)
    .await
    {
        Ok(u) => u,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                "An account with this email already exists.",
            )
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let org = insert_org(&mut tx, &slugify(name), name, plan).await?;
    sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')")
        .bind(org.id)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((user, org))
}

/// Insert an organization under `base` as slug, or `base-2`, `base-3`, … when
/// taken.
async fn insert_org(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    base: &str,
    name: &str,
    plan: Plan,
) -> AppResult<Organization> {
    for n in 1..=50u32 {
        let slug = if n == 1 {
            base.to_string()
        } else if n < 40 {
            format!("{base}-{n}")
        } else {
            format!("{base}-{}", &Uuid::new_v4().simple().to_string()[..8])
        };
        let row: Option<Organization> = sqlx::query_as(
            "INSERT INTO organizations (id, slug, name, plan) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slug) DO NOTHING RETURNING id, slug, name, plan, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(&slug)
        .bind(name)
        .bind(plan.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(org) = row {
            return Ok(org);
        }
    }
    Err(AppError(ApiError::internal()))
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub prefix: String,
    pub is_active: bool,
    pub org_slug: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

pub const KEY_VIEW_COLUMNS: &str =
    "k.id, k.name, k.scopes, k.prefix, (k.revoked_at IS NULL) AS is_active, \
     o.slug AS org_slug, k.created_at, k.last_used_at, k.revoked_at";

/// Create a key for `user_id` in `org_id`; returns its view and the raw key,
/// which is never stored. The gateway's Redis entry is written before the
/// key is returned, so it works on the ingestion path at once.
pub async fn create_api_key(
    pg: &PgPool,
    redis: &ConnectionManager,
    user_id: Uuid,
    org_id: Uuid,
    name: &str,
    scopes: &[String],
) -> AppResult<(ApiKeyView, String)> {
    let new = keys::generate();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, org_id, name, prefix, key_hash, scopes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(user_id)
    .bind(org_id)
    .bind(name)
    .bind(&new.prefix)
    .bind(&new.hash)
    .bind(scopes)
    .execute(pg)
    .await?;
    let record = key_record(pg, id).await?;
    if let Some(record) = record {
        cache_key(redis, &record).await?;
    }
    let view: ApiKeyView = sqlx::query_as(&format!(
        "SELECT {KEY_VIEW_COLUMNS} FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.id = $1"
    ))
    .bind(id)
    .fetch_one(pg)
    .await?;
    Ok((view, new.raw))
}

/// The gateway's view of an active key.
pub async fn key_record(pg: &PgPool, key_id: Uuid) -> AppResult<Option<KeyRecord>> {
    let row: Option<KeyRecordRow> = sqlx::query_as(&format!("{KEY_RECORD_SELECT}k.id = $1"))
        .bind(key_id)
        .fetch_optional(pg)
        .await?;
    Ok(row.map(KeyRecord::from_row))
}

async fn cache_key(redis: &ConnectionManager, record: &KeyRecord) -> AppResult<()> {
    let mut conn = redis.clone();
    let json = serde_json::to_string(record).expect("key records serialize");
    redis::cmd("SET")
        .arg(keys::redis_key(&record.hash))
        .arg(json)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

/// Revoke a key of `user_id`. Returns false when there is no such key.
/// PostgreSQL first, then the Redis tombstone (unconditionally, so that it
/// wins over a concurrent cache fill by the gateway).
pub async fn revoke_api_key(
    pg: &PgPool,
    redis: &ConnectionManager,
    user_id: Uuid,
    only_org: Option<Uuid>,
    key_id: Uuid,
) -> AppResult<bool> {
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) \
         WHERE id = $1 AND user_id = $2 AND ($3::uuid IS NULL OR org_id = $3) RETURNING key_hash",
    )
    .bind(key_id)
    .bind(user_id)
    .bind(only_org)
    .fetch_optional(pg)
    .await?;
    let Some((hash,)) = row else { return Ok(false) };
    let mut conn = redis.clone();
    redis::cmd("SET")
        .arg(keys::redis_key(&hash))
        .arg(keys::TOMBSTONE)
        .arg("EX")
        .arg(keys::TOMBSTONE_TTL_SECS)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(true)
}

/// Change an organization's plan (and optional limit override), and refresh
/// the cached key records so the gateway meters against the new limit.
pub async fn set_plan(
    pg: &PgPool,
    redis: &ConnectionManager,
    org_id: Uuid,
    plan: Plan,
    monthly_span_limit: Option<i64>,
) -> AppResult<()> {
    sqlx::query("UPDATE organizations SET plan = $2, monthly_span_limit = $3 WHERE id = $1")
        .bind(org_id)
        .bind(plan.as_str())
        .bind(monthly_span_limit)
        .execute(pg)
        .await?;
    let ids: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL")
            .bind(org_id)
            .fetch_all(pg)
            .await?;
    for (id,) in ids {
        if let Some(record) = key_record(pg, id).await? {
            cache_key(redis, &record).await?;
        }
    }
    Ok(())
}

pub async fn org_by_slug(pg: &PgPool, slug: &str) -> AppResult<Option<Organization>> {
    Ok(
        sqlx::query_as(
            "SELECT id, slug, name, plan, created_at FROM organizations WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(pg)
        .await?,
    )
}

pub async fn user_by_email(pg: &PgPool, email: &str) -> AppResult<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, password_hash, created_at FROM users WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(pg)
    .await?)
}

/// Set an organization's price for `model` (USD per million tokens, decimal
/// strings): stored in PostgreSQL and mirrored into the Redis hash the
/// gateway reads.
pub async fn set_price(
    pg: &PgPool,
    redis: &ConnectionManager,
    org_id: Uuid,
    model: &str,
    input: &str,
    output: &str,
    cached_input: &str,
) -> AppResult<()> {
    let price = Price::from_usd(input, output, cached_input)
        .map_err(|m| ApiError::bad_request(format!("price {m}")))?;
    let model = pricing::normalize_model(model);
    if model.is_empty() {
        return Err(ApiError::bad_request("model must not be empty").into());
    }
    sqlx::query(
        "INSERT INTO model_prices (org_id, model, input_per_million, output_per_million, cached_input_per_million) \
         VALUES ($1, $2, $3::numeric, $4::numeric, $5::numeric) \
         ON CONFLICT (org_id, model) DO UPDATE SET input_per_million = EXCLUDED.input_per_million, \
         output_per_million = EXCLUDED.output_per_million, \
         cached_input_per_million = EXCLUDED.cached_input_per_million, updated_at = now()",
    )
    .bind(org_id)
    .bind(&model)
    .bind(input)
    .bind(output)
    .bind(cached_input)
    .execute(pg)
    .await?;
    let mut conn = redis.clone();
    redis::cmd("HSET")
        .arg(pricing::overrides_redis_key(org_id))
        .arg(&model)
        .arg(serde_json::to_string(&price).expect("prices serialize"))
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs() {
        for (input, want) in [
            ("Ada Lovelace", "ada-lovelace"),
            ("  --ACME  Corp!! ", "acme-corp"),
            ("ünïcode", "n-code"),
            ("", "org"),
            ("!!!", "org"),
        ] {
            assert_eq!(slugify(input), want, "{input}");
        }
    }
}
