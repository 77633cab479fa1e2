//! `spawn_app()`: a gateway and a query API on port 0, in the test's
//! runtime, against the real Redis, PostgreSQL, ClickHouse and broker. One
//! writer per test binary runs on its own thread and consumes a topic made
//! for this run, so concurrent test runs never see each other's messages.

use axum::http::{HeaderMap, StatusCode as AxStatus};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use std::time::Instant;
use uuid::Uuid;

pub struct Shared {
    pub topic: String,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The services' common configuration: the environment's, as the test
/// binary adjusts it (`crate::adjust_common`: the cluster suite points
/// ClickHouse at the shards it started).
fn common() -> agentvista_shared::config::CommonConfig {
    let mut common =
        agentvista_shared::config::CommonConfig::from_env().expect("test configuration");
    crate::adjust_common(&mut common);
    common
}

/// Create the run's topic, migrate ClickHouse and start the writer (once).
pub fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let topic = format!("av-test-{}", Uuid::new_v4().simple());
        let (tx, rx) = std::sync::mpsc::channel();
        let t = topic.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("writer runtime");
            rt.block_on(async move {
                let mut common = common();
                create_topic(&t, 2).await;
                writer::schema::migrate_config(&common)
                    .await
                    .expect("clickhouse migrations");
                common.kafka_topic = t.clone();
                let config = writer::Config {
                    common,
                    group_id: format!("{t}-writer"),
                    batch_rows: 5_000,
                    flush_interval: Duration::from_millis(100),
                    prefetch_kbytes: 16_384,
                    listen: "127.0.0.1:0".parse().unwrap(),
                    shutdown_grace: Duration::from_secs(5),
                };
                let w = writer::build(config).await.expect("writer");
                tx.send(()).unwrap();
                w.run(std::future::pending()).await.expect("writer run");
            });
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("writer started");
        Shared { topic }
    })
}

/// Whether the long variants of the fault tests run (`AV_FAULTS_LONG=1`):
/// several kill cycles and outages of tens of seconds instead of one short
/// one. CI runs the short variants.
pub fn long_faults() -> bool {
    std::env::var("AV_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// Create a Kafka topic on the stack's broker.
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &common().kafka_brokers)
        .create()
        .expect("kafka admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("creating a test topic");
    for r in results {
        r.expect("topic created");
    }
}

pub struct TestApp {
    /// Base URL of the query API, e.g. `http://127.0.0.1:PORT/api/v1`.
    pub api: String,
    /// Base URL of the gateway.
    pub ingest: String,
    pub client: reqwest::Client,
    pub query: query_api::AppState,
    /// The gateway's state (its key store, for tests of its timers).
    pub gateway: std::sync::Arc<ingest_gateway::App>,
}

pub struct Account {
    pub email: String,
    pub password: String,
    pub token: String,
    pub org_id: Uuid,
    pub org_slug: String,
    /// A key with `read` and `write`.
    pub key: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawn with a tweak to the gateway's configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut ingest_gateway::config::Config)) -> TestApp {
    spawn_apps(tweak, |_| {}).await
}

/// Spawn with tweaks to both services' configurations. By default the
/// query API runs no alert evaluator, no webhook dispatcher and no event
/// consumer (the tests
/// of webhooks turn them on, with the same settings, so that dispatchers
/// of parallel tests may serve each other's endpoints as replicas do).
pub async fn spawn_apps(
    tweak: impl FnOnce(&mut ingest_gateway::config::Config),
    tweak_query: impl FnOnce(&mut query_api::Config),
) -> TestApp {
    // Logs go through the test harness (shown for failing tests only).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rdkafka=error")),
        )
        .with_test_writer()
        .try_init();
    let shared = shared();
    let mut gw = ingest_gateway::config::Config::from_env().expect("gateway config");
    gw.common = common();
    gw.common.kafka_topic = shared.topic.clone();
    gw.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut gw);
    let gateway = ingest_gateway::build(gw).await.expect("gateway");
    let ingest = format!("http://{}", gateway.local_addr());
    let gateway_app = gateway.app();
    tokio::spawn(gateway.run(std::future::pending()));

    let mut q = query_api::Config::from_env().expect("query config");
    q.common = common();
    q.common.kafka_topic = shared.topic.clone();
    q.listen = "127.0.0.1:0".parse().unwrap();
    q.webhooks.poll = Duration::ZERO;
    q.webhooks.events = false;
    // Alert tests run evaluation passes themselves.
    q.alert_interval = Duration::ZERO;
    tweak_query(&mut q);
    let server = query_api::build(q).await.expect("query api");
    let api = format!("http://{}/api/v1", server.local_addr());
    let query = server.state();
    tokio::spawn(server.run(std::future::pending()));

    TestApp {
        api,
        ingest,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        query,
        gateway: gateway_app,
    }
}

impl TestApp {
    /// Sign up a fresh user (and so a fresh organization), and create a
    /// read+write API key for it through the API.
    pub async fn account(&self) -> Account {
        let email = format!("t-{}@example.com", Uuid::new_v4().simple());
        let password = "correct horse battery".to_string();
        let r = self
            .client
            .post(format!("{}/auth/signup", self.api))
            .json(&json!({"email": email, "password": password, "name": format!("Test {}", &email[2..10])}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_string();
        let org_id = body["organization"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let org_slug = body["organization"]["slug"].as_str().unwrap().to_string();
        let key = self.create_key(&token, &["read", "write"]).await;
        Account {
            email,
            password,
            token,
            org_id,
            org_slug,
            key,
        }
    }

    pub async fn create_key(&self, bearer: &str, scopes: &[&str]) -> String {
        let r = self
            .client
            .post(format!("{}/me/api-keys/", self.api))
            .bearer_auth(bearer)
            .json(&json!({"name": "test", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["key"].as_str().unwrap().to_string()
    }

    pub async fn post_batch(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        self.post_ingest("/api/v1/traces/batch", key, body).await
    }

    /// POST an OTLP/JSON export of `signal` (`traces`, `metrics`, `logs`).
    pub async fn post_otlp(&self, key: &str, signal: &str, body: &Value) -> (StatusCode, Value) {
        self.post_ingest(&format!("/v1/{signal}"), key, body).await
    }

    async fn post_ingest(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.ingest))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, bearer: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.api))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Any method on the query API with a bearer credential and an
    /// optional JSON body: the status and the JSON answer (null if none).
    pub async fn call(
        &self,
        bearer: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.api))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Poll `path` until `pred` holds for the body (20 s at most).
    pub async fn wait_for(&self, bearer: &str, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(bearer, path).await;
            if status == StatusCode::OK && pred(&body) {
                return body;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting on {path}; last answer {status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The id of the agent called `name`, once it is visible.
    pub async fn agent_id(&self, bearer: &str, name: &str) -> String {
        let agents = self
            .wait_for(bearer, "/agents", |b| {
                b.as_array()
                    .is_some_and(|a| a.iter().any(|x| x["name"] == name))
            })
            .await;
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A batch in the documented shape: one trace of `agent` with `spans` LLM
/// spans, fresh ids.
pub fn batch(agent: &str, spans: usize) -> (Uuid, Value) {
    let trace_id = Uuid::new_v4();
    let spans: Vec<Value> = (0..spans)
        .map(|i| {
            json!({
                "span_id": Uuid::new_v4(),
                "trace_id": trace_id,
                "type": "llm",
                "name": format!("call {i}"),
                "status": "completed",
                "started_at": "2024-01-15T10:00:00.100Z",
                "ended_at": "2024-01-15T10:00:01.800Z",
                "duration_ms": 1700,
                "model": "gpt-4o",
                "input_tokens": 800,
                "output_tokens": 120,
                "total_tokens": 920,
                "cost_usd": "0.003200"
            })
        })
        .collect();
    let body = json!({"traces": [{
        "trace": {
            "trace_id": trace_id,
            "agent": agent,
            "status": "completed",
            "started_at": "2024-01-15T10:00:00Z",
            "ended_at": "2024-01-15T10:00:02Z",
            "duration_ms": 2000,
            "success": true,
            "outcome": "qualified",
            "total_tokens": 1500,
            "total_cost_usd": "0.004500"
        },
        "spans": spans,
    }]});
    (trace_id, body)
}

/// Rows of a table for one trace, read back with FINAL.
pub async fn count_rows(app: &TestApp, table: &str, org_id: Uuid, trace_id: Uuid) -> u64 {
    app.query
        .0
        .ch
        .query(&format!(
            "SELECT count() FROM {table} FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)"
        ))
        .bind(org_id.to_string())
        .bind(trace_id.to_string())
        .fetch_one()
        .await
        .unwrap()
}

/// [`count_rows`] once it reaches `n` (or after 20 s): the writer inserts a
/// batch table by table, so a read right after another table's rows
/// appeared can come before this table's.
pub async fn count_rows_reaching(
    app: &TestApp,
    table: &str,
    org_id: Uuid,
    trace_id: Uuid,
    n: u64,
) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = count_rows(app, table, org_id, trace_id).await;
        if got >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A loopback port free when asked (the caller binds or hands it on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A service binary next to this test executable (scripts/test builds
/// them), or `AV_<NAME>_BIN`.
pub fn bin(name: &str) -> std::path::PathBuf {
    let var = format!("AV_{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Ok(p) = std::env::var(var) {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --bins` (scripts/test does)",
        p.display()
    );
    p
}

/// A service process of a test, killed when dropped (also when the test
/// panics: an orphan would hold the test run's output open).
pub struct ChildGuard(pub std::process::Child);

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn start_writer(topic: &str, group: &str) -> ChildGuard {
    start_writer_with(topic, group, &[])
}

/// [`start_writer`] with more environment variables.
pub fn start_writer_with(topic: &str, group: &str, env: &[(&str, &str)]) -> ChildGuard {
    let child = std::process::Command::new(bin("writer"))
        .env("AV_KAFKA_TOPIC", topic)
        .env("AV_WRITER_GROUP", group)
        .env("AV_WRITER_LISTEN", "127.0.0.1:0")
        .env("AV_WRITER_FLUSH_MS", "300")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("starting the writer");
    ChildGuard(child)
}

/// The shipped router configuration (`deploy/nginx.conf.template`, as
/// `scripts/up` fills it in) in front of this test's gateway and query API;
/// stopped when dropped.
pub struct Router {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Drop for Router {
    /// SIGTERM to the master stops its workers too (SIGKILL would orphan
    /// them, holding the test's output open).
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_router(app: &TestApp) -> Router {
    let dir = std::env::temp_dir().join(format!("av-router-{}", uuid::Uuid::new_v4().simple()));
    for sub in ["run", "logs", "nginx/tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let port = free_port();
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf.template"),
    )
    .unwrap();
    let conf = template
        .replace("@AV_HOME@", dir.to_str().unwrap())
        .replace("@PORT@", &port.to_string())
        .replace("@GATEWAY@", app.ingest.trim_start_matches("http://"))
        .replace(
            "@QUERY@",
            app.api
                .trim_start_matches("http://")
                .trim_end_matches("/api/v1"),
        );
    let path = dir.join("nginx/nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = std::env::var("AV_NGINX_BIN").unwrap_or_else(|_| "nginx".into());
    let child = std::process::Command::new(&nginx)
        .arg("-p")
        .arg(dir.join("nginx"))
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{nginx}: {e}; scripts/test installs nginx (the router)"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the router did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Router {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A webhook receiver (a real HTTP server on loopback) for the tests of
/// webhooks. What the receiver got: headers and the raw body of each request.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub agentvista_signature: String,
    pub content_type: String,
    pub body: String,
    /// The status the receiver answered.
    pub answered: u16,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    pub fail_first: Arc<AtomicUsize>,
    /// Answer 500 to everything.
    pub always_fail: Arc<AtomicBool>,
    /// Hold the next request this long before answering 200.
    pub hold_next: Arc<Mutex<Option<Duration>>>,
    /// Answer 500 to every attempt of the first delivery (by its
    /// `X-Webhook-Id`) the receiver sees, 200 to the others.
    pub refuse_first_delivery: Arc<AtomicBool>,
    first_id: Arc<Mutex<Option<String>>>,
}

impl Receiver {
    pub async fn start() -> (Self, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let hold = state.hold_next.lock().unwrap().take();
                    let refused = state.refuse_first_delivery.load(Ordering::SeqCst) && {
                        let mut first = state.first_id.lock().unwrap();
                        first.get_or_insert_with(|| h("x-webhook-id")) == &h("x-webhook-id")
                    };
                    let status = if refused || state.always_fail.load(Ordering::SeqCst) {
                        AxStatus::INTERNAL_SERVER_ERROR
                    } else if state.fail_first.load(Ordering::SeqCst) > 0 {
                        state.fail_first.fetch_sub(1, Ordering::SeqCst);
                        AxStatus::INTERNAL_SERVER_ERROR
                    } else {
                        AxStatus::OK
                    };
                    state.got.lock().unwrap().push(Received {
                        id: h("x-webhook-id"),
                        timestamp: h("x-webhook-timestamp").parse().unwrap_or(0),
                        signature: h("x-webhook-signature"),
                        agentvista_signature: h("x-agentvista-signature"),
                        content_type: h("content-type"),
                        body,
                        answered: status.as_u16(),
                    });
                    if let Some(d) = hold {
                        tokio::time::sleep(d).await;
                    }
                    status
                }
            }),
        );
        // A redirect to the hook: a dispatcher must not follow it.
        let app = app.route(
            "/moved",
            axum::routing::post(|| async {
                (AxStatus::TEMPORARY_REDIRECT, [("location", "/hook")])
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
