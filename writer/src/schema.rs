//! ClickHouse schema migrations, embedded in the binary and applied in
//! order. Every statement is idempotent (`IF NOT EXISTS`), so concurrent
//! migrators and re-runs are harmless; `schema_migrations` records what ran.
//!
//! Cluster mode (`AV_CLICKHOUSE_CLUSTER`, [`migrate_config`]): the same
//! migrations create the tables on every node (`AV_CLICKHOUSE_NODES`), as
//! `Replicated*` engines when `AV_CLICKHOUSE_REPLICATED=1`
//! ([`replicated_engine`]), and each node gets a `<database>_dist` database
//! of `Distributed` tables over them, sharded by [`SHARDING`]: one trace
//! (its spans, run row, logs, prompt links and facets) on one shard, so
//! that `FINAL`, trace reads and the trace-keyed subqueries stay exact.

use agentvista_shared::config::CommonConfig;
use anyhow::Context;
use clickhouse::Client;

/// (version, name, sql) in the order they apply.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "otlp", include_str!("../migrations/0002_otlp.sql")),
    (3, "rollups", include_str!("../migrations/0003_rollups.sql")),
    (
        4,
        "agent_daily",
        include_str!("../migrations/0004_agent_daily.sql"),
    ),
    (
        5,
        "agents_keep_first",
        include_str!("../migrations/0005_agents_keep_first.sql"),
    ),
    (
        6,
        "log_search_index",
        include_str!("../migrations/0006_log_search_index.sql"),
    ),
    (
        7,
        "log_traces",
        include_str!("../migrations/0007_log_traces.sql"),
    ),
    (
        8,
        "dead_letters",
        include_str!("../migrations/0008_dead_letters.sql"),
    ),
    (
        9,
        "money_128",
        include_str!("../migrations/0009_money_128.sql"),
    ),
    (
        10,
        "prompt_links",
        include_str!("../migrations/0010_prompt_links.sql"),
    ),
    (
        11,
        "prompt_daily",
        include_str!("../migrations/0011_prompt_daily.sql"),
    ),
    (
        12,
        "outcome_costs",
        include_str!("../migrations/0012_outcome_costs.sql"),
    ),
    (
        13,
        "spans_granules",
        include_str!("../migrations/0013_spans_granules.sql"),
    ),
];

/// The sharding key of each table's `Distributed` twin on a cluster. Rows
/// that a read deduplicates (`FINAL`, the same key twice) or joins by
/// trace must land on one shard: the trace tables hash (organization,
/// trace); the rollups that a read takes as one snapshot hash what the
/// snapshot covers (an organization's day for `agent_daily`, a prompt for
/// `prompt_daily`). Materialized-view targets are filled on each node from
/// its own rows (their key is never used for an insert). A table missing
/// here stops the cluster migration with its name.
pub const SHARDING: &[(&str, &str)] = &[
    ("traces", "cityHash64(org_id, trace_id)"),
    ("spans", "cityHash64(org_id, trace_id)"),
    ("logs", "cityHash64(org_id, ifNull(trace_id, log_id))"),
    ("prompt_links", "cityHash64(org_id, trace_id)"),
    (
        "metric_points",
        "cityHash64(org_id, metric_name, series_id)",
    ),
    ("agents", "cityHash64(org_id, agent_id)"),
    ("agent_daily", "cityHash64(org_id)"),
    ("prompt_daily", "cityHash64(org_id, prompt_name)"),
    ("dead_letters", "cityHash64(topic, partition, offset)"),
    ("span_facets", "cityHash64(org_id, trace_id)"),
    ("log_traces", "cityHash64(org_id, trace_id)"),
    ("trace_day_inserts", "cityHash64(org_id)"),
];

/// Apply the schema as the configuration says: on the one server of
/// `AV_CLICKHOUSE_URL`, or on every node of the cluster (each under its
/// own lock, then its `Distributed` tables). Returns the migrations applied
/// now (on any node).
pub async fn migrate_config(common: &CommonConfig) -> anyhow::Result<Vec<(u32, &'static str)>> {
    let server = crate::clickhouse_client(common);
    let Some(name) = &common.clickhouse_cluster else {
        return migrate(&server, &common.clickhouse_database).await;
    };
    check_name("AV_CLICKHOUSE_CLUSTER", name, &['_', '-'])?;
    anyhow::ensure!(
        !common.clickhouse_nodes.is_empty(),
        "AV_CLICKHOUSE_NODES must list the HTTP URL of every node of cluster {name:?}"
    );
    let cluster = Cluster {
        name,
        replicated: common.clickhouse_replicated,
    };
    let mut applied = Vec::new();
    for url in &common.clickhouse_nodes {
        let node = server.clone().with_url(url);
        for m in migrate_node(&node, &common.clickhouse_database, Some(&cluster))
            .await
            .with_context(|| format!("clickhouse node {url}"))?
        {
            if !applied.contains(&m) {
                applied.push(m);
            }
        }
    }
    Ok(applied)
}

/// The cluster a node belongs to, for [`migrate_node`].
struct Cluster<'a> {
    name: &'a str,
    replicated: bool,
}

fn check_name(var: &str, value: &str, extra: &[char]) -> anyhow::Result<()> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
    {
        let also: String = extra.iter().map(|c| format!(" or {c:?}")).collect();
        anyhow::bail!("{var} must be letters, digits, underscores{also}; got {value:?}");
    }
    Ok(())
}

/// Create the database if needed and apply pending migrations on one
/// server; returns the (version, name) of each one applied now.
pub async fn migrate(server: &Client, database: &str) -> anyhow::Result<Vec<(u32, &'static str)>> {
    migrate_node(server, database, None).await
}

async fn migrate_node(
    server: &Client,
    database: &str,
    cluster: Option<&Cluster<'_>>,
) -> anyhow::Result<Vec<(u32, &'static str)>> {
    check_name("AV_CLICKHOUSE_DATABASE", database, &[])?;
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .context("creating the clickhouse database")?;
    let db = server.clone().with_database(database);
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version UInt32, name String, applied_at DateTime DEFAULT now()) \
         ENGINE = ReplacingMergeTree ORDER BY version",
    )
    .execute()
    .await
    .context("creating schema_migrations")?;
    // One migrator at a time (several writers start at once, and a
    // migration such as 0005 swaps tables): the others wait, then find
    // the migrations applied.
    lock(&db).await?;
    let replicated = cluster.is_some_and(|c| c.replicated);
    let mut result = apply_pending(&db, replicated).await;
    if let (Ok(_), Some(c)) = (&result, cluster) {
        if let Err(e) = distribute(&db, database, c.name).await {
            result = Err(e);
        }
    }
    unlock(&db).await;
    result
}

/// (Re)create `<database>_dist`: a `Distributed` table over every local
/// table of the schema, with the structure the migrations left it (so a
/// column added later reaches the distributed table too).
async fn distribute(db: &Client, database: &str, cluster: &str) -> anyhow::Result<()> {
    let known: u64 = db
        .query("SELECT count() FROM system.clusters WHERE cluster = ?")
        .bind(cluster)
        .fetch_one()
        .await
        .context("reading system.clusters")?;
    anyhow::ensure!(
        known > 0,
        "cluster {cluster:?} (AV_CLICKHOUSE_CLUSTER) is not in this node's remote_servers"
    );
    let dist = format!("{database}_dist");
    db.query(&format!("CREATE DATABASE IF NOT EXISTS {dist}"))
        .execute()
        .await
        .context("creating the distributed database")?;
    let tables: Vec<String> = db
        .query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() \
             AND engine LIKE '%MergeTree' AND name != 'schema_migrations' ORDER BY name",
        )
        .fetch_all()
        .await
        .context("listing the schema's tables")?;
    for table in tables {
        let key = SHARDING
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, k)| *k)
            .with_context(|| {
                format!("table {table} has no sharding key (writer/src/schema.rs, SHARDING)")
            })?;
        db.query(&format!(
            "CREATE OR REPLACE TABLE {dist}.{table} AS {database}.{table} \
             ENGINE = Distributed('{cluster}', '{database}', '{table}', {key})"
        ))
        .execute()
        .await
        .with_context(|| format!("creating the distributed table {dist}.{table}"))?;
    }
    Ok(())
}

/// A migration statement with its MergeTree engine in the `Replicated`
/// form: the replicas of a shard share the Keeper path
/// `/clickhouse/tables/{shard}/{database}/{table}` (each node's macros), and
/// `{replica}` names the node. Other statements are returned unchanged.
pub fn replicated_engine(statement: &str) -> String {
    const MARK: &str = "ENGINE = ";
    let Some(at) = statement.find(MARK) else {
        return statement.to_string();
    };
    let start = at + MARK.len();
    let rest = &statement[start..];
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.ends_with("MergeTree") || name.starts_with("Replicated") {
        return statement.to_string();
    }
    let path = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'";
    let after = &rest[name_len..];
    let (args, tail) = match after.strip_prefix('(') {
        Some(inner) => match inner.find(')') {
            Some(close) => (inner[..close].trim(), &inner[close + 1..]),
            None => return statement.to_string(),
        },
        None => ("", after),
    };
    let args = if args.is_empty() {
        path.to_string()
    } else {
        format!("{path}, {args}")
    };
    format!("{}Replicated{name}({args}){tail}", &statement[..start])
}

/// The migration lock: a table whose creation is atomic (`CREATE TABLE`
/// without `IF NOT EXISTS` succeeds for exactly one caller). A lock older
/// than [`STALE_LOCK_SECS`] is taken to be a crashed migrator's and is
/// broken (renamed away, which only one breaker can do).
const LOCK_TABLE: &str = "schema_migrations_lock";
const STALE_LOCK_SECS: u32 = 900;

async fn lock(db: &Client) -> anyhow::Result<()> {
    let mut told = false;
    loop {
        let create = db
            .query(&format!(
                "CREATE TABLE {LOCK_TABLE} (taken_at DateTime DEFAULT now()) ENGINE = TinyLog"
            ))
            .execute()
            .await;
        match create {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string().contains("TABLE_ALREADY_EXISTS") => {}
            Err(e) => return Err(e).context("taking the clickhouse migration lock"),
        }
        let age: Option<u32> = db
            .query(
                "SELECT toUInt32(greatest(now() - metadata_modification_time, 0)) FROM system.tables \
                 WHERE database = currentDatabase() AND name = ?",
            )
            .bind(LOCK_TABLE)
            .fetch_optional()
            .await
            .context("reading the clickhouse migration lock")?;
        if age.is_some_and(|a| a > STALE_LOCK_SECS) {
            let stale = format!("{LOCK_TABLE}_stale_{}", uuid::Uuid::new_v4().simple());
            if db
                .query(&format!("RENAME TABLE {LOCK_TABLE} TO {stale}"))
                .execute()
                .await
                .is_ok()
            {
                tracing::warn!(age_secs = age, "broke a stale clickhouse migration lock");
                let _ = db
                    .query(&format!("DROP TABLE IF EXISTS {stale}"))
                    .execute()
                    .await;
            }
            continue;
        }
        if !told {
            tracing::info!("waiting for another migrator's clickhouse migration lock");
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn unlock(db: &Client) {
    if let Err(e) = db
        .query(&format!("DROP TABLE IF EXISTS {LOCK_TABLE}"))
        .execute()
        .await
    {
        tracing::warn!(error = %e, "could not release the clickhouse migration lock (it goes stale)");
    }
}

async fn apply_pending(db: &Client, replicated: bool) -> anyhow::Result<Vec<(u32, &'static str)>> {
    let applied: Vec<u32> = db
        .query("SELECT version FROM schema_migrations FINAL")
        .fetch_all()
        .await
        .context("reading schema_migrations")?;
    let mut now_applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for statement in split_statements(sql) {
            let statement = if replicated {
                replicated_engine(&statement)
            } else {
                statement
            };
            db.query(&statement)
                .execute()
                .await
                .with_context(|| format!("clickhouse migration {version} ({name})"))?;
        }
        db.query("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
            .bind(*version)
            .bind(*name)
            .execute()
            .await
            .context("recording a migration")?;
        tracing::info!(version, name, "applied clickhouse migration");
        now_applied.push((*version, *name));
    }
    Ok(now_applied)
}

/// Split a migration file into statements: `;` at the end of a line ends
/// one; `--` comment lines are dropped.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if trimmed.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements() {
        let stmts = split_statements(MIGRATIONS[0].2);
        assert_eq!(stmts.len(), 3);
        assert!(stmts.iter().all(|s| s.starts_with("CREATE TABLE")));
        let stmts = split_statements(MIGRATIONS[1].2);
        assert_eq!(stmts.len(), 3);
        assert!(stmts[0].starts_with("ALTER TABLE spans"));
    }

    #[test]
    fn replicated_engines_keep_their_arguments() {
        assert_eq!(
            replicated_engine(
                "CREATE TABLE t (v UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY v"
            ),
            "CREATE TABLE t (v UInt64) ENGINE = ReplicatedReplacingMergeTree(\
             '/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version) ORDER BY v"
        );
        assert_eq!(
            replicated_engine(
                "CREATE TABLE t (v UInt64)\nENGINE = AggregatingMergeTree\nORDER BY v"
            ),
            "CREATE TABLE t (v UInt64)\nENGINE = ReplicatedAggregatingMergeTree(\
             '/clickhouse/tables/{shard}/{database}/{table}', '{replica}')\nORDER BY v"
        );
        for unchanged in [
            "ALTER TABLE spans ADD COLUMN x UInt8",
            "CREATE TABLE l (t DateTime) ENGINE = TinyLog",
            "CREATE TABLE r (v UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY v",
        ] {
            assert_eq!(replicated_engine(unchanged), unchanged);
        }
        // Every table the migrations create gets a replicated engine.
        for (_, _, sql) in MIGRATIONS {
            for stmt in split_statements(sql) {
                if stmt.starts_with("CREATE TABLE") && stmt.contains("MergeTree") {
                    assert!(
                        replicated_engine(&stmt).contains("ENGINE = Replicated"),
                        "{stmt}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_table_of_the_schema_has_a_sharding_key() {
        // A table that its own migration drops again (the new table of a
        // rebuild, swapped in and dropped under its temporary name) is not
        // part of the schema.
        let mut created = Vec::new();
        for (_, _, sql) in MIGRATIONS {
            let stmts = split_statements(sql);
            for stmt in &stmts {
                if let Some(rest) = stmt.strip_prefix("CREATE TABLE ") {
                    let name = rest.trim_start_matches("IF NOT EXISTS ");
                    let name = name
                        .split(|c: char| c.is_whitespace() || c == '(')
                        .next()
                        .unwrap();
                    let dropped = stmts
                        .iter()
                        .skip_while(|s| *s != stmt)
                        .any(|s| s.starts_with(&format!("DROP TABLE {name}")));
                    if stmt.contains("MergeTree") && !dropped {
                        created.push(name.to_string());
                    }
                }
            }
        }
        assert!(!created
            .iter()
            .any(|t| t == "agents_first" || t == "spans_rebuilt"));
        assert_eq!(created.len(), SHARDING.len(), "{created:?}");
        for t in created {
            assert!(
                SHARDING.iter().any(|(s, _)| *s == t),
                "no sharding key for {t}"
            );
        }
    }
}
