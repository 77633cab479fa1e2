//! One constructor for each backing-service client, so that the three
//! services connect the same way (timeouts, credentials, database).

use crate::config::CommonConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// A ClickHouse client for the server (no database selected: migrations
/// create it), with synchronous inserts: an insert has returned only once
/// the rows are stored. `http://` or `https://` (rustls), a server
/// certificate verified against the system's CAs and those of
/// `AV_CLICKHOUSE_CA_FILE`; the HTTP settings are the crate's own defaults
/// (keep-alive 60 s, idle connections dropped after 2 s, before the
/// server's).
pub fn clickhouse_server(common: &CommonConfig) -> clickhouse::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = &common.clickhouse_ca_file {
        match ca_certificates(path) {
            Ok(certs) => {
                roots.add_parsable_certificates(certs);
            }
            // Checked when the configuration was read; a file changed since
            // then leaves the system's CAs (and a clear TLS error).
            Err(e) => tracing::error!(error = %e, "AV_CLICKHOUSE_CA_FILE unreadable"),
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports rustls's default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .build(https);
    clickhouse::Client::with_http_client(client)
        .with_url(&common.clickhouse_url)
        .with_user(&common.clickhouse_user)
        .with_password(common.clickhouse_password.expose())
        .with_setting("async_insert", "0")
}

/// A ClickHouse client for the database the services read and write: the
/// schema's on one node; on a cluster its `Distributed` twin, with inserts
/// that return only once every shard has stored its rows
/// (`distributed_foreground_insert`, so the writer's offset commit still
/// follows the insert), and subqueries over distributed tables run on each
/// shard against its local tables (`distributed_product_mode = 'local'`:
/// exact because the sharding keys co-locate what the reads join, see
/// docs/RUNNING-AT-SCALE.md, "Cluster mode"). An `INSERT ... SELECT`
/// between distributed tables (the rollups) runs on the initiator
/// (`parallel_distributed_insert_select = 0`): run per shard, each shard
/// would store its own partial aggregate of a key that the sharding key
/// puts elsewhere.
pub fn clickhouse(common: &CommonConfig) -> clickhouse::Client {
    let client = clickhouse_server(common).with_database(common.clickhouse_data_database());
    match common.clickhouse_cluster {
        Some(_) => client
            .with_setting("distributed_foreground_insert", "1")
            .with_setting("distributed_product_mode", "local")
            .with_setting("parallel_distributed_insert_select", "0"),
        None => client,
    }
}

/// The certificates of a PEM file (at least one), for a private CA.
pub fn ca_certificates(
    path: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// The base configuration of every Kafka client (producer, consumers, the
/// readiness probe): the brokers and the security settings
/// (`CommonConfig::kafka_settings`); each client adds its own settings.
pub fn kafka(common: &CommonConfig) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", &common.kafka_brokers);
    for (k, v) in common.kafka_settings() {
        config.set(k, v);
    }
    config
}

/// The Redis client of `AV_REDIS_URL`: `redis://`, or `rediss://` (TLS,
/// rustls) verified against the system's CAs or, when `AV_REDIS_CA_FILE`
/// is set, against the CAs in that PEM file.
pub fn redis_client(common: &CommonConfig) -> Result<redis::Client, redis::RedisError> {
    match &common.redis_ca_file {
        Some(path) if common.redis_url.starts_with("rediss://") => {
            let root_cert = std::fs::read(path).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "reading AV_REDIS_CA_FILE",
                    e.to_string(),
                ))
            })?;
            redis::Client::build_with_tls(
                common.redis_url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
        }
        _ => redis::Client::open(common.redis_url.as_str()),
    }
}

/// A Redis handle that connects on first use and then reconnects by
/// itself; each command times out after 2 s (callers decide what an outage
/// means: the gateway fails open on quota, the key cache falls back to
/// PostgreSQL). It is a [`redis::aio::ConnectionLike`], so commands and
/// scripts run on a clone of it as on a connection. Cloning is cheap and
/// shares the connection.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: Arc<OnceCell<ConnectionManager>>,
}

impl Redis {
    /// A handle that has not connected yet (nothing is sent until a
    /// command): for tests of routes that never reach Redis.
    pub fn lazy(common: &CommonConfig) -> Result<Self, redis::RedisError> {
        Ok(Redis {
            client: redis_client(common)?,
            conn: Arc::new(OnceCell::new()),
        })
    }

    /// The shared connection, connecting on first use.
    pub async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        self.conn
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(
                    self.client.clone(),
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Duration::from_secs(2))
                        .set_response_timeout(Duration::from_secs(2))
                        .set_number_of_retries(2)
                        // At most 1 s between attempts (the crate's default
                        // backoff made a refused first connection take
                        // two minutes to report).
                        .set_max_delay(1_000),
                )
            })
            .await
            .cloned()
    }
}

impl redis::aio::ConnectionLike for Redis {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move { self.connection().await?.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            self.connection()
                .await?
                .req_packed_commands(cmd, offset, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.client.get_connection_info().redis.db
    }
}

/// A connected Redis handle: fails when Redis cannot be reached at start,
/// so that a misconfigured service stops at once.
pub async fn redis(common: &CommonConfig) -> Result<Redis, redis::RedisError> {
    let r = Redis::lazy(common)?;
    r.connection().await?;
    Ok(r)
}
