//! `writer`: see the library docs. `writer migrate` applies the ClickHouse
//! schema and exits; without arguments it migrates and then consumes.

use agentvista_shared::telemetry;
use anyhow::Context;

/// mimalloc instead of the system allocator: the hot paths allocate per
/// record, and glibc malloc/free was a third of the gateway's CPU profile
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("writer");
    let config = writer::Config::from_env().context("reading configuration")?;
    let server = writer::clickhouse_client(&config.common);
    writer::schema::migrate(&server, &config.common.clickhouse_database).await?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return Ok(());
    }
    let w = writer::build(config).await?;
    w.run(telemetry::shutdown_signal()).await
}
