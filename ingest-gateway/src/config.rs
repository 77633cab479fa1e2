//! Gateway configuration, read once from `AV_*` environment variables.

use agentvista_shared::config::{self, CommonConfig, ConfigError};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub listen: SocketAddr,
    /// Largest request body accepted, compressed or not.
    pub max_body_bytes: usize,
    /// Requests processed at once; beyond this the gateway sheds load.
    pub max_inflight: usize,
    /// Decoded request bodies held at once, in bytes (at least
    /// `max_body_bytes`); beyond this the gateway sheds load. Bounds the
    /// gateway's memory: what a request allocates is proportional to its body.
    pub max_inflight_bytes: usize,
    /// How long to wait for Kafka to confirm a batch before answering 503.
    pub produce_timeout: Duration,
    /// How long a key lookup is cached in process (bounds revocation delay).
    pub key_cache_ttl: Duration,
    /// Deadline for draining in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// Kafka keys per organization (`AV_KAFKA_KEY_BUCKETS`, 1 to 255):
    /// records are keyed by organization and a bucket of their trace, so
    /// one organization spreads over up to this many partitions (and
    /// writers) while each trace stays on one partition, in order
    /// (`IngestMessage::keyed`). 1 keys by organization alone.
    pub kafka_key_buckets: u8,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let c = Config {
            common: CommonConfig::from_env()?,
            listen: config::parse(
                "AV_GATEWAY_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 8081)),
            )?,
            max_body_bytes: config::parse("AV_GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024)?,
            max_inflight: config::parse("AV_GATEWAY_MAX_INFLIGHT", 2048)?,
            max_inflight_bytes: config::parse("AV_GATEWAY_MAX_INFLIGHT_BYTES", 8 * 1024 * 1024)?,
            produce_timeout: Duration::from_millis(config::parse(
                "AV_GATEWAY_PRODUCE_TIMEOUT_MS",
                5_000u64,
            )?),
            key_cache_ttl: Duration::from_millis(config::parse(
                "AV_GATEWAY_KEY_CACHE_MS",
                2_000u64,
            )?),
            shutdown_grace: Duration::from_secs(config::parse("AV_SHUTDOWN_GRACE_SECS", 20u64)?),
            kafka_key_buckets: config::parse("AV_KAFKA_KEY_BUCKETS", 16u8)?,
        };
        if c.max_inflight_bytes < c.max_body_bytes {
            return Err(ConfigError {
                var: "AV_GATEWAY_MAX_INFLIGHT_BYTES".into(),
                message: "must be at least AV_GATEWAY_MAX_BODY_BYTES".into(),
            });
        }
        if c.kafka_key_buckets == 0 {
            return Err(ConfigError {
                var: "AV_KAFKA_KEY_BUCKETS".into(),
                message: "must be 1 to 255".into(),
            });
        }
        if c.max_body_bytes == 0 || c.max_inflight == 0 {
            return Err(ConfigError {
                var: "AV_GATEWAY_MAX_BODY_BYTES/AV_GATEWAY_MAX_INFLIGHT".into(),
                message: "must be positive".into(),
            });
        }
        Ok(c)
    }
}
