//! One flush: insert what is buffered, isolate what ClickHouse can never
//! accept, then commit.
//!
//! Layers, each of which keeps one message from stopping a partition:
//! 1. Inserts are shaped: no insert touches more than
//!    [`MAX_PARTITIONS_PER_INSERT`] monthly partitions (ClickHouse refuses a
//!    block with more than 100), so a message with events spread over many
//!    months is stored in several inserts instead of failing forever.
//! 2. An error is classified ([`is_permanent`]). A transient one (network,
//!    timeouts, load, unknown) is retried with backoff, never skipped. A
//!    permanent one (the data itself is refused: a constraint, a value out
//!    of range, a parse error) makes the flush insert message by message:
//!    the messages that fail on their own go to the dead-letter store
//!    (`dead_letters`, exactly once per Kafka position) and the rest are
//!    stored; the partition moves on.
//! 3. Every wait races the stop signal: a flush never holds up shutdown,
//!    and what it did not insert is not committed (it is redelivered).

use crate::dead_letter::{self, DeadLetter};
use crate::rows::{Buffer, Partitioned, Ranges};
use crate::Stats;
use clickhouse::{Client, RowOwned, RowWrite};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Partitions one insert may touch (ClickHouse's default limit is 100).
pub const MAX_PARTITIONS_PER_INSERT: usize = 50;

/// A consumed message waiting for the flush that stores it.
pub struct Pending {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The organization, when the message could be decoded.
    pub org_id: Option<Uuid>,
    /// The message as it was on the topic (kept for the dead-letter store).
    pub payload: Vec<u8>,
    /// Its rows in the buffer.
    pub rows: Ranges,
    /// Why it cannot be decoded, if it cannot: dead-lettered as it is.
    pub undecodable: Option<String>,
}

/// What is buffered: rows and the messages they came from.
#[derive(Default)]
pub struct Batch {
    pub buffer: Buffer,
    pub pending: Vec<Pending>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn clear(&mut self) {
        self.buffer.clear();
        self.pending.clear();
    }
}

/// How a flush ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Stored (or dead-lettered) and committed.
    Done,
    /// `cancel` resolved first: nothing was committed, the batch is kept.
    Cancelled,
}

/// Store the batch, retrying transient errors with backoff until
/// ClickHouse accepts it, then commit the offsets. Returns
/// [`Flushed::Cancelled`] as soon as `cancel` resolves, leaving the offsets
/// uncommitted (the messages will be redelivered).
pub async fn flush(
    ch: &Client,
    consumer: &StreamConsumer,
    batch: &mut Batch,
    stats: &Stats,
    mut cancel: impl Future<Output = ()> + Unpin,
) -> Flushed {
    if batch.is_empty() {
        return Flushed::Done;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let attempt = tokio::select! {
            r = store(ch, batch, stats) => r,
            () = &mut cancel => return Flushed::Cancelled,
        };
        match attempt {
            Ok(()) => {
                stats.flushes.fetch_add(1, Ordering::Relaxed);
                stats
                    .rows
                    .fetch_add(batch.buffer.len() as u64, Ordering::Relaxed);
                tracing::debug!(
                    batch.rows = batch.buffer.len(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "flushed"
                );
                break;
            }
            Err(e) => {
                stats.insert_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, batch.rows = batch.buffer.len(), retry_in_ms = backoff.as_millis() as u64, "clickhouse insert failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut cancel => return Flushed::Cancelled,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    commit(consumer, &batch.pending);
    batch.clear();
    Flushed::Done
}

/// Insert the whole buffer; on a permanent error, message by message, with
/// the ones that fail alone dead-lettered. Undecodable messages are
/// dead-lettered either way. An `Err` is transient: retry the whole.
async fn store(ch: &Client, batch: &Batch, stats: &Stats) -> clickhouse::error::Result<()> {
    let mut dead: Vec<DeadLetter> = batch
        .pending
        .iter()
        .filter_map(|p| {
            p.undecodable
                .as_ref()
                .map(|e| DeadLetter::new(p, format!("undecodable: {e}")))
        })
        .collect();
    match insert_buffer(ch, &batch.buffer).await {
        Ok(()) => {}
        Err(e) if is_permanent(&e) => {
            tracing::warn!(error = %e, "clickhouse refused the batch; inserting message by message");
            // Agents first, all at once: a message's agent row may sit in
            // an earlier message's range (they are deduplicated per batch).
            let agents_stored = match insert_rows(ch, "agents", &batch.buffer.agents).await {
                Ok(()) => true,
                Err(e) if is_permanent(&e) => false,
                Err(e) => return Err(e),
            };
            for p in batch.pending.iter().filter(|p| p.undecodable.is_none()) {
                match insert_ranges(ch, &batch.buffer, &p.rows, !agents_stored).await {
                    Ok(()) => {}
                    Err(e) if is_permanent(&e) => {
                        tracing::error!(error = %e, topic = %p.topic, partition = p.partition, offset = p.offset, org_id = ?p.org_id, "message refused by clickhouse; dead-lettered");
                        dead.push(DeadLetter::new(p, e.to_string()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(e) => return Err(e),
    }
    if !dead.is_empty() {
        dead_letter::record(ch, &dead).await?;
        stats
            .dead_letters
            .fetch_add(dead.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

fn commit(consumer: &StreamConsumer, pending: &[Pending]) {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for p in pending {
        let e = next.entry((p.topic.as_str(), p.partition)).or_insert(0);
        *e = (*e).max(p.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::error!(error = %e, "building the offset list");
        }
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
        // The rows are stored; a failed commit only means redelivery, which
        // reads never show.
        tracing::warn!(error = %e, "offset commit failed");
    }
}

/// Whether retrying can never make this insert succeed: ClickHouse refused
/// the data itself. Unknown errors count as transient (retried forever,
/// never skipped).
pub fn is_permanent(e: &clickhouse::error::Error) -> bool {
    let clickhouse::error::Error::BadResponse(msg) = e else {
        return false;
    };
    match error_code(msg) {
        // TOO_MANY_PARTS also names the per-insert partition limit, which
        // no retry can pass; the merge back-pressure of the same code is
        // transient.
        Some(252) => msg.contains("partitions for single INSERT block"),
        Some(code) => PERMANENT_CODES.contains(&code),
        None => false,
    }
}

/// ClickHouse error codes that refuse the data itself: CANNOT_PARSE_TEXT,
/// CANNOT_PARSE_INPUT_ASSERTION_FAILED, CANNOT_PARSE_DATE,
/// CANNOT_PARSE_DATETIME, TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND,
/// CANNOT_CONVERT_TYPE, CANNOT_PARSE_NUMBER, INCORRECT_DATA,
/// TOO_LARGE_ARRAY_SIZE, TOO_LARGE_STRING_SIZE, SIZES_OF_ARRAYS_DONT_MATCH,
/// VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, DECIMAL_OVERFLOW,
/// VIOLATED_CONSTRAINT.
const PERMANENT_CODES: &[u32] = &[
    6, 27, 38, 41, 53, 69, 70, 72, 117, 128, 131, 190, 321, 407, 469,
];

/// The `Code: N.` of a ClickHouse error message.
fn error_code(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Insert one buffer, table by table (also the ceiling the ingest benchmark
/// measures the writer against). Runs go last: a run is the dashboard's way
/// in, so when it is visible its agent, its spans and its logs of the same
/// batch already are.
pub async fn insert_buffer(ch: &Client, buffer: &Buffer) -> clickhouse::error::Result<()> {
    insert_ranges(ch, buffer, &buffer.ends(), true).await
}

/// Insert the rows of `r` (one message's, or all), in that order.
async fn insert_ranges(
    ch: &Client,
    b: &Buffer,
    r: &Ranges,
    with_agents: bool,
) -> clickhouse::error::Result<()> {
    if with_agents {
        insert_rows(ch, "agents", &b.agents[r.agents.clone()]).await?;
    }
    insert_rows(ch, "spans", &b.spans[r.spans.clone()]).await?;
    insert_rows(ch, "logs", &b.logs[r.logs.clone()]).await?;
    insert_rows(ch, "metric_points", &b.metrics[r.metrics.clone()]).await?;
    insert_rows(ch, "prompt_links", &b.prompt_links[r.prompt_links.clone()]).await?;
    insert_rows(ch, "traces", &b.traces[r.traces.clone()]).await?;
    Ok(())
}

async fn insert_rows<T: RowOwned + RowWrite + Partitioned>(
    ch: &Client,
    table: &str,
    rows: &[T],
) -> clickhouse::error::Result<()> {
    for group in partition_groups(rows, MAX_PARTITIONS_PER_INSERT) {
        let mut insert = ch.insert::<T>(table).await?;
        match group {
            Group::All => {
                for row in rows {
                    insert.write(row).await?;
                }
            }
            Group::Some(indices) => {
                for i in indices {
                    insert.write(&rows[i]).await?;
                }
            }
        }
        insert.end().await?;
    }
    Ok(())
}

/// The rows of one insert.
#[derive(Debug, PartialEq, Eq)]
enum Group {
    All,
    Some(Vec<usize>),
}

/// Split rows into inserts of at most `max` partitions each: one insert of
/// everything in the common case, month groups otherwise.
fn partition_groups<T: Partitioned>(rows: &[T], max: usize) -> Vec<Group> {
    if rows.is_empty() {
        return Vec::new();
    }
    let mut months: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        months.entry(r.partition()).or_default().push(i);
    }
    if months.len() <= max {
        return vec![Group::All];
    }
    let months: Vec<Vec<usize>> = months.into_values().collect();
    months
        .chunks(max)
        .map(|chunk| Group::Some(chunk.concat()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct M(i32);
    impl Partitioned for M {
        fn partition(&self) -> i32 {
            self.0
        }
    }

    #[test]
    fn inserts_never_touch_more_partitions_than_allowed() {
        assert!(partition_groups::<M>(&[], 2).is_empty());
        assert_eq!(partition_groups(&[M(1), M(2), M(1)], 2), vec![Group::All]);
        let rows: Vec<M> = (0..101).map(|i| M(200_001 + i % 101)).collect();
        let groups = partition_groups(&rows, 50);
        assert_eq!(groups.len(), 3);
        let mut seen = Vec::new();
        for g in groups {
            let Group::Some(ix) = g else { panic!("split") };
            let months: std::collections::HashSet<i32> = ix.iter().map(|&i| rows[i].0).collect();
            assert!(months.len() <= 50);
            seen.extend(ix);
        }
        seen.sort();
        assert_eq!(seen, (0..101).collect::<Vec<_>>(), "every row exactly once");
    }

    #[test]
    fn permanent_errors_are_the_data_refusals() {
        let bad = |m: &str| clickhouse::error::Error::BadResponse(m.to_string());
        assert!(is_permanent(&bad(
            "Code: 469. DB::Exception: Constraint `started_in_range` for table agentvista.spans is violated. (VIOLATED_CONSTRAINT)"
        )));
        assert!(is_permanent(&bad(
            "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). (TOO_MANY_PARTS)"
        )));
        assert!(!is_permanent(&bad(
            "Code: 252. DB::Exception: Too many parts (3001). Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)"
        )));
        assert!(!is_permanent(&bad(
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)"
        )));
        assert!(!is_permanent(&bad("no code at all")));
        assert!(!is_permanent(&clickhouse::error::Error::TimedOut));
    }
}
