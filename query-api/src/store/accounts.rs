//! Accounts (PostgreSQL): users, organizations, memberships, sessions,
//! plans and per-organization prices (mirrored into the Redis the gateway
//! reads). Shared by the routes and the admin command.

use crate::error::{AppError, AppResult};
use agentvista_shared::clients::Redis;
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::plan::Plan;
use agentvista_shared::pricing::{self, Price};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
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

/// Change an organization's plan (and optional limit override), and refresh
/// the cached key records so the gateway meters against the new limit.
pub async fn set_plan(
    pg: &PgPool,
    redis: &Redis,
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
        if let Some(record) = super::keys::key_record(pg, id).await? {
            super::keys::cache_key(redis, &record).await?;
        }
    }
    Ok(())
}

pub async fn org_by_id(pg: &PgPool, org_id: Uuid) -> AppResult<Option<Organization>> {
    Ok(
        sqlx::query_as("SELECT id, slug, name, plan, created_at FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(pg)
            .await?,
    )
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
    redis: &Redis,
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

/// An organization of a user, with the user's role in it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Membership {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub role: String,
}

pub async fn user_by_id(pg: &PgPool, user_id: Uuid) -> AppResult<Option<User>> {
    Ok(
        sqlx::query_as(
            "SELECT id, email, name, password_hash, created_at FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(pg)
        .await?,
    )
}

/// The organizations of a user, in the order they joined.
pub async fn memberships(pg: &PgPool, user_id: Uuid) -> AppResult<Vec<Membership>> {
    Ok(sqlx::query_as(
        "SELECT o.id, o.slug, o.name, o.plan, m.role FROM organizations o \
         JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 ORDER BY m.created_at, o.id",
    )
    .bind(user_id)
    .fetch_all(pg)
    .await?)
}

/// The id of the organization `slug` when `user_id` is a member of it.
pub async fn member_org_by_slug(pg: &PgPool, user_id: Uuid, slug: &str) -> AppResult<Option<Uuid>> {
    let org: Option<(Uuid,)> = sqlx::query_as(
        "SELECT o.id FROM organizations o JOIN memberships m ON m.org_id = o.id \
         WHERE o.slug = $1 AND m.user_id = $2",
    )
    .bind(slug)
    .bind(user_id)
    .fetch_optional(pg)
    .await?;
    Ok(org.map(|(id,)| id))
}

/// Store a session (by the hash of its token) until `expires_at`; returns
/// its id (the JWTs issued with it name it).
pub async fn create_session(
    pg: &PgPool,
    token_hash: &str,
    user_id: Uuid,
    expires_at: OffsetDateTime,
) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(token_hash)
    .bind(user_id)
    .bind(expires_at)
    .execute(pg)
    .await?;
    Ok(id)
}

/// Whether the session `id` of `user_id` is live (not ended, not expired).
pub async fn session_live(pg: &PgPool, id: Uuid, user_id: Uuid) -> AppResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND expires_at > now())",
    )
    .bind(id)
    .bind(user_id)
    .fetch_one(pg)
    .await?)
}

/// A session as listed to its user.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredSession {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The user's live sessions, newest first.
pub async fn sessions_of(pg: &PgPool, user_id: Uuid) -> AppResult<Vec<StoredSession>> {
    Ok(sqlx::query_as(
        "SELECT id, created_at, expires_at FROM sessions WHERE user_id = $1 AND expires_at > now() \
         ORDER BY created_at DESC, id DESC LIMIT 1000",
    )
    .bind(user_id)
    .fetch_all(pg)
    .await?)
}

/// End one session of the user (false: no such session).
pub async fn end_session(pg: &PgPool, user_id: Uuid, id: Uuid) -> AppResult<bool> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(pg)
            .await?
            .rows_affected()
            > 0,
    )
}

/// End every session of the user but `keep` (when given).
pub async fn end_sessions(pg: &PgPool, user_id: Uuid, keep: Option<Uuid>) -> AppResult<u64> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)")
            .bind(user_id)
            .bind(keep)
            .execute(pg)
            .await?
            .rows_affected(),
    )
}

/// Replace the user's password hash and end their other sessions, in one
/// transaction.
pub async fn set_password(
    pg: &PgPool,
    user_id: Uuid,
    hash: &str,
    keep_session: Option<Uuid>,
) -> AppResult<()> {
    let mut tx = pg.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(user_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)")
        .bind(user_id)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn delete_session(pg: &PgPool, token_hash: &str) -> AppResult<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pg)
        .await?;
    Ok(())
}

/// An organization's plan and its monthly span limit override.
pub async fn plan_of(pg: &PgPool, org_id: Uuid) -> AppResult<Option<(String, Option<i64>)>> {
    Ok(
        sqlx::query_as("SELECT plan, monthly_span_limit FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(pg)
            .await?,
    )
}

/// Spans metered this month (UTC), as the gateway counts them in Redis
/// (the quota's own counter: the number a 429 is decided on). `None` when
/// Redis cannot be read.
pub async fn spans_this_month(
    redis: &agentvista_shared::clients::Redis,
    org_id: Uuid,
    now: OffsetDateTime,
) -> Option<u64> {
    let mut conn = redis.clone();
    let key = agentvista_shared::plan::quota_counter_key(org_id, now);
    match redis::cmd("GET")
        .arg(&key)
        .query_async::<Option<i64>>(&mut conn)
        .await
    {
        Ok(v) => Some(v.unwrap_or(0).max(0) as u64),
        Err(e) => {
            tracing::warn!(error = %e, "reading the month's span count");
            None
        }
    }
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
