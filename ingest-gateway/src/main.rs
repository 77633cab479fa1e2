//! `ingest-gateway`: see the library docs. `--help` lists what it takes.

use agentvista_shared::telemetry;
use anyhow::Context;
use clap::Parser;

/// mimalloc instead of the system allocator: the hot paths allocate per
/// record, and glibc malloc/free was a third of the gateway's CPU profile
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AgentVista ingestion gateway: authenticates API keys, meters the monthly
/// span quota and hands `/traces/batch` and OTLP/HTTP data to Kafka.
/// Configured by `AV_*` environment variables (README, Configuration); it
/// takes no arguments.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    telemetry::init("ingest-gateway");
    let config = ingest_gateway::config::Config::from_env().context("reading configuration")?;
    let gateway = ingest_gateway::build(config).await?;
    gateway.run(telemetry::shutdown_signal()).await
}
