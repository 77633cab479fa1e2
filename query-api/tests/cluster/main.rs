//! ClickHouse cluster mode (`AV_CLICKHOUSE_CLUSTER`) on two real ClickHouse
//! servers started by this binary as the two shards of a cluster: the
//! schema migrated on both with `Distributed` tables over them, data sent
//! through the normal path (gateway, broker, writer), and the read suites
//! of `tests/api` (agents; alert evaluation; dashboard: traces, trees,
//! logs and metrics; the run rollups; prompts with their per-version
//! statistics and rollup; OTLP from the real SDKs) run unchanged against
//! it, so every read and rollup must answer across shards exactly what it
//! answers on one node.
//! `shards.rs` checks where the rows went. No replication: that needs
//! ClickHouse Keeper, which the local ClickHouse build cannot use.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

#[path = "../api/agents.rs"]
mod agents;
#[path = "../api/alerts.rs"]
mod alerts;
#[path = "../api/dashboard.rs"]
mod dashboard;
#[path = "../api/otlp.rs"]
mod otlp;
#[path = "../api/prompts.rs"]
mod prompts;
#[path = "../api/rollups.rs"]
mod rollups;
mod shards;

/// Every service of this binary reads and writes the two-shard cluster.
pub fn adjust_common(common: &mut agentvista_shared::config::CommonConfig) {
    let cluster = shards::cluster();
    common.clickhouse_url = cluster.nodes[0].clone();
    common.clickhouse_cluster = Some(shards::CLUSTER.to_string());
    common.clickhouse_nodes = cluster.nodes.clone();
    common.clickhouse_replicated = false;
}
