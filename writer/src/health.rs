//! The writer's HTTP endpoint (hyper, as the gateway's): `/healthz`
//! (alive), `/readyz` (ClickHouse answers a query and the Kafka brokers
//! answer a metadata request) and `/metrics` (Prometheus text through
//! `shared::metrics`, as the other services: request metrics of this
//! endpoint plus the writer's counters, each with its `# TYPE` line).

use super::Stats;
use agentvista_shared::metrics::RequestMetrics;
use bytes::Bytes;
use clickhouse::Client;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rdkafka::producer::{BaseProducer, Producer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Health {
    ch: Client,
    kafka: Option<Arc<BaseProducer>>,
    stats: Arc<Stats>,
    metrics: RequestMetrics,
}

/// Whether the brokers answer a metadata request within 2 s.
async fn kafka_ready(kafka: &Option<Arc<BaseProducer>>) -> bool {
    let Some(kafka) = kafka.clone() else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        kafka
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn handle(h: &Health, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/healthz" => response(
            StatusCode::OK,
            "application/json",
            r#"{"status":"ok"}"#.into(),
        ),
        "/readyz" => {
            let (clickhouse, kafka) = tokio::join!(
                async { h.ch.query("SELECT 1").execute().await.is_ok() },
                kafka_ready(&h.kafka)
            );
            let ok = clickhouse && kafka;
            let body = serde_json::json!({
                "status": if ok { "ok" } else { "unavailable" },
                "clickhouse": clickhouse,
                "kafka": kafka,
            });
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            response(status, "application/json", body.to_string())
        }
        "/metrics" => {
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let s = &h.stats;
            let lag = consumer_lag(h).await;
            let text = h.metrics.render(
                "av_writer_http",
                &[
                    ("av_writer_messages_total", "counter", load(&s.messages)),
                    ("av_writer_rows_total", "counter", load(&s.rows)),
                    ("av_writer_flushes_total", "counter", load(&s.flushes)),
                    (
                        "av_writer_insert_failures_total",
                        "counter",
                        load(&s.insert_failures),
                    ),
                    (
                        "av_writer_undecodable_total",
                        "counter",
                        load(&s.undecodable),
                    ),
                    (
                        "av_writer_dead_letters_total",
                        "counter",
                        load(&s.dead_letters),
                    ),
                    ("av_writer_consumer_lag_messages", "gauge", lag),
                ],
            );
            response(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        _ => response(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"detail":"Route not found."}"#.into(),
        ),
    }
}

/// The messages on this writer's partitions it has not consumed yet: each
/// partition's high watermark (asked of the brokers, 2 s at most) minus the
/// writer's position. Partitions whose position or watermark is unknown
/// count as none.
async fn consumer_lag(h: &Health) -> u64 {
    let positions = h
        .stats
        .positions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(kafka) = h.kafka.clone() else {
        return 0;
    };
    tokio::task::spawn_blocking(move || {
        let pairs: Vec<(i64, Option<i64>)> = positions
            .iter()
            .filter_map(|(topic, partition, position)| {
                let (_, high) = kafka
                    .client()
                    .fetch_watermarks(topic, *partition, Duration::from_secs(2))
                    .ok()?;
                Some((high, *position))
            })
            .collect();
        crate::consumer_lag(&pairs)
    })
    .await
    .unwrap_or(0)
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    ch: Client,
    common: agentvista_shared::config::CommonConfig,
    stats: Arc<Stats>,
) {
    let kafka: Option<Arc<BaseProducer>> = agentvista_shared::clients::kafka(&common)
        .create()
        .map_err(|e| tracing::error!(error = %e, "creating the readiness kafka client"))
        .ok()
        .map(Arc::new);
    let health = Arc::new(Health {
        ch,
        kafka,
        stats,
        metrics: RequestMetrics::default(),
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let health = health.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let health = health.clone();
            async move {
                let started = Instant::now();
                let path = req.uri().path().to_string();
                let resp = handle(&health, &path).await;
                let route = match path.as_str() {
                    "/healthz" | "/readyz" | "/metrics" => path.as_str(),
                    _ => "other",
                };
                health.metrics.record(
                    route,
                    req.method().as_str(),
                    resp.status().as_u16(),
                    started.elapsed(),
                );
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
