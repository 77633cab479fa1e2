//! The monthly span quota, metered atomically in Redis.
//!
//! One counter per organization and calendar month (UTC). A batch reserves
//! all its spans at once or none: the Lua script refuses a reservation that
//! would pass the limit, so racing batches can never overshoot it. When
//! Kafka does not take the batch, the reservation is given back.

use agentvista_shared::clients::Redis;
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

const RESERVE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if cur + n > tonumber(ARGV[2]) then return -1 end
local v = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return v
";

/// Counters outlive their month by a little, for reporting.
const COUNTER_TTL_SECS: u64 = 40 * 24 * 3600;

pub struct Quota {
    redis: Redis,
    script: Script,
}

pub enum Reservation {
    Granted { key: String, spans: u64 },
    Exceeded,
}

pub fn counter_key(org_id: Uuid, now: OffsetDateTime) -> String {
    agentvista_shared::plan::quota_counter_key(org_id, now)
}

impl Quota {
    pub fn new(redis: Redis) -> Self {
        Quota {
            redis,
            script: Script::new(RESERVE),
        }
    }

    pub async fn reserve(
        &self,
        org_id: Uuid,
        spans: u64,
        limit: u64,
    ) -> redis::RedisResult<Reservation> {
        let key = counter_key(org_id, OffsetDateTime::now_utc());
        if spans == 0 {
            return Ok(Reservation::Granted { key, spans });
        }
        let mut conn = self.redis.clone();
        let v: i64 = self
            .script
            .key(&key)
            .arg(spans)
            .arg(limit)
            .arg(COUNTER_TTL_SECS)
            .invoke_async(&mut conn)
            .await?;
        Ok(if v < 0 {
            Reservation::Exceeded
        } else {
            Reservation::Granted { key, spans }
        })
    }

    /// Give back a reservation whose batch was not accepted.
    pub async fn release(&self, key: &str, spans: u64) {
        if spans == 0 {
            return;
        }
        let mut conn = self.redis.clone();
        let res: redis::RedisResult<i64> = redis::cmd("DECRBY")
            .arg(key)
            .arg(spans)
            .query_async(&mut conn)
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, spans, "could not release quota reservation");
        }
    }
}
