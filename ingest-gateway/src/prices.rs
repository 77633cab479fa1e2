//! Cost of LLM spans without a client cost, from the price table with the
//! organization's overrides (Redis hash `av:prices:<org_id>`, written by
//! `query-api admin set-price`), cached in process for a few seconds.

use agentvista_shared::clients::Redis;
use agentvista_shared::model::SpanRecord;
use agentvista_shared::pricing::{self, Price};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

type Overrides = Arc<HashMap<String, Price>>;

pub struct Prices {
    redis: Redis,
    ttl: Duration,
    cache: Mutex<HashMap<Uuid, (Instant, Overrides)>>,
}

impl Prices {
    pub fn new(redis: Redis, ttl: Duration) -> Self {
        Prices {
            redis,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The organization's overrides (empty when it has none or Redis is
    /// unreachable: the shipped table still applies).
    pub async fn overrides(&self, org_id: Uuid) -> Overrides {
        if let Some((at, o)) = self.cache.lock().expect("prices lock").get(&org_id) {
            if at.elapsed() < self.ttl {
                return o.clone();
            }
        }
        let mut conn = self.redis.clone();
        let raw: HashMap<String, String> = match redis::cmd("HGETALL")
            .arg(pricing::overrides_redis_key(org_id))
            .query_async(&mut conn)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read price overrides");
                HashMap::new()
            }
        };
        let parsed: HashMap<String, Price> = raw
            .into_iter()
            .filter_map(|(model, v)| serde_json::from_str(&v).ok().map(|p| (model, p)))
            .collect();
        let parsed = Arc::new(parsed);
        let mut cache = self.cache.lock().expect("prices lock");
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(org_id, (Instant::now(), parsed.clone()));
        parsed
    }
}

/// Fill `cost_nanos` of spans that have a model and tokens but no cost.
/// A cost sent by the client is never replaced.
pub fn apply(spans: &mut [SpanRecord], overrides: &HashMap<String, Price>) {
    for s in spans {
        if s.cost_nanos.is_some() {
            continue;
        }
        let (Some(model), true) = (
            &s.model,
            s.input_tokens.is_some() || s.output_tokens.is_some(),
        ) else {
            continue;
        };
        if let Some(price) = pricing::lookup(model, overrides) {
            s.cost_nanos = Some(price.cost(
                s.input_tokens.unwrap_or(0),
                s.output_tokens.unwrap_or(0),
                s.cached_tokens.unwrap_or(0),
            ));
            s.cost_computed = true;
        }
    }
}
