//! Broker candidates for the local stack, measured with the gateway's and
//! the writer's own client settings (rdkafka, acks=all, lz4):
//!
//!     scripts/bench broker        # av-broker, av-broker --fsync, tansu (memory)
//!
//! For each candidate and message size: messages and MB a second
//! acknowledged (64 sends in flight, `AV_BENCH_SECS` seconds, default 10),
//! the rate a consumer group reads them back, the broker's resident memory
//! (at the start, peak, end) and its data on disk; for the durable ones, a
//! `kill -9` and restart: seconds until it serves again and whether every
//! acknowledged message is read back after it.
//!
//! Arguments: `NAME=COMMAND` per candidate; `{port}` and `{data}` in the
//! command are replaced by a free port and a fresh directory; a name ending
//! in `(memory)` is not restarted.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IN_FLIGHT: usize = 64;
/// A small SDK batch and a 100-span realistic export (what the gateway
/// produces per request).
const SIZES: [usize; 2] = [4 << 10, 160 << 10];

struct Candidate {
    name: String,
    command: String,
}

struct Running {
    child: Child,
    port: u16,
    data: std::path::PathBuf,
    command: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Running {
    fn start(command: &str) -> Running {
        let port = free_port();
        let data = std::env::temp_dir().join(format!("av-bench-broker-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data).unwrap();
        let mut r = Running {
            child: Command::new("true").spawn().unwrap(),
            port,
            data,
            command: command.to_string(),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) -> Duration {
        let command = self
            .command
            .replace("{port}", &self.port.to_string())
            .replace("{data}", &self.data.display().to_string());
        let started = Instant::now();
        self.child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .current_dir(&self.data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{command} did not listen"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        started.elapsed()
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn rss_mb(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with(field))?.to_string();
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn disk_mb(&self) -> f64 {
        fn walk(p: &std::path::Path) -> u64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.data) as f64 / 1e6
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Text of words from a small vocabulary: compresses about as the
/// gateway's messages do.
fn payload(size: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "agent", "tool", "model", "token", "reply", "search", "the", "of", "invoice", "weather",
        "answer", "user", "system", "chat", "result", "call",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(size + 16);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 16) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(size);
    out
}

async fn create_topic(brokers: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let r = admin
        .create_topics(
            &[NewTopic::new("bench", 4, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    r.into_iter().for_each(|r| {
        r.expect("topic created");
    });
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.max.bytes", "16777216")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap()
}

fn consumer(brokers: &str, group: &str) -> StreamConsumer {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    c.subscribe(&["bench"]).unwrap();
    c
}

/// Reads `want` messages from the start; seconds taken, or `None` if they
/// did not all arrive within a minute.
async fn read_back(brokers: &str, group: &str, want: u64) -> Option<f64> {
    let c = consumer(brokers, group);
    let started = Instant::now();
    let mut n = 0;
    while n < want {
        match tokio::time::timeout(Duration::from_secs(60), c.recv()).await {
            Ok(Ok(_)) => n += 1,
            Ok(Err(e)) => panic!("consume: {e}"),
            Err(_) => return None,
        }
    }
    Some(started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("AV_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let candidates: Vec<Candidate> = std::env::args()
        .skip(1)
        .map(|a| {
            let (name, command) = a.split_once('=').expect("NAME=COMMAND");
            Candidate {
                name: name.to_string(),
                command: command.to_string(),
            }
        })
        .collect();
    assert!(
        !candidates.is_empty(),
        "usage: bench_broker NAME=COMMAND..."
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: {} cores ({cpu}); the broker and the clients share them",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{secs} s of produce per row, {IN_FLIGHT} sends in flight, acks=all, lz4; 4 partitions\n"
    );
    println!("| broker | message | acked msgs/s | acked MB/s | read back msgs/s | RSS start / peak / end MB | disk MB | restart after kill -9 | all acked read after it |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for c in &candidates {
        for size in SIZES {
            let mut broker = Running::start(&c.command);
            let brokers = broker.brokers();
            create_topic(&brokers).await;
            let rss_start = broker.rss_mb("VmRSS:");
            let p = producer(&brokers);
            let stop = Arc::new(AtomicBool::new(false));
            let acked = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..IN_FLIGHT {
                let (p, stop, acked) = (p.clone(), stop.clone(), acked.clone());
                tasks.push(tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let body = payload(size, (w as u64) << 32 | i);
                        let key = format!("{}", i % 16);
                        if p.send(
                            FutureRecord::to("bench").key(&key).payload(&body),
                            Duration::from_secs(30),
                        )
                        .await
                        .is_ok()
                        {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                }));
            }
            let mut peak = rss_start;
            while started.elapsed() < Duration::from_secs(secs) {
                tokio::time::sleep(Duration::from_millis(250)).await;
                peak = peak.max(broker.rss_mb("VmRSS:"));
            }
            stop.store(true, Ordering::Relaxed);
            for t in tasks {
                t.await.unwrap();
            }
            let elapsed = started.elapsed().as_secs_f64();
            let n = acked.load(Ordering::Relaxed);
            let read = read_back(&brokers, "bench-read", n).await;
            peak = peak.max(broker.rss_mb("VmRSS:"));
            let rss_end = broker.rss_mb("VmRSS:");
            let disk = broker.disk_mb();
            let (restart, after) = if c.name.ends_with("(memory)") {
                ("n/a".to_string(), "no (memory)".to_string())
            } else {
                let _ = broker.child.kill();
                let _ = broker.child.wait();
                let took = broker.spawn();
                let read = read_back(&brokers, "bench-after-restart", n).await;
                (
                    format!("{:.2} s", took.as_secs_f64()),
                    if read.is_some() {
                        format!("yes ({n})")
                    } else {
                        "NO".to_string()
                    },
                )
            };
            println!(
                "| {} | {} KB | {:.0} | {:.1} | {} | {:.0} / {:.0} / {:.0} | {:.0} | {} | {} |",
                c.name,
                size >> 10,
                n as f64 / elapsed,
                n as f64 * size as f64 / elapsed / 1e6,
                read.map_or("timed out".to_string(), |s| format!("{:.0}", n as f64 / s)),
                rss_start,
                peak,
                rss_end,
                disk,
                restart,
                after
            );
        }
    }
}
