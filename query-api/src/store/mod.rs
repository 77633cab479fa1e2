//! The store layer: every SQL statement of the query API and the rows it
//! reads, one module per resource. Handlers call these functions with
//! typed, validated parameters; nothing here knows HTTP.
//!
//! ClickHouse reads filter by `org_id` first (the leading key column of
//! every table) and read `FINAL`, so re-sent rows never show twice. Every
//! value is bound (`?`), never spliced into SQL text. Read rows are named
//! `Stored*`; the writer's insert rows are `*Row` (writer/src/rows.rs).

pub mod accounts;
pub mod agents;
pub mod alerts;
pub mod emails;
pub mod keys;
pub mod logs;
pub mod members;
pub mod metrics;
pub mod prompt_stats;
pub mod prompts;
pub mod run_stats;
pub mod runs;
pub mod spans;
pub mod webhooks;

use time::OffsetDateTime;

/// Microseconds since the epoch.
pub fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}
