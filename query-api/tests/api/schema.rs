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
