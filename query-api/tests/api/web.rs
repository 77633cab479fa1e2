//! The web dashboard end to end: the query API serves `web/dist` at `/`
//! behind the router, and `web/e2e/run.mjs` drives Debian's Chromium
//! through playwright-core: sign up, create a key, send a trace with the
//! OpenTelemetry Python SDK, find it in the explorer, filter by model and
//! reload, open its waterfall and a span, set its outcome, see the agent's
//! success rate follow, the agent's charts, a log search leading to its
//! trace, a prompt's versions diffed and rolled back, two agents compared,
//! the webhooks page (its add-and-test step is out: see run.mjs), revoke the key; axe-core on every page (no serious
//! or critical violation) and a screenshot of each (in
//! `.stack/screenshots`). `scripts/test` builds the dashboard and installs
//! Chromium first.

use crate::helpers::{spawn_apps, start_router};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn the_dashboard_works_end_to_end_in_chromium() {
    let dist = root().join("web/dist");
    assert!(
        dist.join("index.html").exists(),
        "{} is missing: scripts/test builds the dashboard (npm run build in web/)",
        dist.display()
    );
    let app = spawn_apps(
        |_| {},
        |q| {
            q.web_dir = Some(dist.clone());
            // The page registers a local endpoint (no dispatcher runs here).
            q.webhooks.allow_http = true;
            q.webhooks.allow_private = true;
        },
    )
    .await;
    let router = start_router(&app);
    let otel_python = std::env::var("AV_OTEL_PYTHON").unwrap_or_else(|_| {
        root()
            .join(".stack/otel-venv/bin/python")
            .display()
            .to_string()
    });
    let screenshots = root().join(".stack/screenshots").display().to_string();
    let result = node_script(
        "run.mjs",
        &[
            ("AV_BASE_URL", router.url.clone()),
            ("AV_OTEL_PYTHON", otel_python),
            ("AV_SCREENSHOTS", screenshots),
        ],
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");
    drop(router);
}

/// Run `web/e2e/<script>` with node (from `web/`, where playwright-core
/// is installed) and `env`: it must exit 0; its last line of output, JSON.
async fn node_script(script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let path = root().join("web/e2e").join(script);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(path)
            .envs(env)
            .current_dir(root().join("web"))
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap()
}

/// Cross-site request forgery from a real browser: `web/e2e/csrf.mjs` signs
/// up in Chromium, then opens pages on another port of the same host
/// (same-site) and under another host name (cross-site) that auto-submit
/// forms to logout and key creation: refused, the user stays signed in;
/// the dashboard's own same-origin logout works.
#[tokio::test]
async fn form_posts_from_other_sites_do_nothing_in_chromium() {
    let app = spawn_apps(|_| {}, |_| {}).await;
    let base = app.api.trim_end_matches("/api/v1").to_string();
    let result = node_script("csrf.mjs", &[("AV_BASE_URL", base)]).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["seen"]["same_site /api/v1/auth/logout"], 403);
    assert_eq!(result["seen"]["cross_site /api/v1/auth/logout"], 403);
    assert_eq!(result["seen"]["same_origin /api/v1/auth/logout"], 204);
}
