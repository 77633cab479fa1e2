//! The writer: a Kafka consumer group that batches ingested records into
//! ClickHouse.
//!
//! Messages are buffered until `AV_WRITER_BATCH_ROWS` rows or
//! `AV_WRITER_FLUSH_MS` since the first buffered message arrived, whichever
//! comes first (arrival: the message's producer timestamp, bounded by the
//! previous flush's start and now, [`arrived_at`]; a message that waited in
//! the client's queue while a flush ran is not made to wait the whole
//! interval again after it). A flush ([`flush`]) inserts agents, spans,
//! logs, metric points and runs, retrying transient errors with backoff
//! until ClickHouse accepts them; only then are the offsets committed. A message ClickHouse
//! can never accept goes to the dead-letter store ([`dead_letter`]) instead
//! of stopping the partition. A crash before the commit means redelivery,
//! and redelivered rows carry the same version, so `ReplacingMergeTree` +
//! `FINAL` reads never show them twice. SIGTERM is honoured within the
//! shutdown grace even while ClickHouse is failing: what was not inserted
//! is not committed.

pub mod dead_letter;
pub mod flush;
mod health;
pub mod rows;
pub mod schema;

pub use crate::flush::insert_buffer;
use crate::flush::{Batch, Flushed, Pending};
use agentvista_shared::config::{self, CommonConfig, ConfigError};
use agentvista_shared::queue::IngestMessage;
use anyhow::Context;
use clickhouse::Client;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub group_id: String,
    pub batch_rows: usize,
    pub flush_interval: Duration,
    /// Messages the consumer fetches ahead of the one being processed, in
    /// KiB (default 64 MiB, librdkafka's own); lower bounds memory under a
    /// backlog at some throughput (BENCHMARKS.md).
    pub prefetch_kbytes: u32,
    /// Address of the health endpoint (`/healthz`, `/readyz`).
    pub listen: SocketAddr,
    pub shutdown_grace: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            common: CommonConfig::from_env()?,
            group_id: config::string("AV_WRITER_GROUP", "agentvista-writer"),
            batch_rows: config::parse("AV_WRITER_BATCH_ROWS", 20_000)?,
            flush_interval: Duration::from_millis(config::parse("AV_WRITER_FLUSH_MS", 500u64)?),
            prefetch_kbytes: config::parse("AV_WRITER_PREFETCH_KB", 65_536u32)?,
            listen: config::parse("AV_WRITER_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8083)))?,
            shutdown_grace: Duration::from_secs(config::parse("AV_SHUTDOWN_GRACE_SECS", 20u64)?),
        })
    }
}

/// The ClickHouse server client (see `agentvista_shared::clients`).
pub fn clickhouse_client(common: &CommonConfig) -> Client {
    agentvista_shared::clients::clickhouse_server(common)
}

/// Counters exposed on the health endpoint.
#[derive(Default)]
pub struct Stats {
    pub messages: AtomicU64,
    pub rows: AtomicU64,
    pub flushes: AtomicU64,
    pub insert_failures: AtomicU64,
    pub undecodable: AtomicU64,
    /// Messages recorded in the dead-letter store.
    pub dead_letters: AtomicU64,
    /// This writer's assigned partitions and the next offset it will
    /// consume on each (when known), refreshed every few seconds; the
    /// health endpoint turns them into the consumer-lag gauge.
    pub positions: std::sync::Mutex<Vec<(String, i32, Option<i64>)>>,
}

/// How often the writer records its positions ([`Stats::positions`]).
const LAG_EVERY: Duration = Duration::from_secs(5);

/// The messages behind on each partition: its high watermark minus the
/// next offset to consume, for the partitions whose both are known.
pub fn consumer_lag(partitions: &[(i64, Option<i64>)]) -> u64 {
    partitions
        .iter()
        .filter_map(|&(high, position)| Some(u64::try_from(high - position?).unwrap_or(0)))
        .sum()
}

/// The consumer's assigned partitions and positions (local to
/// librdkafka: no request to the brokers).
fn positions(consumer: &StreamConsumer) -> Option<Vec<(String, i32, Option<i64>)>> {
    let assigned = consumer.position().ok()?;
    Some(
        assigned
            .elements()
            .iter()
            .map(|e| {
                (
                    e.topic().to_string(),
                    e.partition(),
                    e.offset().to_raw().filter(|o| *o >= 0),
                )
            })
            .collect(),
    )
}

pub struct Writer {
    config: Config,
    consumer: StreamConsumer,
    ch: Client,
    health: tokio::net::TcpListener,
    pub stats: Arc<Stats>,
}

pub async fn build(config: Config) -> anyhow::Result<Writer> {
    let consumer: StreamConsumer = agentvista_shared::clients::kafka(&config.common)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("max.poll.interval.ms", "600000")
        .set("fetch.wait.max.ms", "100")
        .set(
            "queued.max.messages.kbytes",
            config.prefetch_kbytes.max(1).to_string(),
        )
        .create()
        .context("creating the kafka consumer")?;
    consumer
        .subscribe(&[&config.common.kafka_topic])
        .context("subscribing to the ingest topic")?;
    let ch = agentvista_shared::clients::clickhouse(&config.common);
    let health = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    Ok(Writer {
        config,
        consumer,
        ch,
        health,
        stats: Arc::new(Stats::default()),
    })
}

impl Writer {
    pub fn health_addr(&self) -> SocketAddr {
        self.health.local_addr().expect("bound")
    }

    /// Consume until `shutdown`, then flush what is buffered (for at most
    /// the shutdown grace), commit what was stored and stop. A flush under
    /// way when `shutdown` resolves is abandoned at once: its messages stay
    /// uncommitted and are redelivered to the next writer.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Writer {
            config,
            consumer,
            ch,
            health,
            stats,
        } = self;
        let health_task = tokio::spawn(health::serve(
            health,
            ch.clone(),
            config.common.clone(),
            stats.clone(),
        ));
        let mut batch = Batch::default();
        let mut first_at: Option<Instant> = None;
        let mut last_flush_start = Instant::now();
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(topic = %config.common.kafka_topic, group = %config.group_id, "writer consuming");
        let mut stopped = false;
        let mut lag_tick = tokio::time::interval(LAG_EVERY);
        lag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stopped {
            let deadline =
                first_at.map(|t| tokio::time::Instant::from_std(t + config.flush_interval));
            let mut due = false;
            // Biased: a message already received is buffered before a due
            // flush runs, so a flush that is due at once (after a long one)
            // takes everything that queued meanwhile, not one message.
            tokio::select! {
                biased;
                () = &mut shutdown => stopped = true,
                _ = lag_tick.tick() => {
                    if let Some(p) = positions(&consumer) {
                        *stats.positions.lock().unwrap_or_else(|e| e.into_inner()) = p;
                    }
                }
                msg = consumer.recv() => match msg {
                    Ok(m) => {
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                        let payload = m.payload().unwrap_or_default();
                        let mut pending = Pending {
                            topic: m.topic().to_string(),
                            partition: m.partition(),
                            offset: m.offset(),
                            org_id: None,
                            payload: payload.to_vec(),
                            rows: Default::default(),
                            undecodable: None,
                        };
                        match IngestMessage::decode(payload) {
                            Ok(decoded) => {
                                pending.org_id = Some(decoded.org_id);
                                pending.rows = batch.buffer.push(decoded);
                            }
                            Err(e) => {
                                stats.undecodable.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(error = %e, partition = m.partition(), offset = m.offset(), "undecodable message; dead-lettering it");
                                pending.undecodable = Some(e.to_string());
                            }
                        }
                        batch.pending.push(pending);
                        if first_at.is_none() {
                            first_at = Some(arrived_at(
                                m.timestamp().to_millis(),
                                last_flush_start,
                                Instant::now(),
                                SystemTime::now(),
                            ));
                        }
                        due = batch.buffer.len() >= config.batch_rows;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka consume error");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(200)) => {}
                            () = &mut shutdown => stopped = true,
                        }
                    }
                },
                () = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => due = true,
            }
            if due && !stopped {
                last_flush_start = Instant::now();
                match flush::flush(&ch, &consumer, &mut batch, &stats, &mut shutdown).await {
                    Flushed::Done => first_at = None,
                    Flushed::Cancelled => stopped = true,
                }
            }
        }
        tracing::info!(rows = batch.buffer.len(), "writer shutting down, flushing");
        let give_up = tokio::time::sleep(config.shutdown_grace);
        tokio::pin!(give_up);
        if flush::flush(&ch, &consumer, &mut batch, &stats, &mut give_up).await
            == Flushed::Cancelled
        {
            tracing::error!("giving up on the last flush at shutdown; offsets stay uncommitted and the data will be redelivered");
        }
        health_task.abort();
        close_consumer(consumer, Duration::from_secs(5));
        tracing::info!("writer stopped");
        Ok(())
    }
}

/// When the first message of a batch is taken to have arrived, for the
/// flush deadline: its producer timestamp (milliseconds since the epoch),
/// but never before `floor` (the start of the previous flush: a producer
/// clock running behind must not make every message due at once, which
/// would flush one message at a time) and never after `now` (nor when the
/// message has no timestamp).
pub fn arrived_at(
    timestamp_ms: Option<i64>,
    floor: Instant,
    now: Instant,
    wall_now: SystemTime,
) -> Instant {
    let age = timestamp_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
        .and_then(|at| wall_now.duration_since(at).ok())
        .unwrap_or_default();
    now.checked_sub(age).unwrap_or(floor).max(floor).min(now)
}

/// Close the consumer (leaving the group) on a thread of its own, waiting
/// at most `limit`: a broker that does not answer must not hold up the exit
/// (uncommitted messages are redelivered whatever happens here).
fn close_consumer(consumer: StreamConsumer, limit: Duration) {
    let (done, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(consumer);
        let _ = done.send(());
    });
    if closed.recv_timeout(limit).is_err() {
        tracing::warn!(
            limit_ms = limit.as_millis() as u64,
            "the kafka consumer did not close in time; exiting without waiting"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_sums_what_each_partition_has_left() {
        assert_eq!(
            consumer_lag(&[(100, Some(40)), (7, Some(7)), (50, None)]),
            60
        );
        // A position past the watermark (a stale watermark) counts as none.
        assert_eq!(consumer_lag(&[(10, Some(12))]), 0);
        assert_eq!(consumer_lag(&[]), 0);
    }

    #[test]
    fn a_batch_counts_from_when_its_first_message_was_produced_within_bounds() {
        let now = Instant::now();
        let floor = now - Duration::from_millis(800);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ms = |before_now: u64| Some(1_000_000_000 - before_now as i64);
        // Produced 300 ms ago (it waited in the queue during a flush).
        assert_eq!(
            arrived_at(ms(300), floor, now, wall),
            now - Duration::from_millis(300)
        );
        // A producer clock far behind: no older than the last flush's start.
        assert_eq!(arrived_at(ms(60_000), floor, now, wall), floor);
        // A producer clock ahead, no timestamp, or a negative one: now.
        assert_eq!(arrived_at(Some(1_000_005_000), floor, now, wall), now);
        assert_eq!(arrived_at(None, floor, now, wall), now);
        assert_eq!(arrived_at(Some(-5), floor, now, wall), now);
    }
}
