//! What both benchmark harnesses share.

use agentvista_shared::config::CommonConfig;
use agentvista_shared::plan::Plan;
use uuid::Uuid;

/// A real account on the Scale plan with a `read`+`write` API key:
/// (organization id, raw key).
pub async fn bench_account(common: &CommonConfig) -> anyhow::Result<(Uuid, String)> {
    let (pg, _) = query_api::connect_pg(common).await?;
    let redis = query_api::connect_redis(common).await?;
    let (user, org) = query_api::store::accounts::create_user(
        &pg,
        &format!("bench-{}@example.com", Uuid::new_v4().simple()),
        "bench",
        query_api::auth::hash_password("bench password"),
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
    Ok((org.id, key))
}
