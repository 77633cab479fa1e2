//! `av-broker`: the local stack's Kafka-protocol broker.
//!
//! A single node that keeps what it acknowledges: produced record batches
//! are appended to per-partition segment files ([`log`]) before the
//! acknowledgement, committed offsets to a file ([`offsets`]), both
//! recovered on start, so a `kill -9` and a restart lose nothing the
//! gateway was told was stored and the writer resumes from its committed
//! offsets. Disk and memory are bounded by retention ([`store`]): segments
//! every consumer group has read are deleted. Consumer groups use Kafka's
//! classic protocol ([`groups`]); the wire format is the `kafka-protocol`
//! crate's ([`server`]).
//!
//! Production runs Apache Kafka or Redpanda (docker-compose, Kubernetes);
//! this broker is for the stack `scripts/up` starts and for the tests. It
//! listens on loopback by default and has no authentication: keep it off
//! networks that others reach. Its input is bounded all the same: a
//! request frame by `--max-request-bytes`, the frames held at once by
//! `--max-buffered-bytes`, the connections by `--max-connections`; and the
//! protocol crate (0.18) reserves an array by the length a frame declares
//! (kafka-protocol-rs PRs #152/#161/#200, open), which jemalloc turns into
//! a reservation of address space (`MAP_NORESERVE`) rather than an abort,
//! so a crafted frame closes its connection only (tested). On a kernel
//! with strict overcommit (`vm.overcommit_memory = 2`) that last guard
//! does not hold.

pub mod groups;
pub mod log;
pub mod offsets;
pub mod server;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use server::Broker;

#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "av-broker",
    about = "AgentVista's local Kafka-protocol broker (durable, bounded)"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:19092")]
    pub listen: SocketAddr,
    /// host:port clients are told to connect to (default: the listen address).
    #[arg(long)]
    pub advertised: Option<String>,
    /// Directory of the topics and committed offsets.
    #[arg(long)]
    pub data: PathBuf,
    /// Topics to create at start if missing, as NAME:PARTITIONS.
    #[arg(long = "topic", value_parser = parse_topic)]
    pub topics: Vec<(String, i32)>,
    /// Size at which a partition's segment file is closed and a new one begun.
    #[arg(long, default_value_t = 64 << 20)]
    pub segment_bytes: u64,
    /// Largest a partition may grow; past it the oldest segments are deleted
    /// even unread (Kafka's `retention.bytes`).
    #[arg(long, default_value_t = 2 << 30)]
    pub retention_bytes: u64,
    /// Age after which a segment is deleted even unread (Kafka's `retention.ms`).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub retention_secs: u64,
    /// Age after which a segment every group has read is deleted.
    #[arg(long, default_value_t = 300)]
    pub retention_consumed_secs: u64,
    /// Age at which a partition's active segment is closed (so that
    /// retention can delete it once read).
    #[arg(long, default_value_t = 600)]
    pub segment_secs: u64,
    /// Committed offsets of a group without members are forgotten this
    /// long after its last commit (Kafka's `offsets.retention.minutes`).
    #[arg(long, default_value_t = 24 * 3600)]
    pub offsets_retention_secs: u64,
    /// Flush every append and commit to the disk before acknowledging it
    /// (survives a machine crash, not only the process's).
    #[arg(long)]
    pub fsync: bool,
    /// Largest request accepted.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_request_bytes: usize,
    /// Partitions of a topic created with the broker's default.
    #[arg(long, default_value_t = 1)]
    pub default_partitions: i32,
    /// Connections served at once; more are closed on accept.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Bytes of request frames held in memory at once, across connections
    /// (at least `--max-request-bytes`).
    #[arg(long, default_value_t = 512 << 20)]
    pub max_buffered_bytes: usize,
}

fn parse_topic(v: &str) -> Result<(String, i32), String> {
    let (name, partitions) = v.rsplit_once(':').ok_or("expected NAME:PARTITIONS")?;
    let partitions = partitions.parse().map_err(|e| format!("partitions: {e}"))?;
    Ok((name.to_string(), partitions))
}

/// A started broker: its state, the address it listens on, and the tasks
/// that serve it (aborted when dropped).
pub struct Running {
    pub broker: Arc<Broker>,
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Running {
    /// Serves until the process ends.
    pub async fn wait(mut self) {
        if let Some(t) = self.tasks.pop() {
            let _ = t.await;
        }
    }
}

/// Opens the data directory (recovering it), creates the configured topics
/// and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let fsync = config.fsync;
    let store_config = store::StoreConfig {
        data: config.data.clone(),
        segment_bytes: config.segment_bytes.max(1 << 10),
        retention_bytes: config.retention_bytes,
        retention: Duration::from_secs(config.retention_secs),
        retention_consumed: Duration::from_secs(config.retention_consumed_secs),
        segment_age: Duration::from_secs(config.segment_secs),
        fsync,
    };
    let data = config.data.clone();
    let (store, offsets) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = store::Store::open(store_config)?;
        let offsets = offsets::Offsets::open(data.join("offsets.json"), fsync)?;
        Ok((store, offsets))
    })
    .await??;
    // Listen only once the data is recovered: an open port means ready.
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let advertised = config
        .advertised
        .clone()
        .unwrap_or_else(|| addr.to_string());
    let (host, port) = advertised
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--advertised must be host:port"))?;
    for (name, partitions) in &config.topics {
        match store.create_topic(name, *partitions) {
            Ok(()) | Err(store::CreateError::Exists) => {}
            Err(e) => anyhow::bail!("topic {name}: {e:?}"),
        }
    }
    let broker = Arc::new(Broker {
        store,
        offsets,
        groups: groups::Coordinator::default(),
        advertised: (host.to_string(), port.parse()?),
        max_request_bytes: config.max_request_bytes,
        default_partitions: config.default_partitions.clamp(1, store::MAX_PARTITIONS),
        connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1))),
        frame_budget: Arc::new(tokio::sync::Semaphore::new(
            config
                .max_buffered_bytes
                .max(config.max_request_bytes)
                .min(u32::MAX as usize),
        )),
    });
    let offsets_retention = Duration::from_secs(config.offsets_retention_secs);
    let ticker = {
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut n = 0u64;
            loop {
                tick.tick().await;
                broker.groups.tick();
                n += 1;
                if n.is_multiple_of(40) {
                    let b = broker.clone();
                    let freed = tokio::task::spawn_blocking(move || {
                        let expired = b
                            .offsets
                            .expire(offsets_retention, |g| b.groups.has_members(g));
                        if let Err(e) = expired {
                            tracing::warn!(error = %e, "expired offsets not forgotten");
                        }
                        b.store.retain(|topic, p| b.offsets.min_committed(topic, p))
                    })
                    .await
                    .unwrap_or(0);
                    if freed > 0 {
                        tracing::info!(freed_bytes = freed, "retention deleted segments");
                    }
                }
            }
        })
    };
    tracing::info!(%addr, advertised, data = %config.data.display(), "broker listening");
    let server = tokio::spawn(server::serve(broker.clone(), listener));
    Ok(Running {
        broker,
        addr,
        tasks: vec![ticker, server],
    })
}
