//! One constructor for each backing-service client, so that the three
//! services connect the same way (timeouts, credentials, database).

use crate::config::CommonConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// A ClickHouse client for the server (no database selected: migrations
/// create it), with synchronous inserts: an insert has returned only once
/// the rows are stored.
pub fn clickhouse_server(common: &CommonConfig) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&common.clickhouse_url)
        .with_user(&common.clickhouse_user)
        .with_password(common.clickhouse_password.expose())
        .with_setting("async_insert", "0")
}

/// A ClickHouse client for the AgentVista database.
pub fn clickhouse(common: &CommonConfig) -> clickhouse::Client {
    clickhouse_server(common).with_database(&common.clickhouse_database)
}

/// A Redis connection that reconnects by itself; each command times out
/// after 2 s (callers decide what an outage means: the gateway fails open
/// on quota, the key cache falls back to PostgreSQL). Fails when Redis
/// cannot be reached at start.
pub async fn redis(common: &CommonConfig) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(common.redis_url.as_str())?;
    ConnectionManager::new_with_config(
        client,
        ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2),
    )
    .await
}
