//! `ingest-gateway`: see the library docs.

use agentvista_shared::telemetry;
use anyhow::Context;

/// mimalloc instead of the system allocator: the hot paths allocate per
/// record, and glibc malloc/free was a third of the gateway's CPU profile
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("ingest-gateway");
    let config = ingest_gateway::config::Config::from_env().context("reading configuration")?;
    let gateway = ingest_gateway::build(config).await?;
    gateway.run(telemetry::shutdown_signal()).await
}
