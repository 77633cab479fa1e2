//! The writer's insert rows against the tables the migrations create: a
//! row column the table lacks, or a table column the row leaves out that
//! has no default, fails here (before a single insert would).

use crate::helpers::spawn_app;
use clickhouse::Row;
use writer::rows::{AgentRow, LogRow, MetricRow, PromptLinkRow, SpanRow, TraceRow};

#[derive(Row, serde::Deserialize)]
struct Column {
    name: String,
    default_kind: String,
}

#[tokio::test]
async fn every_writer_row_matches_its_table_after_migrations() {
    let app = spawn_app().await; // runs both migrations
    let ch = &app.query.0.ch;
    for (table, row) in [
        ("traces", TraceRow::COLUMN_NAMES),
        ("spans", SpanRow::COLUMN_NAMES),
        ("logs", LogRow::COLUMN_NAMES),
        ("metric_points", MetricRow::COLUMN_NAMES),
        ("agents", AgentRow::COLUMN_NAMES),
        ("prompt_links", PromptLinkRow::COLUMN_NAMES),
    ] {
        let columns: Vec<Column> = ch
            .query(
                "SELECT name, default_kind FROM system.columns \
                 WHERE database = currentDatabase() AND table = ? ORDER BY position",
            )
            .bind(table)
            .fetch_all()
            .await
            .unwrap();
        assert!(!columns.is_empty(), "{table} does not exist");
        for name in row {
            assert!(
                columns.iter().any(|c| c.name == *name),
                "{table}: the writer inserts `{name}`, which the table does not have"
            );
        }
        for c in &columns {
            assert!(
                row.contains(&c.name.as_str()) || !c.default_kind.is_empty(),
                "{table}: `{}` has no default and the writer's row leaves it out",
                c.name
            );
        }
    }
}

/// Migrators started at once (several writers, or the migration Job and a
/// writer) on a new database: one applies each migration, the others wait
/// for the lock and find them applied; the lock is gone afterwards.
#[tokio::test]
async fn concurrent_migrators_apply_each_migration_once() {
    let _app = spawn_app().await; // the stack is up and migrated
    let common = agentvista_shared::config::CommonConfig::from_env().unwrap();
    let server = writer::clickhouse_client(&common);
    let db = format!("av_migrate_{}", uuid::Uuid::new_v4().simple());
    let runs =
        futures::future::join_all((0..3).map(|_| writer::schema::migrate(&server, &db))).await;
    let mut applied = Vec::new();
    for r in runs {
        applied.extend(r.expect("every migrator succeeds"));
    }
    applied.sort();
    let all: Vec<(u32, &str)> = writer::schema::MIGRATIONS
        .iter()
        .map(|(v, n, _)| (*v, *n))
        .collect();
    assert_eq!(
        applied, all,
        "each migration applied by exactly one migrator"
    );
    let ch = server.clone().with_database(&db);
    let rows: u64 = ch
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .unwrap();
    let lock: u64 = ch
        .query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() \
             AND name LIKE 'schema_migrations_lock%'",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rows as usize, all.len());
    assert_eq!(lock, 0, "the lock is released");
    // A later run finds nothing to do.
    assert!(writer::schema::migrate(&server, &db)
        .await
        .unwrap()
        .is_empty());
    server
        .query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute()
        .await
        .unwrap();
}

/// Migration 0013 rebuilds `spans` (smaller index granules) on a table
/// that already holds spans: every span is still there once (in two
/// monthly partitions), the new setting is in force, the temporary tables
/// are gone, and the span-facets view still fills from new inserts.
#[tokio::test]
async fn the_spans_rebuild_keeps_every_span_and_the_facets_view() {
    let _app = spawn_app().await;
    let common = agentvista_shared::config::CommonConfig::from_env().unwrap();
    let server = writer::clickhouse_client(&common);
    let db = format!("av_rebuild_{}", uuid::Uuid::new_v4().simple());
    writer::schema::migrate(&server, &db).await.unwrap();
    let ch = server.clone().with_database(&db);
    let insert = |model: &'static str, rows: u32| {
        let ch = ch.clone();
        async move {
            ch.query(
                "INSERT INTO spans (org_id, trace_id, span_id, agent_id, span_type, name, status, \
                 started_at, model, input, retention_days, version) \
                 SELECT toUUID('00000000-0000-4000-8000-000000000001'), generateUUIDv4(number), \
                 generateUUIDv4(number), generateUUIDv4(0), 'llm', 'chat', 'completed', \
                 toDateTime64('2026-10-15 12:00:00', 6, 'UTC') + toIntervalDay(number % 40), \
                 ?, repeat('x', 2000), 30, 1 FROM numbers(?)",
            )
            .bind(model)
            .bind(rows)
            .execute()
            .await
            .unwrap();
        }
    };
    insert("before", 3000).await;
    // Undo the record of 0013 so that the next run applies it to this data.
    ch.query("DELETE FROM schema_migrations WHERE version = 13")
        .execute()
        .await
        .unwrap();
    let applied = writer::schema::migrate(&server, &db).await.unwrap();
    assert_eq!(applied, vec![(13, "spans_granules")]);

    let (rows, distinct): (u64, u64) = ch
        .query("SELECT count(), uniqExact(span_id) FROM spans FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((rows, distinct), (3000, 3000));
    let partitions: u64 = ch
        .query("SELECT uniqExact(toYYYYMM(started_at)) FROM spans")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(partitions, 2);
    let engine: String = ch
        .query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'spans'")
        .fetch_one()
        .await
        .unwrap();
    assert!(
        engine.contains("index_granularity_bytes = 1048576"),
        "{engine}"
    );
    let leftovers: u64 = ch
        .query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() \
             AND name IN ('spans_rebuilt', 'spans_rebuild_mark')",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(leftovers, 0);

    insert("after", 10).await;
    let facets: Vec<String> = ch
        .query("SELECT DISTINCT model FROM span_facets ORDER BY model")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(facets, vec!["after".to_string(), "before".to_string()]);
    server
        .query(&format!("DROP DATABASE IF EXISTS {db} SYNC"))
        .execute()
        .await
        .unwrap();
}
