//! The checked-in `docs/openapi.json` is the document generated from the
//! code: the query API's handlers and views merged with the gateway's
//! ingestion routes. `scripts/openapi` rewrites it after a change.

use std::path::PathBuf;

/// The whole API's document, as `scripts/openapi` writes it.
pub fn generated() -> String {
    let mut doc = query_api::router::openapi();
    doc.merge(ingest_gateway::openapi());
    let mut text = serde_json::to_string_pretty(&doc).expect("documents serialize");
    text.push('\n');
    text
}

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("AV_UPDATE_OPENAPI").is_some() {
        std::fs::write(checked_in(), &generated).expect("writing docs/openapi.json");
        return;
    }
    let current = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        current == generated,
        "docs/openapi.json differs from the document the code generates; run scripts/openapi"
    );
    // And the query API serves exactly it.
    assert_eq!(query_api::router::OPENAPI, generated);
}

#[test]
fn every_operation_documents_its_answers_and_errors_have_the_envelope() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Error",
        "Run",
        "TraceDetail",
        "SpanNode",
        "AgentSummary",
        "Log",
        "Point",
        "TraceBatch",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is missing");
    }
    // The span of a trace detail documents every field a client reads.
    let span = &schemas["SpanNode"]["properties"];
    for field in [
        "cached_tokens",
        "provider",
        "cost_computed",
        "subtree_tokens",
        "children",
        "depth",
    ] {
        assert!(
            span.get(field).is_some(),
            "SpanNode.{field} is not documented"
        );
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
