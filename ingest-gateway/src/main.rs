//! `ingest-gateway`: see the library docs.

use agentvista_shared::telemetry;
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("ingest-gateway");
    let config = ingest_gateway::config::Config::from_env().context("reading configuration")?;
    let gateway = ingest_gateway::build(config).await?;
    gateway.run(telemetry::shutdown_signal()).await
}
