//! Background workers of the query API: one place that starts them, runs
//! each on its interval, and stops them on shutdown.
//!
//! A worker is a [`Worker`]: a name, an interval (zero disables it) and one
//! pass. Every replica runs every worker; a pass that must not run twice at
//! once across replicas takes the PostgreSQL lock of [`exclusive`] (a
//! transaction-scoped advisory lock, released however the pass ends, so a
//! replica that dies mid-pass never holds it). A pass that fails is logged
//! and retried on the next tick: one failure never stops the worker.
//! Shutdown stops every worker between passes at once and drops a pass in
//! progress after a grace (passes are written to be safe to drop).
//!
//! Workers: [`rollup::RollupWorker`] (the per-day run rollup),
//! [`webhook_events::WebhookEvents`] (runs from the ingest topic into
//! webhook deliveries) and [`webhook_dispatch::WebhookDispatcher`] (sending
//! them). The alert evaluator belongs here too.

pub mod alerts;
pub mod email;
pub mod rollup;
pub mod webhook_dispatch;
pub mod webhook_events;

use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A background worker: named, run every `interval`, one pass at a time.
pub trait Worker: Send + Sync + 'static {
    /// For logs.
    fn name(&self) -> &'static str;
    /// Time between the starts of two passes; zero disables the worker.
    fn interval(&self) -> Duration;
    /// One pass. An error is logged; the next tick tries again.
    fn run_once(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The running workers of one replica.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Workers {
    /// Resolves to `true` once the workers are told to stop: for a worker
    /// whose pass runs long (a consumer loop) to end it promptly.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Start `worker` on its own task (not when its interval is zero).
    pub fn spawn<W: Worker>(&mut self, worker: W) {
        let interval = worker.interval();
        if interval.is_zero() {
            tracing::info!(worker = worker.name(), "worker disabled (interval 0)");
            return;
        }
        let mut stop = self.stop.subscribe();
        let name = worker.name();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = worker.run_once().await {
                    tracing::warn!(worker = name, error = %e, "worker pass failed; retrying next pass");
                }
            }
        });
        self.tasks.push((name, task));
    }

    /// Stop every worker: between passes at once; a pass still running
    /// after `grace` is dropped.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut task) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(
                    worker = name,
                    "worker pass still running at shutdown; dropped"
                );
                task.abort();
            }
        }
    }
}

/// Run `pass` only if this replica takes the advisory lock `key` (a
/// transaction-scoped PostgreSQL lock: released however the pass ends);
/// `None` when another replica holds it.
pub async fn exclusive<T>(
    pg: &PgPool,
    key: i64,
    pass: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let mut tx = pg.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(None);
    }
    let result = pass.await;
    tx.rollback().await?;
    result.map(Some)
}

/// Inside an [`exclusive`] pass: whether `name`'s pass is due — no replica
/// started one within `interval` (less a tenth, for timer jitter) — and if
/// so, mark it started now. Several replicas then make one pass per
/// interval between them.
pub async fn due(pg: &PgPool, name: &str, interval: Duration) -> anyhow::Result<bool> {
    let spacing = interval.mul_f64(0.9).as_secs_f64();
    let started: Option<String> = sqlx::query_scalar(
        "INSERT INTO worker_runs (name, last_started_at) VALUES ($1, now()) \
         ON CONFLICT (name) DO UPDATE SET last_started_at = now() \
           WHERE worker_runs.last_started_at <= now() - make_interval(secs => $2) \
         RETURNING name",
    )
    .bind(name)
    .bind(spacing)
    .fetch_optional(pg)
    .await?;
    Ok(started.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counting {
        passes: Arc<AtomicUsize>,
        interval: Duration,
        fail: bool,
    }

    impl Worker for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn interval(&self) -> Duration {
            self.interval
        }
        async fn run_once(&self) -> anyhow::Result<()> {
            self.passes.fetch_add(1, Ordering::Relaxed);
            if self.fail {
                anyhow::bail!("this pass fails");
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn workers_run_on_their_interval_survive_failures_and_stop() {
        let passes = Arc::new(AtomicUsize::new(0));
        let disabled = Arc::new(AtomicUsize::new(0));
        let mut workers = Workers::default();
        workers.spawn(Counting {
            passes: passes.clone(),
            interval: Duration::from_secs(10),
            fail: true,
        });
        workers.spawn(Counting {
            passes: disabled.clone(),
            interval: Duration::ZERO,
            fail: false,
        });
        // The first tick is at once, then one every 10 s; failures do not
        // stop the worker.
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(passes.load(Ordering::Relaxed), 4);
        assert_eq!(disabled.load(Ordering::Relaxed), 0);
        workers.stop(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            passes.load(Ordering::Relaxed),
            4,
            "stopped workers run no more passes"
        );
    }
}
