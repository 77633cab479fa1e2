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
