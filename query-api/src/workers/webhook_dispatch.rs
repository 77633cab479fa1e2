//! The webhook dispatcher: every `AV_WEBHOOK_POLL_MS`, take endpoints that
//! have a due delivery (a lease on the endpoint row with `SKIP LOCKED`, so
//! one dispatcher per endpoint, and so per delivery, across replicas) and
//! send each one's due deliveries, oldest first, on a task of its own (at
//! most `AV_WEBHOOK_CONCURRENCY` endpoints at once per replica: a slow
//! receiver holds only its own task). Each delivery is retried on its own
//! schedule: a failed one waits for its retry time while the endpoint's
//! other deliveries go on (order is not promised; every event carries its
//! `created_at`). The breaker counts failed attempts across deliveries:
//! `AV_WEBHOOK_BREAKER_THRESHOLD` (10) in a row (any success resets the
//! count) spanning at least `AV_WEBHOOK_BREAKER_WINDOW_SECS` (60) pause the
//! endpoint: a dead receiver is paused about two minutes after its first
//! failure (on the retries 5 s, 35 s, then 2.5 min in), while a burst of
//! events to a receiver down for a few seconds pauses nothing.
//!
//! Every attempt is signed with the endpoint's current secret, carries the
//! delivery's id, is limited to `AV_WEBHOOK_TIMEOUT_SECS`, follows no
//! redirect, and reaches only public addresses unless private networks are
//! allowed (`webhooks::url_policy`). A dispatcher killed mid-attempt leaves
//! the delivery pending; another takes the endpoint when the lease ends and
//! sends it again with the same `X-Webhook-Id`.

use super::Worker;
use crate::store::webhooks::{self as store, AfterAttempt, AttemptOutcome, LeasedEndpoint};
use crate::webhooks::{schedule, signing, url_policy, WebhookConfig, MAX_ATTEMPTS};
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Deliveries one endpoint task sends before it lets the endpoint go (so
/// that a busy endpoint is re-leased now and then, fairly across replicas).
const PER_LEASE: usize = 1_000;
/// Deliveries read (and their successes recorded) at once: a dispatcher
/// that dies re-sends at most this many (with their ids) after its lease.
const BATCH: i64 = 20;

/// Dispatcher counters for `/metrics`.
#[derive(Default)]
pub struct DispatchMetrics {
    pub succeeded: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub gave_up: AtomicU64,
    pub breaker_trips: AtomicU64,
    /// Sum of attempt durations (ms) and their count.
    pub attempt_ms_sum: AtomicU64,
    pub attempts: AtomicU64,
}

pub struct WebhookDispatcher {
    pg: PgPool,
    config: WebhookConfig,
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    tasks: Mutex<JoinSet<()>>,
    pub metrics: Arc<DispatchMetrics>,
}

impl WebhookDispatcher {
    pub fn new(
        pg: PgPool,
        config: WebhookConfig,
        metrics: Arc<DispatchMetrics>,
    ) -> anyhow::Result<Self> {
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent("AgentVista-Webhooks/1")
            // Never a proxy from the environment (HTTPS_PROXY): it would
            // connect on the URL policy's behalf.
            .no_proxy();
        if !config.allow_private {
            client = client.dns_resolver(Arc::new(url_policy::GuardedResolver));
        }
        Ok(WebhookDispatcher {
            slots: Arc::new(Semaphore::new(config.concurrency)),
            client: client.build()?,
            pg,
            config,
            tasks: Mutex::new(JoinSet::new()),
            metrics,
        })
    }
}

impl Worker for WebhookDispatcher {
    fn name(&self) -> &'static str {
        "webhook-dispatch"
    }

    fn interval(&self) -> Duration {
        self.config.poll
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        {
            let mut tasks = self.tasks.lock().expect("tasks lock");
            while tasks.try_join_next().is_some() {}
        }
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(());
        }
        let endpoints = store::lease_endpoints(&self.pg, free as i64, self.config.lease).await?;
        for endpoint in endpoints {
            let slot = self.slots.clone().acquire_owned().await?;
            let task = EndpointTask {
                pg: self.pg.clone(),
                config: self.config.clone(),
                client: self.client.clone(),
                metrics: self.metrics.clone(),
            };
            self.tasks.lock().expect("tasks lock").spawn(async move {
                let id = endpoint.id;
                if let Err(e) = task.drain(endpoint).await {
                    tracing::warn!(endpoint_id = %id, error = %e, "webhook endpoint pass failed");
                }
                drop(slot);
            });
        }
        Ok(())
    }
}

impl Drop for WebhookDispatcher {
    fn drop(&mut self) {
        // Deliveries in flight stay pending; their leases expire.
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.abort_all();
        }
    }
}

struct EndpointTask {
    pg: PgPool,
    config: WebhookConfig,
    client: reqwest::Client,
    metrics: Arc<DispatchMetrics>,
}

impl EndpointTask {
    /// Send the endpoint's due deliveries, oldest first, then let it go.
    /// Successes are recorded together after each batch; a failure is
    /// recorded at once and the pass goes on with the next delivery, unless
    /// it tripped the breaker.
    async fn drain(&self, endpoint: LeasedEndpoint) -> anyhow::Result<()> {
        let mut sent = 0;
        'lease: while sent < PER_LEASE {
            // The lease is renewed before each batch, and the URL and secret
            // read again: a rotation or a pause applies to the next batch.
            let Some((url, secret)) =
                store::renew(&self.pg, endpoint.id, self.config.lease).await?
            else {
                break;
            };
            let mut renewed = Instant::now();
            let batch = store::due(&self.pg, endpoint.id, BATCH).await?;
            if batch.is_empty() {
                break;
            }
            let mut succeeded = Vec::new();
            for (delivery_id, body, attempts) in batch {
                // A slow receiver: keep the lease (a third of it left at
                // least before each attempt; an attempt takes at most the
                // timeout, shorter than the lease).
                if renewed.elapsed() > self.config.lease / 3 {
                    if store::renew(&self.pg, endpoint.id, self.config.lease)
                        .await?
                        .is_none()
                    {
                        store::record_successes(&self.pg, endpoint.id, &succeeded).await?;
                        break 'lease;
                    }
                    renewed = Instant::now();
                }
                sent += 1;
                let attempt = attempts + 1;
                let outcome = self.attempt(&url, &secret, delivery_id, &body).await;
                let m = &self.metrics;
                m.attempts.fetch_add(1, Ordering::Relaxed);
                m.attempt_ms_sum.fetch_add(
                    u64::try_from(outcome.duration_ms).unwrap_or(0),
                    Ordering::Relaxed,
                );
                if outcome.success {
                    m.succeeded.fetch_add(1, Ordering::Relaxed);
                    succeeded.push((delivery_id, attempt, outcome));
                    continue;
                }
                // Successes before this failure are recorded first, so the
                // breaker's count sees the attempts in the order they ran.
                store::record_successes(&self.pg, endpoint.id, &succeeded).await?;
                succeeded.clear();
                if self
                    .failed(&endpoint, delivery_id, attempt, &outcome)
                    .await?
                {
                    break 'lease;
                }
            }
            store::record_successes(&self.pg, endpoint.id, &succeeded).await?;
        }
        store::release(&self.pg, endpoint.id).await?;
        Ok(())
    }

    /// Record a failed attempt: a retry, or the end of the delivery; and
    /// the breaker when the endpoint reached its threshold now (`true`:
    /// the endpoint is paused).
    async fn failed(
        &self,
        endpoint: &LeasedEndpoint,
        delivery_id: uuid::Uuid,
        attempt: i32,
        outcome: &AttemptOutcome,
    ) -> anyhow::Result<bool> {
        let m = &self.metrics;
        let retry_in = schedule::retry_delay(attempt, self.config.backoff_scale);
        let (after, tripped) = store::record_attempt(
            &self.pg,
            endpoint.id,
            delivery_id,
            attempt,
            outcome,
            retry_in,
            MAX_ATTEMPTS,
            store::Breaker {
                threshold: self.config.breaker_threshold,
                window: self.config.breaker_window,
            },
        )
        .await?;
        m.failed_attempts.fetch_add(1, Ordering::Relaxed);
        if after == AfterAttempt::GaveUp {
            m.gave_up.fetch_add(1, Ordering::Relaxed);
        }
        if tripped {
            // The admins' notice was queued with the pause.
            m.breaker_trips.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(endpoint_id = %endpoint.id, "webhook endpoint paused after consecutive failures");
        }
        Ok(tripped)
    }

    /// One signed POST of the stored body.
    async fn attempt(
        &self,
        url: &str,
        secret: &str,
        delivery_id: uuid::Uuid,
        body: &str,
    ) -> AttemptOutcome {
        let attempted_at = time::OffsetDateTime::now_utc();
        let started = Instant::now();
        let finish = |status_code: Option<i32>, error: Option<String>| AttemptOutcome {
            attempted_at,
            success: status_code.is_some_and(|s| (200..300).contains(&s)),
            status_code,
            error,
            duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
        };
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(_) => return finish(None, Some("invalid url".into())),
        };
        if !url_policy::literal_allowed(&parsed, self.config.allow_private) {
            return finish(None, Some("destination refused".into()));
        }
        let timestamp = attempted_at.unix_timestamp();
        let signature = signing::signature(secret, timestamp, body);
        let sent = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Webhook-Id", delivery_id.to_string())
            .header("X-Webhook-Timestamp", timestamp.to_string())
            .header("X-Webhook-Signature", &signature)
            .header("X-AgentVista-Signature", &signature)
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(resp) => finish(Some(i32::from(resp.status().as_u16())), None),
            Err(e) => finish(None, Some(error_class(&e).to_string())),
        }
    }
}

/// A transport error as one of a few generic classes. Never the error's
/// own text: a member reads the attempts, and "connection refused" against
/// "no route to host" or a TLS alert for an address would make the
/// dispatcher a port scanner of the network it runs in.
fn error_class(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return "connection refused";
            }
            if io.kind() == std::io::ErrorKind::TimedOut {
                return "timeout";
            }
        }
        if s.downcast_ref::<url_policy::Refused>().is_some() {
            return "destination refused";
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return "tls";
        }
        source = s.source();
    }
    if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}
