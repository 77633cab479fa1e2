//! ClickHouse schema migrations, embedded in the binary and applied in
//! order. Every statement is idempotent (`IF NOT EXISTS`), so concurrent
//! migrators and re-runs are harmless; `schema_migrations` records what ran.

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
];

/// Create the database if needed and apply pending migrations; returns the
/// (version, name) of each one applied now.
pub async fn migrate(server: &Client, database: &str) -> anyhow::Result<Vec<(u32, &'static str)>> {
    if !database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        anyhow::bail!(
            "AV_CLICKHOUSE_DATABASE must be alphanumeric or underscore, got {database:?}"
        );
    }
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
}
