//! `writer`: see the library docs. Without a subcommand it applies the
//! ClickHouse schema and consumes; `writer migrate` applies the schema and
//! exits; `writer dead-letters list|replay` manages the dead-letter store.

use agentvista_shared::telemetry;
use anyhow::Context;
use clap::{Parser, Subcommand};
use writer::dead_letter::{self, Selector};

/// mimalloc instead of the system allocator: the hot paths allocate per
/// record, and glibc malloc/free was a third of the gateway's CPU profile
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AgentVista writer: consumes the ingest topic and stores it in ClickHouse.
/// Configured by `AV_*` environment variables (README, Configuration).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the ClickHouse schema migrations and consume (the default).
    Run,
    /// Apply the ClickHouse schema migrations, print what was applied, exit.
    Migrate,
    /// Messages that ClickHouse refused for good or that could not be
    /// decoded (kept 30 days).
    #[command(subcommand)]
    DeadLetters(DeadLetters),
}

#[derive(Subcommand)]
enum DeadLetters {
    /// Print dead letters as JSON lines, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Also those already replayed.
        #[arg(long)]
        all: bool,
    },
    /// Insert dead letters again (after the cause was fixed) and mark the
    /// ones ClickHouse accepts as replayed. Exits 1 when any failed again.
    Replay {
        /// Every pending dead letter.
        #[arg(long, conflicts_with_all = ["topic", "partition", "offset"])]
        all: bool,
        /// The Kafka topic of the one to replay.
        #[arg(long, requires_all = ["partition", "offset"])]
        topic: Option<String>,
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        #[arg(long, requires = "topic")]
        offset: Option<i64>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init("writer");
    let config = writer::Config::from_env().context("reading configuration")?;
    let applied = writer::schema::migrate_config(&config.common).await?;
    let ch = agentvista_shared::clients::clickhouse(&config.common);
    match cli.command {
        None | Some(Command::Run) => {
            let w = writer::build(config).await?;
            w.run(telemetry::shutdown_signal()).await
        }
        Some(Command::Migrate) => {
            if applied.is_empty() {
                println!("clickhouse schema is up to date");
            }
            for (version, name) in applied {
                println!("applied clickhouse migration {version:04} {name}");
            }
            Ok(())
        }
        Some(Command::DeadLetters(DeadLetters::List { limit, all })) => {
            for d in dead_letter::list(&ch, limit, !all).await? {
                let line = serde_json::json!({
                    "topic": d.topic, "partition": d.partition, "offset": d.offset,
                    "org_id": d.org_id, "error": d.error, "status": d.status,
                    "failed_at": agentvista_shared::time_fmt::format(
                        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(d.failed_at) * 1_000)
                            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)),
                    "bytes": d.payload.len() / 2,
                });
                println!("{line}");
            }
            Ok(())
        }
        Some(Command::DeadLetters(DeadLetters::Replay {
            all,
            topic,
            partition,
            offset,
        })) => {
            let which = match (all, topic, partition, offset) {
                (true, ..) => Selector::All,
                (false, Some(topic), Some(partition), Some(offset)) => Selector::One {
                    topic,
                    partition,
                    offset,
                },
                _ => anyhow::bail!("say --all, or --topic, --partition and --offset"),
            };
            let r = dead_letter::replay(&ch, which).await?;
            for (t, p, o) in &r.stored {
                println!("replayed {t}/{p}/{o}");
            }
            for (t, p, o, e) in &r.failed {
                println!("failed again {t}/{p}/{o}: {e}");
            }
            println!("{} replayed, {} failed", r.stored.len(), r.failed.len());
            if !r.failed.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
