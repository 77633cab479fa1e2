#![allow(dead_code)] // each benchmark uses its part of this module
//! What both benchmark harnesses share.

use agentvista_shared::config::CommonConfig;
use agentvista_shared::plan::Plan;
use std::time::Duration;
use uuid::Uuid;

/// A real account on the Scale plan with a `read`+`write` API key:
/// (organization id, raw key).
pub async fn bench_account(common: &CommonConfig) -> anyhow::Result<(Uuid, String)> {
    let (org, key, _) = bench_user(common).await?;
    Ok((org, key))
}

/// The password of every benchmark user.
pub const BENCH_PASSWORD: &str = "bench password";

/// As [`bench_account`], plus the user's email (to log in with
/// [`BENCH_PASSWORD`]): (organization id, raw key, email).
pub async fn bench_user(common: &CommonConfig) -> anyhow::Result<(Uuid, String, String)> {
    let (pg, _) = query_api::connect_pg(common).await?;
    let redis = query_api::connect_redis(common).await?;
    let email = format!("bench-{}@example.com", Uuid::new_v4().simple());
    let (user, org) = query_api::store::accounts::create_user(
        &pg,
        &email,
        "bench",
        query_api::auth::hash_password(BENCH_PASSWORD),
        Plan::Scale,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.0.detail))?;
    let (_, key) = query_api::store::keys::create_api_key(
        &pg,
        &redis,
        user.id,
        org.id,
        "bench",
        &["read".into(), "write".into()],
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.0.detail))?;
    Ok((org.id, key, email))
}

/// Create a benchmark topic (4 partitions) on the stack's broker.
pub async fn create_topic(brokers: &str, name: &str) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    for r in admin
        .create_topics(
            &[NewTopic::new(name, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Delete a benchmark topic (best effort: the broker frees its memory).
pub async fn delete_topic(brokers: &str, name: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let Ok(admin) = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return;
    };
    if let Err(e) = admin.delete_topics(&[name], &AdminOptions::new()).await {
        eprintln!("deleting topic {name}: {e}");
    }
}

/// A process's resident memory in MB: `VmHWM:` (peak) or `VmRSS:` (now).
pub fn rss_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A process's peak resident memory in MB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    rss_mb(pid, "VmHWM:")
}

/// The pid of a service `scripts/up` or `scripts/infra` started.
pub fn stack_pid(name: &str) -> Option<u32> {
    let home = std::env::var("AV_HOME")
        .unwrap_or_else(|_| format!("{}/../.stack", env!("CARGO_MANIFEST_DIR")));
    std::fs::read_to_string(format!("{home}/run/{name}.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Bytes under a directory.
pub fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
