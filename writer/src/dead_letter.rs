//! The dead-letter store: Kafka messages that ClickHouse can never accept
//! or that cannot be decoded, kept in the ClickHouse table `dead_letters`
//! (migration 0008) with the error, for 30 days.
//!
//! One row per Kafka position (`topic`, `partition`, `offset`, the table's
//! key), so a poison message redelivered after a crash is still recorded
//! once. `writer dead-letters list` shows them; `writer dead-letters replay`
//! inserts a message again (after a fix: a migration, a new writer) and
//! marks it `replayed`.

use crate::flush::{insert_buffer, Pending};
use crate::rows::Buffer;
use agentvista_shared::queue::IngestMessage;
use agentvista_shared::window::{now_ns, now_us};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const PENDING: &str = "pending";
pub const REPLAYED: &str = "replayed";

/// One dead-lettered message.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    pub error: String,
    /// The message as it was on the topic, hex-encoded.
    pub payload: String,
    /// Microseconds since the epoch.
    pub failed_at: i64,
    pub status: String,
    pub version: u64,
}

impl DeadLetter {
    pub fn new(p: &Pending, error: String) -> Self {
        DeadLetter {
            topic: p.topic.clone(),
            partition: p.partition,
            offset: p.offset,
            org_id: p.org_id.unwrap_or_else(Uuid::nil),
            error,
            payload: hex::encode(&p.payload),
            failed_at: now_us(),
            status: PENDING.to_string(),
            version: now_ns(),
        }
    }
}

/// Record dead letters (idempotent per Kafka position).
pub async fn record(ch: &Client, dead: &[DeadLetter]) -> clickhouse::error::Result<()> {
    let mut insert = ch.insert::<DeadLetter>("dead_letters").await?;
    for d in dead {
        insert.write(d).await?;
    }
    insert.end().await
}

const COLUMNS: &str = "topic, partition, offset, org_id, error, payload, \
    toUnixTimestamp64Micro(failed_at) AS failed_at, status, version";

/// The newest `limit` dead letters, newest first; with `pending_only`,
/// those not replayed yet.
pub async fn list(
    ch: &Client,
    limit: u64,
    pending_only: bool,
) -> clickhouse::error::Result<Vec<DeadLetter>> {
    let filter = if pending_only {
        "WHERE status = 'pending'"
    } else {
        ""
    };
    ch.query(&format!(
        "SELECT {COLUMNS} FROM dead_letters FINAL {filter} ORDER BY failed_at DESC, offset DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_all()
    .await
}

/// Which dead letters to replay.
pub enum Selector {
    All,
    One {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

/// What a replay did: the positions stored again, and those that failed
/// again with their error.
#[derive(Debug, Default)]
pub struct Replayed {
    pub stored: Vec<(String, i32, i64)>,
    pub failed: Vec<(String, i32, i64, String)>,
}

/// Insert pending dead letters again; each one that ClickHouse now accepts
/// is marked `replayed`, the others stay pending.
pub async fn replay(ch: &Client, which: Selector) -> anyhow::Result<Replayed> {
    let candidates: Vec<DeadLetter> = match &which {
        Selector::All => {
            ch.query(&format!(
                "SELECT {COLUMNS} FROM dead_letters FINAL WHERE status = 'pending' ORDER BY topic, partition, offset"
            ))
            .fetch_all()
            .await?
        }
        Selector::One {
            topic,
            partition,
            offset,
        } => {
            ch.query(&format!(
                "SELECT {COLUMNS} FROM dead_letters FINAL WHERE status = 'pending' \
                 AND topic = ? AND partition = ? AND offset = ?"
            ))
            .bind(topic)
            .bind(partition)
            .bind(offset)
            .fetch_all()
            .await?
        }
    };
    let mut out = Replayed::default();
    for d in candidates {
        let pos = (d.topic.clone(), d.partition, d.offset);
        let result = async {
            let bytes = hex::decode(&d.payload)?;
            let msg = IngestMessage::decode(&bytes)?;
            let mut buffer = Buffer::default();
            buffer.push(msg);
            insert_buffer(ch, &buffer).await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                let done = DeadLetter {
                    status: REPLAYED.to_string(),
                    version: now_ns(),
                    ..d
                };
                record(ch, std::slice::from_ref(&done)).await?;
                out.stored.push(pos);
            }
            Err(e) => out.failed.push((pos.0, pos.1, pos.2, format!("{e:#}"))),
        }
    }
    Ok(out)
}
