//! API-key authentication for the ingestion path.
//!
//! Lookup order: an in-process cache (a few seconds, which bounds how long a
//! revoked key keeps working), then Redis (`av:apikey:<sha256>`, written by
//! the query API on create and replaced by a tombstone on revoke), then
//! PostgreSQL, so that a cold or flushed Redis never locks out a valid key.
//! A PostgreSQL hit is written back to Redis with `SET NX`, so it can never
//! overwrite a revocation tombstone.

use agentvista_shared::clients::Redis;
use agentvista_shared::error::ApiError;
use agentvista_shared::keys::{self, KeyRecord, KeyRecordRow, KEY_RECORD_SELECT};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

const MAX_CACHE_ENTRIES: usize = 100_000;

pub struct KeyStore {
    redis: Redis,
    pg: PgPool,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<KeyRecord>)>>,
    used: Mutex<HashSet<Uuid>>,
}

impl KeyStore {
    pub fn new(redis: Redis, pg: PgPool, ttl: Duration) -> Self {
        KeyStore {
            redis,
            pg,
            ttl,
            cache: Mutex::new(HashMap::new()),
            used: Mutex::new(HashSet::new()),
        }
    }

    /// Authenticate an `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<KeyRecord, ApiError> {
        let key = header
            .and_then(keys::bearer)
            .and_then(keys::Presented::parse)
            .ok_or_else(ApiError::unauthorized)?;
        let record = self
            .lookup(key.hash())
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if !key.matches(&record.hash) {
            return Err(ApiError::unauthorized());
        }
        self.mark_used(record.key_id);
        Ok(record)
    }

    async fn lookup(&self, hash: &str) -> Result<Option<KeyRecord>, ApiError> {
        if let Some((at, rec)) = self.cache.lock().expect("cache lock").get(hash) {
            if at.elapsed() < self.ttl {
                return Ok(rec.clone());
            }
        }
        let found = match self.lookup_redis(hash).await {
            Ok(Some(Cached::Tombstone)) => None,
            Ok(Some(Cached::Record(r))) => Some(r),
            Ok(None) => self.lookup_postgres(hash, true).await?,
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable for key lookup, using postgres");
                self.lookup_postgres(hash, false).await?
            }
        };
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(hash.to_string(), (Instant::now(), found.clone()));
        Ok(found)
    }

    async fn lookup_redis(&self, hash: &str) -> redis::RedisResult<Option<Cached>> {
        let mut conn = self.redis.clone();
        let v: Option<String> = redis::cmd("GET")
            .arg(keys::redis_key(hash))
            .query_async(&mut conn)
            .await?;
        Ok(v.map(|v| {
            if v == keys::TOMBSTONE {
                Cached::Tombstone
            } else {
                serde_json::from_str(&v).map_or(Cached::Tombstone, Cached::Record)
            }
        }))
    }

    async fn lookup_postgres(
        &self,
        hash: &str,
        write_back: bool,
    ) -> Result<Option<KeyRecord>, ApiError> {
        let row: Option<KeyRecordRow> =
            sqlx::query_as(&format!("{KEY_RECORD_SELECT}k.key_hash = $1"))
                .bind(hash)
                .fetch_optional(&self.pg)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "postgres unavailable for key lookup");
                    ApiError::unavailable(
                        "Authentication is temporarily unavailable; retry shortly.",
                    )
                })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = KeyRecord::from_row(row);
        if write_back {
            let mut conn = self.redis.clone();
            let json = serde_json::to_string(&record).expect("key record serializes");
            let res: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(keys::redis_key(hash))
                .arg(json)
                .arg("NX")
                .query_async(&mut conn)
                .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "could not cache key record in redis");
            }
        }
        Ok(Some(record))
    }

    fn mark_used(&self, key_id: Uuid) {
        let mut used = self.used.lock().expect("used lock");
        if used.len() < 10_000 {
            used.insert(key_id);
        }
    }

    /// Record `last_used_at` for the keys seen since the last call: one
    /// UPDATE per interval instead of one per request.
    pub async fn flush_last_used(&self) {
        let ids: Vec<Uuid> = std::mem::take(&mut *self.used.lock().expect("used lock"))
            .into_iter()
            .collect();
        if ids.is_empty() {
            return;
        }
        if let Err(e) = sqlx::query(
            "UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1) AND revoked_at IS NULL",
        )
        .bind(&ids)
        .execute(&self.pg)
        .await
        {
            tracing::warn!(error = %e, keys = ids.len(), "could not record key last_used_at");
        }
    }
}

enum Cached {
    Tombstone,
    Record(KeyRecord),
}
