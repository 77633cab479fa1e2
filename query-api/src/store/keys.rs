//! API keys (PostgreSQL), and the key records the ingestion gateway reads
//! from Redis: written on creation and plan changes, replaced by a
//! tombstone on revocation.

use crate::error::AppResult;
use agentvista_shared::clients::Redis;
use agentvista_shared::keys::{self, KeyRecord, KeyRecordRow, KEY_RECORD_SELECT};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A key as read back (never its hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub prefix: String,
    pub is_active: bool,
    pub org_slug: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

const KEY_COLUMNS: &str = "k.id, k.name, k.scopes, k.prefix, (k.revoked_at IS NULL) AS is_active, \
     o.slug AS org_slug, k.created_at, k.last_used_at, k.revoked_at";

/// Create a key for `user_id` in `org_id`; returns its view and the raw key,
/// which is never stored. The gateway's Redis entry is written before the
/// key is returned, so it works on the ingestion path at once.
pub async fn create_api_key(
    pg: &PgPool,
    redis: &Redis,
    user_id: Uuid,
    org_id: Uuid,
    name: &str,
    scopes: &[String],
) -> AppResult<(StoredKey, String)> {
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
    let view: StoredKey = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.id = $1"
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

pub async fn cache_key(redis: &Redis, record: &KeyRecord) -> AppResult<()> {
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
    redis: &Redis,
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
    tombstone(redis, &hash).await?;
    Ok(true)
}

/// Every key of the organization's members (active first, newest first,
/// at most 1,000), with its owner's id and email.
pub async fn of_org(pg: &PgPool, org_id: Uuid) -> AppResult<Vec<(StoredKey, Uuid, String)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        key: StoredKey,
        user_id: Uuid,
        email: String,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS}, k.user_id, u.email FROM api_keys k \
         JOIN organizations o ON o.id = k.org_id JOIN users u ON u.id = k.user_id \
         WHERE k.org_id = $1 ORDER BY (k.revoked_at IS NULL) DESC, k.created_at DESC, k.id DESC LIMIT 1000"
    ))
    .bind(org_id)
    .fetch_all(pg)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.key, r.user_id, r.email))
        .collect())
}

/// Revoke any key of the organization (an admin's action). Returns false
/// when the organization has no such key.
pub async fn revoke_in_org(
    pg: &PgPool,
    redis: &Redis,
    org_id: Uuid,
    key_id: Uuid,
) -> AppResult<bool> {
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) \
         WHERE id = $1 AND org_id = $2 RETURNING key_hash",
    )
    .bind(key_id)
    .bind(org_id)
    .fetch_optional(pg)
    .await?;
    let Some((hash,)) = row else { return Ok(false) };
    tombstone(redis, &hash).await?;
    Ok(true)
}

/// Revoke every key `user_id` holds in `org_id` (they left the
/// organization); returns how many were active.
pub async fn revoke_all_of(
    pg: &PgPool,
    redis: &Redis,
    user_id: Uuid,
    org_id: Uuid,
) -> AppResult<usize> {
    let hashes: Vec<(String,)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = now() \
         WHERE user_id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING key_hash",
    )
    .bind(user_id)
    .bind(org_id)
    .fetch_all(pg)
    .await?;
    for (hash,) in &hashes {
        tombstone(redis, hash).await?;
    }
    Ok(hashes.len())
}

/// Replace a key's cached record by the revocation tombstone
/// (unconditionally, so that it wins over a concurrent cache fill by the
/// gateway).
async fn tombstone(redis: &Redis, hash: &str) -> AppResult<()> {
    let mut conn = redis.clone();
    redis::cmd("SET")
        .arg(keys::redis_key(hash))
        .arg(keys::TOMBSTONE)
        .arg("EX")
        .arg(keys::TOMBSTONE_TTL_SECS)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

/// A page of a user's keys, newest first (`only_org`: those of one
/// organization), with the user's key count.
pub async fn page(
    pg: &PgPool,
    user_id: Uuid,
    only_org: Option<Uuid>,
    page: i64,
    size: i64,
) -> AppResult<(i64, Vec<StoredKey>)> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM api_keys WHERE user_id = $1 AND ($2::uuid IS NULL OR org_id = $2)",
    )
    .bind(user_id)
    .bind(only_org)
    .fetch_one(pg)
    .await?;
    let keys: Vec<StoredKey> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN organizations o ON o.id = k.org_id \
         WHERE k.user_id = $1 AND ($4::uuid IS NULL OR k.org_id = $4) \
         ORDER BY k.created_at DESC, k.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(size)
    .bind((page - 1) * size)
    .bind(only_org)
    .fetch_all(pg)
    .await?;
    Ok((count, keys))
}
