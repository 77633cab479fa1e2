//! `query-api`: serve (default), `migrate` (PostgreSQL schema, then exit),
//! or `admin …` (see the `admin` module).

use agentvista_shared::telemetry;
use anyhow::Context;

/// mimalloc instead of the system allocator: the hot paths allocate per
/// record, and glibc malloc/free was a third of the gateway's CPU profile
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = query_api::Config::from_env().context("reading configuration")?;
    match args.first().map(String::as_str) {
        Some("migrate") => {
            telemetry::init("query-api");
            query_api::connect_pg(&config.common).await?;
            Ok(())
        }
        Some("admin") => query_api::admin::run(&config.common, &args[1..]).await,
        Some(other) => anyhow::bail!("unknown command {other:?}; expected migrate or admin"),
        None => {
            telemetry::init("query-api");
            let server = query_api::build(config).await?;
            server.run(telemetry::shutdown_signal()).await
        }
    }
}
