//! `query-api`: serve (the default), `migrate` (the PostgreSQL schema, then
//! exit) or `admin …` (see the `admin` module). `--help` on each.

use agentvista_shared::telemetry;
use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the hot paths allocate per
/// record, and glibc malloc/free was a third of the gateway's CPU profile
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AgentVista query API: every dashboard, key and auth route. Configured by
/// `AV_*` environment variables (README, Configuration).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the PostgreSQL migrations and serve (the default).
    Serve,
    /// Apply the PostgreSQL migrations, print what was applied, exit.
    Migrate,
    /// Operator commands on accounts, plans and prices.
    #[command(subcommand)]
    Admin(query_api::admin::AdminCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = query_api::Config::from_env().context("reading configuration")?;
    match cli.command {
        Some(Command::Migrate) => {
            telemetry::init("query-api");
            let (_, applied) = query_api::connect_pg(&config.common).await?;
            if applied.is_empty() {
                println!("postgres schema is up to date");
            }
            for (version, name) in applied {
                println!("applied postgres migration {version} {name}");
            }
            Ok(())
        }
        Some(Command::Admin(cmd)) => query_api::admin::run(&config.common, cmd).await,
        None | Some(Command::Serve) => {
            telemetry::init("query-api");
            let server = query_api::build(config).await?;
            server.run(telemetry::shutdown_signal()).await
        }
    }
}
