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
pub mod prices;
pub mod producer;
pub mod quota;
pub mod sdk;

use crate::auth::KeyStore;
use crate::config::Config;
use crate::producer::Queue;
use crate::quota::{Quota, Reservation};
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::keys::{KeyRecord, SCOPE_WRITE};
use agentvista_shared::queue::{IngestMessage, FORMAT_VERSION};
use agentvista_shared::window::IngestWindow;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::postgres::PgPoolOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const BATCH_PATH: &str = "/api/v1/traces/batch";
/// Served the same, as the contract's other paths with a trailing slash are.
pub const BATCH_PATH_SLASH: &str = "/api/v1/traces/batch/";

/// Every ingestion route as (method, path under `/api/v1`), spelled as in
/// `docs/openapi.json`. The OTLP routes are also served at `/v1/…`.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/traces/batch"),
    ("POST", "/otlp/v1/traces"),
    ("POST", "/otlp/v1/metrics"),
    ("POST", "/otlp/v1/logs"),
];

/// Shared state of one gateway process.
pub struct App {
    pub config: Config,
    pub keys: KeyStore,
    pub quota: Quota,
    pub prices: prices::Prices,
    pub queue: Queue,
    pub redis: ConnectionManager,
    pub pg: sqlx::PgPool,
    pub metrics: agentvista_shared::metrics::RequestMetrics,
    /// Records accepted (acknowledged by Kafka): spans, log records, points.
    pub accepted: [std::sync::atomic::AtomicU64; 3],
    inflight: Semaphore,
    /// The in-flight body budget, in KiB.
    inflight_bytes: Semaphore,
}

/// A gateway with its listener bound, ready to [`Gateway::run`].
pub struct Gateway {
    listener: TcpListener,
    app: Arc<App>,
}

/// Bind the listener and create the clients. Fails fast when Redis cannot
/// be reached at start; later outages are survived.
pub async fn build(config: Config) -> anyhow::Result<Gateway> {
    let redis_client = redis::Client::open(config.common.redis_url.as_str())
        .context("AV_REDIS_URL is not a valid redis url")?;
    let redis = ConnectionManager::new_with_config(
        redis_client,
        ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2),
    )
    .await
    .context("connecting to redis")?;
    let pg = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(config.common.database_url.expose())
        .context("AV_DATABASE_URL is not a valid postgres url")?;
    let queue = Queue::new(
        &config.common.kafka_brokers,
        &config.common.kafka_topic,
        config.produce_timeout,
    )
    .context("creating the kafka producer")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let app = Arc::new(App {
        keys: KeyStore::new(redis.clone(), pg.clone(), config.key_cache_ttl),
        quota: Quota::new(redis.clone()),
        prices: prices::Prices::new(redis.clone(), config.key_cache_ttl),
        queue,
        redis,
        pg,
        inflight: Semaphore::new(config.max_inflight),
        inflight_bytes: Semaphore::new(kib(config.max_inflight_bytes) as usize),
        metrics: Default::default(),
        accepted: Default::default(),
        config,
    });
    Ok(Gateway { listener, app })
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
                        async move { Ok::<_, std::convert::Infallible>(handle(app, req).await) }
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

type Resp = Response<Full<Bytes>>;

fn json(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Render an error as `{"detail": ...}` with its status (and `Retry-After`
/// for 503s, which are always worth retrying).
pub fn error_response(e: &ApiError) -> Resp {
    let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, e.body());
    if e.kind == ErrorKind::Unavailable {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = match req.uri().path() {
        "/healthz" | "/readyz" | "/metrics" | BATCH_PATH => req.uri().path().to_string(),
        BATCH_PATH_SLASH => BATCH_PATH.to_string(),
        p => match otlp::Signal::from_path(p) {
            Some(_) => p.trim_end_matches('/').to_string(),
            None => "other".to_string(),
        },
    };
    let resp = route_request(&app, req).await;
    app.metrics
        .record(&route, &method, resp.status().as_u16(), started.elapsed());
    resp
}

async fn route_request(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let app = app.clone();
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        (&Method::GET, "/readyz") => readyz(&app).await,
        (&Method::GET, "/metrics") => {
            let load = |i: usize| app.accepted[i].load(std::sync::atomic::Ordering::Relaxed);
            let text = app.metrics.render(
                "av_gateway",
                &[
                    ("av_gateway_spans_accepted_total", "counter", load(0)),
                    ("av_gateway_log_records_accepted_total", "counter", load(1)),
                    (
                        "av_gateway_metric_points_accepted_total",
                        "counter",
                        load(2),
                    ),
                ],
            );
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::POST, BATCH_PATH | BATCH_PATH_SLASH) => {
            let started = Instant::now();
            let result = ingest_batch(&app, req).await;
            match result {
                Ok(resp) => resp,
                Err(e) => {
                    if e.kind == ErrorKind::Unavailable || e.kind == ErrorKind::Internal {
                        tracing::warn!(status = e.status_code(), detail = %e.detail, elapsed_ms = started.elapsed().as_millis() as u64, "batch refused");
                    }
                    error_response(&e)
                }
            }
        }
        (&Method::POST, p) if otlp::Signal::from_path(p).is_some() => {
            let signal = otlp::Signal::from_path(p).expect("checked");
            ingest_otlp(&app, req, signal).await
        }
        (_, p)
            if p == BATCH_PATH || p == BATCH_PATH_SLASH || otlp::Signal::from_path(p).is_some() =>
        {
            let mut r = error_response(&ApiError::bad_request("Method not allowed; use POST."));
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
        _ => error_response(&ApiError::not_found("Route")),
    }
}

async fn readyz(app: &App) -> Resp {
    let mut redis = app.redis.clone();
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .is_ok();
    let pg_ok = sqlx::query("SELECT 1").execute(&app.pg).await.is_ok();
    let kafka_ok = app.queue.ready().await;
    let body = serde_json::json!({
        "status": if redis_ok && pg_ok && kafka_ok { "ok" } else { "unavailable" },
        "redis": redis_ok, "postgres": pg_ok, "kafka": kafka_ok,
    });
    let status = if redis_ok && pg_ok && kafka_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, body.to_string().into_bytes())
}

/// Authenticate with the `write` scope.
pub async fn authorize_write(app: &App, req: &Request<Incoming>) -> Result<KeyRecord, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = app.keys.authenticate(header).await?;
    if !key.has_scope(SCOPE_WRITE) {
        return Err(ApiError::forbidden_scope(SCOPE_WRITE));
    }
    Ok(key)
}

/// What an admitted request holds until it is answered: a slot and its
/// share of the in-flight byte budget.
pub struct Admission<'a> {
    _slot: tokio::sync::SemaphorePermit<'a>,
    _bytes: tokio::sync::SemaphorePermit<'a>,
}

/// Body bytes are budgeted in KiB permits.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

fn at_capacity() -> ApiError {
    ApiError::unavailable("The gateway is at capacity; retry shortly.")
}

/// Budget reserved before reading a body without `Content-Length`; topped
/// up to the real size once it is read.
const UNKNOWN_LENGTH_BUDGET: usize = 64 * 1024;

/// What every ingestion request goes through first: a load-shedding slot,
/// the key (with `write`), and the body read and decoded within the size
/// limit and the in-flight byte budget. Beyond either the request gets 503
/// with `Retry-After` at once: memory stays bounded by the budget instead
/// of growing with the queue of waiting requests.
async fn admit(
    app: &App,
    req: Request<Incoming>,
) -> Result<(Admission<'_>, KeyRecord, Bytes), ApiError> {
    let slot = app.inflight.try_acquire().map_err(|_| at_capacity())?;
    let key = authorize_write(app, &req).await?;
    let (parts, body) = req.into_parts();
    let limit = app.config.max_body_bytes;
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(UNKNOWN_LENGTH_BUDGET)
        .min(limit);
    let held = kib(declared);
    let mut budget = app
        .inflight_bytes
        .try_acquire_many(held)
        .map_err(|_| at_capacity())?;
    let raw = body::read_limited(&parts.headers, body, limit).await?;
    let bytes = body::decode(&parts.headers, raw, limit)?;
    let needed = kib(bytes.len());
    if needed > held {
        budget.merge(
            app.inflight_bytes
                .try_acquire_many(needed - held)
                .map_err(|_| at_capacity())?,
        );
    }
    Ok((
        Admission {
            _slot: slot,
            _bytes: budget,
        },
        key,
        bytes,
    ))
}

/// `/traces/batch` takes JSON only, as every other JSON route (415).
fn require_json(req: &Request<Incoming>) -> Result<(), ApiError> {
    if otlp::media_type(req.headers()) == "application/json" {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "Expected Content-Type: application/json.",
        ))
    }
}

async fn ingest_batch(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    require_json(&req)?;
    let (_admission, key, bytes) = admit(app, req).await?;
    let prices = app.prices.overrides(key.org_id).await;
    let window = IngestWindow::now();
    let mut batch = sdk::parse(&bytes, &prices, &window)?;
    drop(bytes);
    sdk::assign_agent_ids(&mut batch, key.org_id);
    let mut message = new_message(&key);
    message.traces = batch.traces;
    message.spans = batch.spans;
    let accepted_traces = message.traces.len();
    let accepted_spans = message.spans.len();
    publish(app, &key, vec![message]).await?;
    tracing::debug!(org_id = %key.org_id, traces = accepted_traces, spans = accepted_spans, "batch accepted");
    let body = serde_json::json!({
        "accepted_traces": accepted_traces,
        "accepted_spans": accepted_spans,
    });
    Ok(json(StatusCode::OK, body.to_string().into_bytes()))
}

fn new_message(key: &KeyRecord) -> IngestMessage {
    IngestMessage {
        format: FORMAT_VERSION,
        org_id: key.org_id,
        version: now_nanos(),
        retention_days: key.retention_days,
        traces: Vec::new(),
        spans: Vec::new(),
        logs: Vec::new(),
        metrics: Vec::new(),
    }
}

/// Records per Kafka message: large OTLP exports are split so that no
/// message approaches the broker's size limit.
const CHUNK_RECORDS: usize = 1_000;

/// One message per [`CHUNK_RECORDS`] records, each a copy of `template`
/// with its chunk put in place by `fill`.
fn chunked<T>(
    template: &IngestMessage,
    items: Vec<T>,
    fill: fn(&mut IngestMessage, Vec<T>),
) -> Vec<IngestMessage> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        let mut m = template.clone();
        fill(&mut m, it.by_ref().take(CHUNK_RECORDS).collect());
        out.push(m);
    }
    out
}

/// Reserve quota for the messages' spans, then hand them to Kafka (all at
/// once, each awaited); give the reservation back when Kafka did not confirm
/// all of them. Chunks that did get through are harmless when the client
/// retries: every record is idempotent by id.
pub async fn publish(
    app: &App,
    key: &KeyRecord,
    messages: Vec<IngestMessage>,
) -> Result<(), ApiError> {
    let messages: Vec<IngestMessage> = messages
        .into_iter()
        .filter(|m| {
            !(m.traces.is_empty()
                && m.spans.is_empty()
                && m.logs.is_empty()
                && m.metrics.is_empty())
        })
        .collect();
    if messages.is_empty() {
        return Ok(());
    }
    // Encode, then free the records before the first wait (Redis, then the
    // broker): what lives across the waits is only the encoded bytes.
    let spans: u64 = messages.iter().map(|m| m.span_count() as u64).sum();
    let counts: Vec<[u64; 3]> = messages
        .iter()
        .map(|m| [m.spans.len(), m.logs.len(), m.metrics.len()].map(|n| n as u64))
        .collect();
    let payloads: Vec<Vec<u8>> = messages.iter().map(IngestMessage::encode).collect();
    drop(messages);
    let reservation = app
        .quota
        .reserve(key.org_id, spans, key.monthly_span_limit)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "quota store unavailable");
            ApiError::unavailable("The quota service is temporarily unavailable; retry shortly.")
        })?;
    let Reservation::Granted {
        key: counter,
        spans,
    } = reservation
    else {
        return Err(ApiError::quota_exceeded());
    };
    let sends = payloads
        .iter()
        .map(|payload| app.queue.send(key.org_id.as_bytes(), payload));
    let results = futures::future::join_all(sends).await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        tracing::error!(error = %e, org_id = %key.org_id, "kafka did not confirm the batch");
        app.quota.release(&counter, spans).await;
        return Err(ApiError::unavailable(
            "The ingestion queue is temporarily unavailable; the batch was not accepted, retry shortly.",
        ));
    }
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    for c in counts {
        for (counter, n) in app.accepted.iter().zip(c) {
            counter.fetch_add(n, relaxed);
        }
    }
    Ok(())
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The OTLP handler: errors in the request's encoding (JSON `{"detail"}` or
/// protobuf `google.rpc.Status`).
async fn ingest_otlp(app: &App, req: Request<Incoming>, signal: otlp::Signal) -> Resp {
    let enc = match otlp::encoding(req.headers()) {
        Ok(enc) => enc,
        Err(e) => return error_response(&e),
    };
    match ingest_otlp_inner(app, req, signal, enc).await {
        Ok(resp) => resp,
        Err(e) => {
            let (body, ct) = otlp::error_body(enc, &e);
            let mut r = error_response(&e);
            *r.body_mut() = Full::new(Bytes::from(body));
            r.headers_mut().insert(CONTENT_TYPE, ct);
            r
        }
    }
}

async fn ingest_otlp_inner(
    app: &App,
    req: Request<Incoming>,
    signal: otlp::Signal,
    enc: otlp::Encoding,
) -> Result<Resp, ApiError> {
    let (_admission, key, bytes) = admit(app, req).await?;
    let mut outcome = otlp::Outcome::default();
    let template = new_message(&key);
    let window = IngestWindow::around((template.version / 1_000) as i64);
    let prices = match signal {
        otlp::Signal::Traces => app.prices.overrides(key.org_id).await,
        _ => Default::default(),
    };
    // The body and the decoded request are dropped here, before the wait
    // for Kafka: only the encoded messages live across it.
    let messages: Vec<IngestMessage> = match signal {
        otlp::Signal::Traces => {
            let request: otlp::TracesRequest = otlp::decode(signal, enc, &bytes)?;
            let t = otlp::traces::translate(&request, key.org_id, &prices, &window);
            outcome.accepted = t.spans.len() as u64;
            outcome.traces = t.traces.len() as u64;
            outcome.rejected = t.rejected;
            outcome.error = t.error;
            let mut messages = chunked(&template, t.spans, |m, c| m.spans = c);
            messages.extend(chunked(&template, t.traces, |m, c| m.traces = c));
            messages
        }
        otlp::Signal::Metrics => {
            let request: otlp::MetricsRequest = otlp::decode(signal, enc, &bytes)?;
            let t = otlp::metrics::translate(&request, &window);
            outcome.accepted = t.points.len() as u64;
            outcome.rejected = t.rejected;
            outcome.error = t.error;
            chunked(&template, t.points, |m, c| m.metrics = c)
        }
        otlp::Signal::Logs => {
            let request: otlp::LogsRequest = otlp::decode(signal, enc, &bytes)?;
            let t = otlp::logs::translate(&request, template.version as i64, &window);
            outcome.accepted = t.logs.len() as u64;
            outcome.rejected = t.rejected;
            outcome.error = t.error;
            chunked(&template, t.logs, |m, c| m.logs = c)
        }
    };
    drop(bytes);
    publish(app, &key, messages).await?;
    let mut r = json(StatusCode::OK, otlp::success_body(signal, enc, &outcome));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(enc.content_type()));
    Ok(r)
}
