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
    // One migrator at a time (several writers start at once, and a
    // migration such as 0005 swaps tables): the others wait, then find
    // the migrations applied.
    lock(&db).await?;
    let result = apply_pending(&db).await;
    unlock(&db).await;
    result
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

async fn apply_pending(db: &Client) -> anyhow::Result<Vec<(u32, &'static str)>> {
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
