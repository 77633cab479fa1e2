//! The query API: an axum server for every dashboard, key and auth route.
//!
//! Telemetry is read from ClickHouse; the control plane (users,
//! organizations, memberships, API keys, sessions) lives in PostgreSQL.

pub mod admin;
pub mod auth;
pub mod email;
pub mod error;
pub mod histogram;
pub mod login_throttle;
pub mod router;
pub mod routes;
pub mod security;
pub mod spantree;
pub mod sql;
pub mod store;
pub mod views;
pub mod webhooks;
pub mod workers;

use agentvista_shared::clients::Redis;
use agentvista_shared::config::{self, CommonConfig, ConfigError, Secret};
use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub listen: SocketAddr,
    /// HS256 secret for JWTs; shared by every replica.
    pub jwt_secret: Option<Secret>,
    pub jwt_ttl: Duration,
    pub session_ttl: time::Duration,
    /// Mark the session cookie `Secure` (set behind HTTPS).
    pub cookie_secure: bool,
    /// Whether anyone may sign up (`AV_SIGNUP_ENABLED`, default true); off,
    /// accounts come from `query-api admin bootstrap` and member invites.
    pub signup_enabled: bool,
    /// Where `/healthz`, `/readyz` and `/metrics` are served instead of the
    /// main port (`AV_QUERY_INTERNAL_LISTEN`; unset: on the main port), so
    /// that a proxy sending `/` to the query API cannot expose them.
    pub internal_listen: Option<SocketAddr>,
    pub shutdown_grace: Duration,
    /// The run-statistics rollup worker (`rollup`).
    pub rollup: store::run_stats::RefreshConfig,
    /// Telemetry reads (agents and dashboard routes) in progress at once
    /// per replica; each runs at most three ClickHouse queries at a time.
    /// Beyond it a read waits up to `read_wait`, then gets 503.
    pub max_reads: usize,
    pub read_wait: Duration,
    /// Webhook delivery (`AV_WEBHOOK_*`).
    pub webhooks: webhooks::WebhookConfig,
    /// Time between alert evaluation passes; zero disables the evaluator.
    pub alert_interval: Duration,
    /// Email over SMTP (`AV_SMTP_*`); `None` without `AV_SMTP_HOST`.
    pub smtp: Option<email::SmtpConfig>,
    /// The dashboard's base URL, for links in notifications.
    pub public_url: String,
    /// The built web dashboard (`web/dist`), served at `/` on the API's
    /// origin (`AV_WEB_DIR`; default `web/dist` when it exists there).
    pub web_dir: Option<std::path::PathBuf>,
    /// The most spans one trace detail answers with (`AV_TRACE_MAX_SPANS`,
    /// default 10,000, at most 50,000); a larger trace says `truncated`.
    pub trace_max_spans: i64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let secret = config::string("AV_JWT_SECRET", "");
        if !secret.is_empty() && secret.len() < 32 {
            return Err(ConfigError {
                var: "AV_JWT_SECRET".into(),
                message: "must be at least 32 characters".into(),
            });
        }
        Ok(Config {
            common: CommonConfig::from_env()?,
            listen: config::parse("AV_QUERY_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8082)))?,
            jwt_secret: (!secret.is_empty()).then(|| Secret::new(secret)),
            jwt_ttl: Duration::from_secs(config::parse("AV_JWT_TTL_SECS", 900u64)?),
            session_ttl: time::Duration::days(config::parse("AV_SESSION_TTL_DAYS", 14i64)?),
            cookie_secure: config::parse("AV_COOKIE_SECURE", false)?,
            signup_enabled: config::parse("AV_SIGNUP_ENABLED", true)?,
            internal_listen: match config::string("AV_QUERY_INTERNAL_LISTEN", "").as_str() {
                "" => None,
                _ => Some(config::parse(
                    "AV_QUERY_INTERNAL_LISTEN",
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                )?),
            },
            shutdown_grace: Duration::from_secs(config::parse("AV_SHUTDOWN_GRACE_SECS", 20u64)?),
            max_reads: config::parse("AV_QUERY_MAX_READS", 16usize)?.max(1),
            read_wait: Duration::from_millis(config::parse("AV_QUERY_READ_WAIT_MS", 5000u64)?),
            alert_interval: Duration::from_secs(config::parse("AV_ALERT_INTERVAL_SECS", 15u64)?),
            trace_max_spans: config::parse("AV_TRACE_MAX_SPANS", store::spans::MAX_TRACE_SPANS)?
                .clamp(1, 50_000),
            public_url: config::string("AV_PUBLIC_URL", "http://127.0.0.1:8080"),
            smtp: match config::string("AV_SMTP_HOST", "").as_str() {
                "" => None,
                host => Some(email::SmtpConfig {
                    host: host.to_string(),
                    port: config::parse("AV_SMTP_PORT", 25u16)?,
                    tls: match config::string("AV_SMTP_TLS", "none").as_str() {
                        "none" => email::TlsMode::None,
                        "starttls" => email::TlsMode::StartTls,
                        "tls" => email::TlsMode::Tls,
                        _ => {
                            return Err(ConfigError {
                                var: "AV_SMTP_TLS".into(),
                                message: "must be none, starttls or tls".into(),
                            })
                        }
                    },
                    username: Some(config::string("AV_SMTP_USERNAME", ""))
                        .filter(|u| !u.is_empty()),
                    password: Some(config::string("AV_SMTP_PASSWORD", ""))
                        .filter(|p| !p.is_empty())
                        .map(Secret::new),
                    from: config::string("AV_SMTP_FROM", "AgentVista <alerts@agentvista.local>"),
                    public_url: config::string("AV_PUBLIC_URL", "http://127.0.0.1:8080"),
                }),
            },
            webhooks: webhooks::WebhookConfig {
                allow_http: config::parse("AV_WEBHOOK_ALLOW_HTTP", false)?,
                allow_private: config::parse("AV_WEBHOOK_ALLOW_PRIVATE", false)?,
                timeout: Duration::from_secs(
                    config::parse("AV_WEBHOOK_TIMEOUT_SECS", 10u64)?.max(1),
                ),
                breaker_threshold: config::parse("AV_WEBHOOK_BREAKER_THRESHOLD", 10i32)?.max(1),
                breaker_window: Duration::from_secs(config::parse(
                    "AV_WEBHOOK_BREAKER_WINDOW_SECS",
                    60u64,
                )?),
                backoff_scale: config::parse("AV_WEBHOOK_BACKOFF_SCALE", 1.0f64)?,
                poll: Duration::from_millis(config::parse("AV_WEBHOOK_POLL_MS", 200u64)?),
                // Longer than an attempt may take, so that a live holder
                // always renews in time.
                lease: Duration::from_secs(config::parse("AV_WEBHOOK_LEASE_SECS", 30u64)?.max(1))
                    .max(Duration::from_secs(
                        config::parse("AV_WEBHOOK_TIMEOUT_SECS", 10u64)?.max(1) + 5,
                    )),
                concurrency: config::parse("AV_WEBHOOK_CONCURRENCY", 32usize)?.max(1),
                events: config::parse("AV_WEBHOOK_EVENTS", true)?,
                events_group: config::string("AV_WEBHOOK_EVENTS_GROUP", "av-webhook-events"),
                events_from: match config::string("AV_WEBHOOK_EVENTS_FROM", "latest").as_str() {
                    v @ ("earliest" | "latest") => v.to_string(),
                    _ => {
                        return Err(ConfigError {
                            var: "AV_WEBHOOK_EVENTS_FROM".into(),
                            message: "must be earliest or latest".into(),
                        })
                    }
                },
            },
            rollup: store::run_stats::RefreshConfig {
                interval: Duration::from_secs(config::parse("AV_ROLLUP_INTERVAL_SECS", 30u64)?),
                settle: Duration::from_secs(config::parse("AV_ROLLUP_SETTLE_SECS", 120u64)?),
            },
            web_dir: match config::string("AV_WEB_DIR", "").as_str() {
                "" => Some(std::path::PathBuf::from("web/dist"))
                    .filter(|d| d.join("index.html").is_file()),
                "none" => None,
                dir => Some(std::path::PathBuf::from(dir)),
            },
        })
    }
}

pub struct App {
    pub config: Config,
    pub pg: PgPool,
    pub ch: clickhouse::Client,
    pub redis: Redis,
    pub jwt: auth::JwtKeys,
    /// A real Argon2id hash to verify against for unknown users.
    pub dummy_hash: String,
    pub metrics: agentvista_shared::metrics::RequestMetrics,
    /// Slots for telemetry reads (`Config::max_reads`).
    pub read_slots: tokio::sync::Semaphore,
    /// The webhook dispatcher's counters, and deliveries created from
    /// ingestion (for `/metrics`).
    pub webhook_metrics: Arc<workers::webhook_dispatch::DispatchMetrics>,
    pub webhook_events: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

/// Connect to PostgreSQL and run its migrations.
/// Connect to PostgreSQL and apply pending migrations; returns the pool and
/// the (version, description) of each migration applied now.
pub async fn connect_pg(common: &CommonConfig) -> anyhow::Result<(PgPool, Vec<(i64, String)>)> {
    let pg = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(common.database_url.expose())
        .await
        .context("connecting to postgres (AV_DATABASE_URL)")?;
    let applied_before = applied_migrations(&pg).await;
    // A replica of the previous release, restarted during a rolling
    // upgrade, finds the newer release's migrations applied: not an error
    // (migrations only add).
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
        .run(&pg)
        .await
        .context("running postgres migrations")?;
    let now: Vec<(i64, String)> = MIGRATOR
        .iter()
        .filter(|m| !applied_before.contains(&m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    Ok((pg, now))
}

/// Versions recorded in `_sqlx_migrations` (none before the first run).
async fn applied_migrations(pg: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pg)
        .await
        .unwrap_or_default()
}

pub async fn connect_redis(common: &CommonConfig) -> anyhow::Result<Redis> {
    agentvista_shared::clients::redis(common)
        .await
        .context("connecting to redis (AV_REDIS_URL)")
}

pub struct Server {
    listener: tokio::net::TcpListener,
    /// The health and metrics listener, when `AV_QUERY_INTERNAL_LISTEN` is
    /// set.
    internal: Option<tokio::net::TcpListener>,
    state: AppState,
}

impl App {
    /// The shared state over connected (or lazily connecting) clients.
    pub async fn new(
        config: Config,
        pg: PgPool,
        ch: clickhouse::Client,
        redis: Redis,
    ) -> anyhow::Result<Self> {
        let secret = match &config.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => {
                tracing::warn!("AV_JWT_SECRET is not set: using a random secret; JWTs will not survive a restart or work across replicas");
                let mut b = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
                b.to_vec()
            }
        };
        let dummy_hash = tokio::task::spawn_blocking(|| auth::hash_password("not a real password"))
            .await
            .context("hashing")?;
        Ok(App {
            read_slots: tokio::sync::Semaphore::new(config.max_reads),
            jwt: auth::JwtKeys::new(&secret),
            config,
            pg,
            ch,
            redis,
            dummy_hash,
            metrics: Default::default(),
            webhook_metrics: Default::default(),
            webhook_events: Default::default(),
        })
    }
}

pub async fn build(config: Config) -> anyhow::Result<Server> {
    let (pg, _) = connect_pg(&config.common).await?;
    let redis = connect_redis(&config.common).await?;
    let ch = agentvista_shared::clients::clickhouse(&config.common);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let internal = match config.internal_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr} (AV_QUERY_INTERNAL_LISTEN)"))?,
        ),
        None => None,
    };
    let app = App::new(config, pg, ch, redis).await?;
    Ok(Server {
        listener,
        internal,
        state: AppState(Arc::new(app)),
    })
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound")
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The health and metrics listener's address, when there is one.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "query api listening");
        let app = router::router(self.state.clone());
        let state = &self.state.0;
        let mut workers = workers::Workers::default();
        workers.spawn(workers::rollup::RollupWorker {
            ch: state.ch.clone(),
            pg: state.pg.clone(),
            config: state.config.rollup.clone(),
        });
        workers.spawn(workers::alerts::AlertEvaluator {
            pg: state.pg.clone(),
            ch: state.ch.clone(),
            interval: state.config.alert_interval,
            public_url: state.config.public_url.clone(),
        });
        workers.spawn(workers::email::EmailSender {
            pg: state.pg.clone(),
            config: state.config.smtp.clone(),
        });
        let hooks = &state.config.webhooks;
        workers.spawn(workers::webhook_events::WebhookEvents {
            pg: state.pg.clone(),
            kafka: agentvista_shared::clients::kafka(&state.config.common),
            topic: state.config.common.kafka_topic.clone(),
            group: hooks.events_group.clone(),
            from: hooks.events_from.clone(),
            enabled: hooks.events,
            created: state.webhook_events.clone(),
            stop: workers.stop_signal(),
        });
        workers.spawn(workers::webhook_dispatch::WebhookDispatcher::new(
            state.pg.clone(),
            hooks.clone(),
            state.webhook_metrics.clone(),
        )?);
        let internal = self.internal.map(|listener| {
            let ops = router::ops(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, ops).await {
                    tracing::error!(error = %e, "the health and metrics listener stopped");
                }
            })
        });
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving");
        if let Some(task) = internal {
            task.abort();
        }
        // Between passes the workers stop at once; a pass in progress is
        // dropped after 1 s (safe: its lock is a transaction's, its writes
        // are single statements), so a stuck ClickHouse cannot hold up
        // shutdown.
        workers.stop(Duration::from_secs(1)).await;
        served?;
        tracing::info!("query api stopped");
        Ok(())
    }
}
