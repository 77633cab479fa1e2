//! The ingestion gateway: a lean hyper server.
//!
//! For each request it authenticates the API key, validates and normalizes
//! the payload, reserves the spans against the monthly quota in Redis and
//! produces one message to Kafka with acks=all. It answers 200 only after
//! the broker confirmed the message, and 503 with `Retry-After` when it could
//! not hand the data over: accepted data is never dropped.

pub mod auth;
pub mod body;
pub mod config;
pub mod otlp;
pub mod ports;
pub mod prices;
pub mod producer;
pub mod quota;
pub mod sdk;

mod admission;
mod http;
mod ingest;
pub mod openapi;
mod publish;

pub use crate::admission::{authorize_write, Admission};
pub use crate::http::error_response;
pub use crate::publish::publish;

use crate::auth::KeyStore;
use crate::config::Config;
use crate::ports::{Authenticate, Publisher, QuotaStore};
use crate::producer::Queue;
use crate::quota::Quota;
use agentvista_shared::clients::Redis;
use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use sqlx::postgres::PgPoolOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const BATCH_PATH: &str = "/api/v1/traces/batch";
/// Served the same, as the contract's other paths with a trailing slash are.
pub const BATCH_PATH_SLASH: &str = "/api/v1/traces/batch/";

pub use openapi::{openapi, routes};

/// Shared state of one gateway process.
pub struct App {
    pub config: Config,
    pub keys: Arc<dyn Authenticate>,
    pub quota: Arc<dyn QuotaStore>,
    pub prices: prices::Prices,
    pub queue: Arc<dyn Publisher>,
    pub redis: Redis,
    pub pg: sqlx::PgPool,
    pub metrics: agentvista_shared::metrics::RequestMetrics,
    /// Records accepted (acknowledged by Kafka), for `/metrics`.
    pub accepted: Accepted,
    pub(crate) inflight: Semaphore,
    /// The in-flight body budget, in KiB.
    pub(crate) inflight_bytes: Semaphore,
}

/// Records acknowledged by Kafka since start, by kind.
#[derive(Default)]
pub struct Accepted {
    pub spans: std::sync::atomic::AtomicU64,
    pub log_records: std::sync::atomic::AtomicU64,
    pub metric_points: std::sync::atomic::AtomicU64,
}

/// A gateway with its listener bound, ready to [`Gateway::run`].
pub struct Gateway {
    listener: TcpListener,
    app: Arc<App>,
}

/// Bind the listener and create the clients. Fails fast when Redis cannot
/// be reached at start; later outages are survived.
pub async fn build(config: Config) -> anyhow::Result<Gateway> {
    let redis = agentvista_shared::clients::redis(&config.common)
        .await
        .context("connecting to redis")?;
    let pg = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(config.common.database_url.expose())
        .context("AV_DATABASE_URL is not a valid postgres url")?;
    let queue = Queue::with_config(
        agentvista_shared::clients::kafka(&config.common),
        &config.common.kafka_topic,
        config.produce_timeout,
    )
    .context("creating the kafka producer")?;
    let keys = KeyStore::new(redis.clone(), pg.clone(), config.key_cache_ttl);
    let quota = Quota::new(redis.clone());
    let app = App::new(
        config,
        Arc::new(keys),
        Arc::new(quota),
        Arc::new(queue),
        redis,
        pg,
    );
    Gateway::bind(app).await
}

impl App {
    /// The shared state over the given key store, quota and queue (the
    /// real ones in [`build`]; in-memory ones in tests). `redis` serves the
    /// price overrides; `pg` the readiness check.
    pub fn new(
        config: Config,
        keys: Arc<dyn Authenticate>,
        quota: Arc<dyn QuotaStore>,
        queue: Arc<dyn Publisher>,
        redis: Redis,
        pg: sqlx::PgPool,
    ) -> App {
        App {
            keys,
            quota,
            prices: prices::Prices::new(redis.clone(), config.key_cache_ttl),
            queue,
            redis,
            pg,
            inflight: Semaphore::new(config.max_inflight),
            inflight_bytes: Semaphore::new(admission::kib(config.max_inflight_bytes) as usize),
            metrics: Default::default(),
            accepted: Default::default(),
            config,
        }
    }
}

impl Gateway {
    /// Bind `app.config.listen` for `app`.
    pub async fn bind(app: App) -> anyhow::Result<Gateway> {
        let listener = TcpListener::bind(app.config.listen)
            .await
            .with_context(|| format!("binding {}", app.config.listen))?;
        Ok(Gateway {
            listener,
            app: Arc::new(app),
        })
    }
}

impl Gateway {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serve until `shutdown` resolves, then stop accepting, drain in-flight
    /// requests (bounded by the grace period) and flush the producer.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Gateway { listener, app } = self;
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        let flusher = tokio::spawn({
            let app = app.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                loop {
                    tick.tick().await;
                    app.keys.flush_last_used().await;
                }
            }
        });
        tokio::pin!(shutdown);
        tracing::info!(addr = %listener.local_addr()?, "gateway listening");
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    let (stream, _) = match conn {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, std::convert::Infallible>(http::handle(app, req).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!("gateway draining in-flight requests");
        let grace = app.config.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within the grace period");
        }
        flusher.abort();
        app.keys.flush_last_used().await;
        let app2 = app.clone();
        tokio::task::spawn_blocking(move || app2.queue.flush(Duration::from_secs(5))).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}
