//! `ingest-gateway`: see the library docs. `--help` lists what it takes.

use agentvista_shared::telemetry;
use anyhow::Context;
use clap::Parser;

/// jemalloc, for the Rust code and (unprefixed) for librdkafka's C code
/// too: the hot paths allocate per record, and glibc malloc/free was a
/// third of the gateway's CPU profile. Not mimalloc (the other services'
/// allocator): at 16 requests in flight it kept about 110 MB resident
/// against 54 MB with jemalloc and [`malloc_conf`], for about 10% more protobuf
/// spans per CPU-second (BENCHMARKS.md, session 10).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (`MALLOC_CONF` in the environment overrides them):
/// a background thread returns freed pages to the kernel after half a second
/// (`dirty_decay_ms`, skipping the lazy "muzzy" stage), off the request
/// path, and two arenas are shared by all threads (the default, four per
/// core, keeps a retained set per arena).
// SAFETY: exporting a symbol is `unsafe` because it could clash with
// another of the same name; jemalloc (linked unprefixed) declares
// `malloc_conf` for this purpose and reads it as a C string at its first
// allocation, which the trailing NUL makes this one.
#[allow(non_upper_case_globals, unsafe_code)]
#[unsafe(export_name = "malloc_conf")]
pub static malloc_conf: &[u8] =
    b"background_thread:true,narenas:2,dirty_decay_ms:500,muzzy_decay_ms:0\0";

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
