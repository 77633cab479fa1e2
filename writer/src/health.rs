//! A minimal HTTP endpoint: `/healthz` (alive), `/readyz` (ClickHouse
//! answers a query and the Kafka brokers answer a metadata request) and
//! `/metrics` (Prometheus text).

use super::Stats;
use clickhouse::Client;
use rdkafka::producer::{BaseProducer, Producer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

pub async fn serve(
    listener: tokio::net::TcpListener,
    ch: Client,
    brokers: String,
    stats: Arc<Stats>,
) {
    let kafka: Option<Arc<BaseProducer>> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .map_err(|e| tracing::error!(error = %e, "creating the readiness kafka client"))
        .ok()
        .map(Arc::new);
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let ch = ch.clone();
        let stats = stats.clone();
        let kafka = kafka.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                stream.read(&mut buf),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/healthz" => ("200 OK", r#"{"status":"ok"}"#.to_string()),
                "/readyz" => {
                    let (clickhouse, kafka) = tokio::join!(
                        async { ch.query("SELECT 1").execute().await.is_ok() },
                        kafka_ready(&kafka)
                    );
                    let ok = clickhouse && kafka;
                    let body = serde_json::json!({
                        "status": if ok { "ok" } else { "unavailable" },
                        "clickhouse": clickhouse,
                        "kafka": kafka,
                    })
                    .to_string();
                    (if ok { "200 OK" } else { "503 Service Unavailable" }, body)
                }
                "/metrics" => ("200 OK", format!(
                    "av_writer_messages_total {}\nav_writer_rows_total {}\nav_writer_flushes_total {}\nav_writer_insert_failures_total {}\nav_writer_undecodable_total {}\nav_writer_dead_letters_total {}\n",
                    stats.messages.load(Ordering::Relaxed),
                    stats.rows.load(Ordering::Relaxed),
                    stats.flushes.load(Ordering::Relaxed),
                    stats.insert_failures.load(Ordering::Relaxed),
                    stats.undecodable.load(Ordering::Relaxed),
                    stats.dead_letters.load(Ordering::Relaxed),
                )),
                _ => ("404 Not Found", r#"{"detail":"Not found."}"#.to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
        });
    }
}
