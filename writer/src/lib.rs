//! The writer: a Kafka consumer group that batches ingested records into
//! ClickHouse.
//!
//! Messages are buffered until `AV_WRITER_BATCH_ROWS` rows or
//! `AV_WRITER_FLUSH_MS` since the first buffered message, whichever comes
//! first. A flush inserts traces, spans and agents, retrying with backoff
//! until ClickHouse accepts them; only then are the offsets committed. A
//! crash before the commit means redelivery, and redelivered rows carry the
//! same version, so `ReplacingMergeTree` + `FINAL` reads never show them twice.

pub mod rows;
pub mod schema;

use crate::rows::Buffer;
use agentvista_shared::config::{self, CommonConfig, ConfigError};
use agentvista_shared::queue::IngestMessage;
use anyhow::Context;
use clickhouse::{Client, RowOwned, RowWrite};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A ClickHouse client for `config`, with synchronous inserts.
pub fn clickhouse_client(common: &CommonConfig) -> Client {
    Client::default()
        .with_url(&common.clickhouse_url)
        .with_user(&common.clickhouse_user)
        .with_password(common.clickhouse_password.expose())
        .with_setting("async_insert", "0")
}

/// Counters exposed on the health endpoint.
#[derive(Default)]
pub struct Stats {
    pub messages: AtomicU64,
    pub rows: AtomicU64,
    pub flushes: AtomicU64,
    pub insert_failures: AtomicU64,
    pub undecodable: AtomicU64,
}

pub struct Writer {
    config: Config,
    consumer: StreamConsumer,
    ch: Client,
    health: tokio::net::TcpListener,
    pub stats: Arc<Stats>,
}

pub async fn build(config: Config) -> anyhow::Result<Writer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.common.kafka_brokers)
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
    let ch = clickhouse_client(&config.common).with_database(&config.common.clickhouse_database);
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

    /// Consume until `shutdown`, then flush what is buffered, commit and stop.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Writer {
            config,
            consumer,
            ch,
            health,
            stats,
        } = self;
        let health_task = tokio::spawn(health::serve(health, ch.clone(), stats.clone()));
        let mut buffer = Buffer::default();
        let mut offsets: HashMap<(String, i32), i64> = HashMap::new();
        let mut first_at: Option<Instant> = None;
        tokio::pin!(shutdown);
        tracing::info!(topic = %config.common.kafka_topic, group = %config.group_id, "writer consuming");
        loop {
            let deadline =
                first_at.map(|t| tokio::time::Instant::from_std(t + config.flush_interval));
            tokio::select! {
                msg = consumer.recv() => match msg {
                    Ok(m) => {
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                        match m.payload().map(IngestMessage::decode) {
                            Some(Ok(decoded)) => buffer.push(decoded),
                            Some(Err(e)) => {
                                stats.undecodable.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(error = %e, partition = m.partition(), offset = m.offset(), "skipping undecodable message");
                            }
                            None => {}
                        }
                        offsets.insert((m.topic().to_string(), m.partition()), m.offset());
                        first_at.get_or_insert_with(Instant::now);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka consume error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                () = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                    flush(&ch, &consumer, &mut buffer, &mut offsets, &stats, None).await;
                    first_at = None;
                }
                () = &mut shutdown => break,
            }
            if buffer.len() >= config.batch_rows {
                flush(&ch, &consumer, &mut buffer, &mut offsets, &stats, None).await;
                first_at = None;
            }
        }
        tracing::info!(rows = buffer.len(), "writer shutting down, flushing");
        let give_up = Instant::now() + config.shutdown_grace;
        flush(
            &ch,
            &consumer,
            &mut buffer,
            &mut offsets,
            &stats,
            Some(give_up),
        )
        .await;
        health_task.abort();
        tracing::info!("writer stopped");
        Ok(())
    }
}

/// Insert the buffer, retrying with backoff until ClickHouse accepts it (or
/// until `give_up`, leaving the offsets uncommitted), then commit offsets.
async fn flush(
    ch: &Client,
    consumer: &StreamConsumer,
    buffer: &mut Buffer,
    offsets: &mut HashMap<(String, i32), i64>,
    stats: &Stats,
    give_up: Option<Instant>,
) {
    if offsets.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match insert_buffer(ch, buffer).await {
            Ok(()) => {
                stats.flushes.fetch_add(1, Ordering::Relaxed);
                stats.rows.fetch_add(buffer.len() as u64, Ordering::Relaxed);
                tracing::debug!(
                    batch.rows = buffer.len(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "flushed"
                );
                break;
            }
            Err(e) => {
                stats.insert_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, batch.rows = buffer.len(), retry_in_ms = backoff.as_millis() as u64, "clickhouse insert failed");
                if give_up.is_some_and(|g| Instant::now() + backoff > g) {
                    tracing::error!("giving up on flush at shutdown; offsets stay uncommitted and the data will be redelivered");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    buffer.clear();
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets.drain() {
        if let Err(e) = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset + 1)) {
            tracing::error!(error = %e, "building the offset list");
        }
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
        // The rows are stored; a failed commit only means redelivery, which
        // reads never show.
        tracing::warn!(error = %e, "offset commit failed");
    }
}

/// Insert one buffer with this client, table by table (also the ceiling
/// the ingest benchmark measures the writer against). Runs go last: a run
/// is the dashboard's way in, so when it is visible its agent, its spans
/// and its logs of the same batch already are.
pub async fn insert_buffer(ch: &Client, buffer: &Buffer) -> clickhouse::error::Result<()> {
    insert_rows(ch, "agents", &buffer.agents).await?;
    insert_rows(ch, "spans", &buffer.spans).await?;
    insert_rows(ch, "logs", &buffer.logs).await?;
    insert_rows(ch, "metric_points", &buffer.metrics).await?;
    insert_rows(ch, "traces", &buffer.traces).await?;
    Ok(())
}

async fn insert_rows<T: RowOwned + RowWrite>(
    ch: &Client,
    table: &str,
    rows: &[T],
) -> clickhouse::error::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = ch.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

mod health {
    //! A minimal HTTP endpoint: `/healthz` (alive), `/readyz` (ClickHouse
    //! answers) and `/metrics` (Prometheus text).

    use super::Stats;
    use clickhouse::Client;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub async fn serve(listener: tokio::net::TcpListener, ch: Client, stats: Arc<Stats>) {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let ch = ch.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut buf),
                )
                .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path {
                    "/healthz" => ("200 OK", r#"{"status":"ok"}"#.to_string()),
                    "/readyz" => {
                        if ch.query("SELECT 1").execute().await.is_ok() {
                            ("200 OK", r#"{"status":"ok","clickhouse":true}"#.to_string())
                        } else {
                            ("503 Service Unavailable", r#"{"status":"unavailable","clickhouse":false}"#.to_string())
                        }
                    }
                    "/metrics" => ("200 OK", format!(
                        "av_writer_messages_total {}\nav_writer_rows_total {}\nav_writer_flushes_total {}\nav_writer_insert_failures_total {}\nav_writer_undecodable_total {}\n",
                        stats.messages.load(Ordering::Relaxed),
                        stats.rows.load(Ordering::Relaxed),
                        stats.flushes.load(Ordering::Relaxed),
                        stats.insert_failures.load(Ordering::Relaxed),
                        stats.undecodable.load(Ordering::Relaxed),
                    )),
                    _ => ("404 Not Found", r#"{"detail":"Not found."}"#.to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
            });
        }
    }
}
