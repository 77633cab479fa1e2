//! The `av-broker` binary: parses the settings and runs the broker
//! ([`agentvista_broker::start`]) until killed.

use clap::Parser;

/// jemalloc (see the crate's manifest): a frame that declares a huge array
/// costs address space, never an abort of the broker.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = agentvista_broker::Config::parse();
    agentvista_broker::start(config).await?.wait().await;
    Ok(())
}
