//! The Python SDK (`sdk/python`): its unit tests (no stack), and its
//! integration suite against this stack: the contract's documented
//! snippets read back through the API, a mixed SDK + OpenTelemetry
//! program forming one trace, a 20-second 503 storm that loses nothing,
//! and a process that exits right after a run. `scripts/test` installs the
//! SDK (editable, with its test extras) into `.stack/sdk-venv`.

use crate::helpers::{spawn_app, start_router};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("AV_SDK_PYTHON") {
        return p.into();
    }
    let p = root().join(".stack/sdk-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: scripts/test installs the SDK there (pip install -e sdk/python[test])",
        p.display()
    );
    p
}

fn pytest(suite: &str, env: &[(&str, String)]) {
    let mut cmd = Command::new(python());
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", suite])
        .current_dir(root().join("sdk/python"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pytest {suite} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(" passed") && !stdout.contains("skipped"),
        "pytest {suite} ran nothing or skipped tests:\n{stdout}"
    );
}

#[tokio::test]
async fn python_sdk_unit_tests() {
    tokio::task::spawn_blocking(|| pytest("tests/unit", &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn python_sdk_against_the_stack() {
    let app = spawn_app().await;
    let acct = app.account().await;
    // The SDK talks to one base URL for ingestion and prompts: a router in
    // front of both services, as deployed.
    let router = start_router(&app);
    let env = vec![
        ("AGENTVISTA_BASE_URL", format!("{}/api/v1", router.url)),
        ("AV_GATEWAY_URL", app.ingest.clone()),
        ("AGENTVISTA_API_KEY", acct.key.clone()),
        ("AV_QUERY_URL", app.api.clone()),
        ("AV_INGEST_URL", app.ingest.clone()),
    ];
    tokio::task::spawn_blocking(move || pytest("tests/integration", &env))
        .await
        .unwrap();
    drop(router);
}
