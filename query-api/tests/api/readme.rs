//! The README's "Try it" block, run verbatim (only `KEY` and `BASE` set to
//! this test's account and router) against the stack: what a newcomer
//! pastes first must work as pasted.

use crate::helpers::{spawn_app, start_router};
use serde_json::Value;

/// The first `sh` block after the "## Try it" heading.
fn try_it_block() -> String {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    let section = &readme[readme.find("## Try it").expect("a Try it section")..];
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let len = section[start..].find("\n```").expect("the block's end");
    section[start..start + len].to_string()
}

#[tokio::test]
async fn the_readme_try_it_block_works_as_pasted() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let router = start_router(&app);
    let block = try_it_block();
    let mut replaced = 0;
    let script: Vec<String> = block
        .lines()
        .map(|line| {
            if line.starts_with("KEY=") {
                replaced += 1;
                format!("KEY={}", acct.key)
            } else if line.starts_with("BASE=") {
                replaced += 1;
                format!("BASE={}/api/v1", router.url)
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 2, "the block sets KEY and BASE once each");
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(script.join("\n"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each call prints one JSON document on its own line.
    let docs: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(docs.len(), 4, "{stdout}");
    assert_eq!(
        docs[0],
        serde_json::json!({"accepted_traces": 1, "accepted_spans": 1})
    );
    let runs = &docs[1];
    assert_eq!(runs["total"], 1, "{runs}");
    assert_eq!(runs["runs"][0]["agent_name"], "lead-qualifier");
    assert_eq!(runs["runs"][0]["total_cost_usd"], "0.004500");
    let stats = &docs[2];
    let days = stats["days"].as_array().unwrap();
    assert_eq!(days.len(), 7, "{stats}");
    assert_eq!(days[6]["runs"], 1, "today holds the run: {stats}");
    assert_eq!(days[6]["success_rate"], 100.0, "{stats}");
    let trace = &docs[3];
    assert_eq!(trace["span_count"], 1, "{trace}");
    assert_eq!(trace["spans"][0]["model"], "gpt-4o");
}
