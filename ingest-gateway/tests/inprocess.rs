//! The gateway's HTTP handlers in process, over in-memory fakes of its key
//! store, quota and queue (`ingest_gateway::ports`): no Redis, PostgreSQL
//! or Kafka. What a client sees (status, body) and what reaches the queue
//! (the decoded message) are asserted; the whole-stack suite covers the
//! same paths against the real services.

use agentvista_shared::error::ApiError;
use agentvista_shared::keys::{KeyRecord, Presented};
use agentvista_shared::queue::IngestMessage;
use ingest_gateway::ports::{Authenticate, BoxFuture, Publisher, QuotaStore};
use ingest_gateway::quota::Reservation;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const WRITE_KEY: &str = "av_1111111111111111111111111111111111111111111111111111111111111111";
const READ_KEY: &str = "av_2222222222222222222222222222222222222222222222222222222222222222";

struct FakeKeys {
    org: Uuid,
}

impl Authenticate for FakeKeys {
    fn authenticate<'a>(
        &'a self,
        header: Option<&'a str>,
    ) -> BoxFuture<'a, Result<KeyRecord, ApiError>> {
        Box::pin(async move {
            let raw = header
                .and_then(agentvista_shared::keys::bearer)
                .ok_or_else(ApiError::unauthorized)?;
            let key = Presented::parse(raw).ok_or_else(ApiError::unauthorized)?;
            let scopes = match raw {
                WRITE_KEY => vec!["read".to_string(), "write".to_string()],
                READ_KEY => vec!["read".to_string()],
                _ => return Err(ApiError::unauthorized()),
            };
            Ok(KeyRecord {
                key_id: Uuid::nil(),
                org_id: self.org,
                hash: key.hash().to_string(),
                scopes,
                monthly_span_limit: 3,
                retention_days: 3,
            })
        })
    }

    fn flush_last_used(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Spans reserved this month, against the key's limit.
#[derive(Default)]
struct FakeQuota {
    used: AtomicU64,
}

impl QuotaStore for FakeQuota {
    fn reserve(
        &self,
        _org: Uuid,
        spans: u64,
        limit: u64,
    ) -> BoxFuture<'_, Result<Reservation, String>> {
        Box::pin(async move {
            let before = self.used.fetch_add(spans, Ordering::SeqCst);
            if before + spans > limit {
                self.used.fetch_sub(spans, Ordering::SeqCst);
                return Ok(Reservation::Exceeded);
            }
            Ok(Reservation::Granted {
                key: "month".into(),
                spans,
            })
        })
    }

    fn release<'a>(&'a self, _counter: &'a str, spans: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.used.fetch_sub(spans, Ordering::SeqCst);
        })
    }
}

/// The messages the queue acknowledged (and their keys); `down` makes
/// every send fail.
#[derive(Default)]
struct FakeQueue {
    sent: Mutex<Vec<IngestMessage>>,
    keys: Mutex<Vec<Vec<u8>>>,
    down: AtomicBool,
}

impl Publisher for FakeQueue {
    fn send<'a>(&'a self, key: &'a [u8], payload: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err("broker down".into());
            }
            let m = IngestMessage::decode(payload).map_err(|e| e.to_string())?;
            self.sent.lock().unwrap().push(m);
            self.keys.lock().unwrap().push(key.to_vec());
            Ok(())
        })
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { !self.down.load(Ordering::SeqCst) })
    }

    fn flush(&self, _timeout: Duration) {}
}

struct Harness {
    base: String,
    org: Uuid,
    quota: Arc<FakeQuota>,
    queue: Arc<FakeQueue>,
    client: reqwest::Client,
}

async fn start() -> Harness {
    let mut config = ingest_gateway::config::Config::from_env().expect("defaults");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.common.redis_url = "redis://127.0.0.1:1".into();
    config.max_body_bytes = 64 * 1024;
    let org = Uuid::new_v4();
    let (quota, queue) = (
        Arc::new(FakeQuota::default()),
        Arc::new(FakeQueue::default()),
    );
    let pg = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let redis = agentvista_shared::clients::Redis::lazy(&config.common).unwrap();
    let app = ingest_gateway::App::new(
        config,
        Arc::new(FakeKeys { org }),
        quota.clone(),
        queue.clone(),
        redis,
        pg,
    );
    let gateway = ingest_gateway::Gateway::bind(app).await.unwrap();
    let base = format!("http://{}", gateway.local_addr());
    tokio::spawn(gateway.run(std::future::pending()));
    Harness {
        base,
        org,
        quota,
        queue,
        client: reqwest::Client::new(),
    }
}

fn doc_example() -> Value {
    let mut v: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/doc-example-batch.json")).unwrap();
    // Inside the ingestion window (five years back from now).
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let at = |secs: i64| agentvista_shared::time_fmt::format(now - time::Duration::seconds(secs));
    v["traces"][0]["trace"]["started_at"] = json!(at(10));
    v["traces"][0]["trace"]["ended_at"] = json!(at(8));
    v["traces"][0]["spans"][0]["started_at"] = json!(at(10));
    v["traces"][0]["spans"][0]["ended_at"] = json!(at(9));
    v
}

impl Harness {
    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn batch(&self, key: Option<&str>, body: &Value) -> (u16, Value) {
        self.post(
            "/api/v1/traces/batch",
            key,
            "application/json",
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn an_accepted_batch_reaches_the_queue_as_one_message_of_the_keys_organization() {
    let h = start().await;
    let (status, body) = h.batch(Some(WRITE_KEY), &doc_example()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"accepted_traces": 1, "accepted_spans": 1}));
    let sent = h.queue.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].org_id, h.org);
    assert_eq!(sent[0].traces[0].agent_name, "lead-qualifier");
    assert_eq!(sent[0].spans[0].cost_nanos, Some(3_200_000));
    assert_eq!(h.quota.used.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn traces_of_one_batch_spread_over_keys_and_each_trace_keeps_one() {
    let h = start().await;
    let mut body = doc_example();
    let one = body["traces"][0].clone();
    // Three traces (the fake key's monthly limit) whose ids fall in three
    // different key buckets of the default 16.
    let mut ids: Vec<Uuid> = Vec::new();
    while ids.len() < 3 {
        let id = Uuid::new_v4();
        let bucket = agentvista_shared::queue::key_bucket(id.as_u128(), 16);
        if ids
            .iter()
            .all(|i| agentvista_shared::queue::key_bucket(i.as_u128(), 16) != bucket)
        {
            ids.push(id);
        }
    }
    let traces: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut t = one.clone();
            t["trace"]["trace_id"] = json!(id.to_string());
            t["spans"][0]["trace_id"] = json!(id.to_string());
            t["spans"][0]["span_id"] = json!(Uuid::new_v4().to_string());
            t
        })
        .collect();
    body["traces"] = json!(traces);
    let (status, answer) = h.batch(Some(WRITE_KEY), &body).await;
    assert_eq!(status, 200, "{answer}");
    let sent = h.queue.sent.lock().unwrap();
    let keys = h.queue.keys.lock().unwrap();
    // One message per trace here, each under the organization's key plus
    // its trace's bucket, the trace's run row with its span.
    assert_eq!(sent.len(), 3);
    for (key, m) in keys.iter().zip(sent.iter()) {
        assert_eq!(&key[..16], h.org.as_bytes());
        assert_eq!(m.traces.len(), 1);
        assert_eq!(m.spans.len(), 1);
        assert_eq!(m.spans[0].trace_id, m.traces[0].trace_id);
        let bucket = agentvista_shared::queue::key_bucket(m.traces[0].trace_id.as_u128(), 16);
        assert_eq!(usize::from(key[16]), bucket);
    }
}

#[tokio::test]
async fn over_the_monthly_limit_is_the_contract_429_and_nothing_is_queued() {
    let h = start().await;
    h.quota.used.store(3, Ordering::SeqCst); // the fake key's limit
    let (status, body) = h.batch(Some(WRITE_KEY), &doc_example()).await;
    assert_eq!(status, 429);
    assert_eq!(body, json!({"detail": "Monthly event limit exceeded."}));
    assert!(h.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_queue_that_does_not_confirm_is_a_503_and_the_quota_is_given_back() {
    let h = start().await;
    h.queue.down.store(true, Ordering::SeqCst);
    let (status, body) = h.batch(Some(WRITE_KEY), &doc_example()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("retry"));
    assert_eq!(h.quota.used.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn keys_scopes_and_media_types_are_checked_before_anything_is_queued() {
    let h = start().await;
    let ex = doc_example();
    let (status, body) = h.batch(None, &ex).await;
    assert_eq!((status, body["detail"].is_string()), (401, true));
    let (status, _) = h.batch(Some("av_not-a-key"), &ex).await;
    assert_eq!(status, 401);
    let (status, body) = h.batch(Some(READ_KEY), &ex).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = h
        .post(
            "/api/v1/traces/batch",
            Some(WRITE_KEY),
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, 415);
    let r = h
        .client
        .get(format!("{}/api/v1/traces/batch", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let (status, body) = h
        .post(
            "/api/v1/nope",
            Some(WRITE_KEY),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!((status, body["detail"].is_string()), (404, true));
    assert!(h.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn invalid_batches_are_a_400_naming_the_field_and_bodies_over_the_limit_a_413() {
    let h = start().await;
    let mut ex = doc_example();
    ex["traces"][0]["trace"]["started_at"] = json!("2001-01-01T00:00:00Z");
    let (status, body) = h.batch(Some(WRITE_KEY), &ex).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("traces[0].trace.started_at"),
        "{body}"
    );
    let (status, body) = h.batch(Some(WRITE_KEY), &json!({"traces": "x"})).await;
    assert_eq!(status, 400, "{body}");
    let big = vec![b' '; 65 * 1024];
    let (status, body) = h
        .post(
            "/api/v1/traces/batch",
            Some(WRITE_KEY),
            "application/json",
            big,
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(body["detail"].is_string());
    assert!(h.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_otlp_json_export_is_translated_and_answered_with_its_counts() {
    let h = start().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let export = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otel-agent"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "name": "chat", "kind": 3, "startTimeUnixNano": (now - 2_000_000_000).to_string(),
             "endTimeUnixNano": (now - 1_000_000_000).to_string(),
             "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]},
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175",
             "name": "ancient", "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}
        ]}]
    }]});
    let (status, body) = h
        .post(
            "/v1/traces",
            Some(WRITE_KEY),
            "application/json",
            serde_json::to_vec(&export).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted_spans"], 1);
    assert_eq!(body["rejected_spans"], 1);
    // OTLP JSON writes 64-bit integers as strings.
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "1");
    let sent = h.queue.sent.lock().unwrap();
    let spans: Vec<_> = sent.iter().flat_map(|m| &m.spans).collect();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].agent_name, "otel-agent");
    assert_eq!(spans[0].span_type.as_str(), "llm");
    assert_eq!(spans[0].kind, "client");
}
