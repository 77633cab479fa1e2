//! The query API's health and metrics on an internal listener
//! (`AV_QUERY_INTERNAL_LISTEN`), served by the real server.

use crate::helpers::spawn_app;
use reqwest::StatusCode;

#[tokio::test]
async fn health_and_metrics_are_served_on_the_internal_listener_only() {
    let _app = spawn_app().await; // the stack is up and migrated
    let mut config = query_api::Config::from_env().unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.internal_listen = Some("127.0.0.1:0".parse().unwrap());
    config.rollup.interval = std::time::Duration::ZERO;
    config.webhooks.events = false;
    let server = query_api::build(config).await.unwrap();
    let main = format!("http://{}", server.local_addr());
    let internal = format!(
        "http://{}",
        server.internal_addr().expect("an internal listener")
    );
    tokio::spawn(server.run(std::future::pending()));
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = client
            .get(format!("{internal}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "internal {path}");
        let r = client.get(format!("{main}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "main {path}");
    }
    // The API itself stays on the main port.
    let r = client
        .get(format!("{main}/api/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
