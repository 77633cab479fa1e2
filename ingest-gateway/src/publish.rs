//! Handing accepted records to Kafka: one message per request and key
//! bucket (OTLP exports chunked; `IngestMessage::keyed` splits by trace),
//! the quota reserved first and given back when the broker does not
//! confirm.

use crate::quota::Reservation;
use crate::App;
use agentvista_shared::error::ApiError;
use agentvista_shared::keys::KeyRecord;
use agentvista_shared::queue::{IngestMessage, MessageKey, FORMAT_VERSION};

pub(crate) fn new_message(key: &KeyRecord) -> IngestMessage {
    IngestMessage {
        format: FORMAT_VERSION,
        org_id: key.org_id,
        version: agentvista_shared::window::now_ns(),
        retention_days: key.retention_days,
        traces: Vec::new(),
        spans: Vec::new(),
        logs: Vec::new(),
        metrics: Vec::new(),
    }
}

/// Records per Kafka message: large OTLP exports are split so that no
/// message approaches the broker's size limit.
const CHUNK_RECORDS: usize = 1_000;

/// One message per [`CHUNK_RECORDS`] records, each a copy of `template`
/// with its chunk put in place by `fill`.
pub(crate) fn chunked<T>(
    template: &IngestMessage,
    items: Vec<T>,
    fill: fn(&mut IngestMessage, Vec<T>),
) -> Vec<IngestMessage> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        let mut m = template.clone();
        fill(&mut m, it.by_ref().take(CHUNK_RECORDS).collect());
        out.push(m);
    }
    out
}

/// Reserve quota for the messages' spans, then hand them to Kafka (all at
/// once, each awaited); give the reservation back when Kafka did not confirm
/// all of them. Chunks that did get through are harmless when the client
/// retries: every record is idempotent by id.
pub async fn publish(
    app: &App,
    key: &KeyRecord,
    messages: Vec<IngestMessage>,
) -> Result<(), ApiError> {
    let messages: Vec<IngestMessage> = messages.into_iter().filter(|m| !m.is_empty()).collect();
    if messages.is_empty() {
        return Ok(());
    }
    // Encode, then free the records before the first wait (Redis, then the
    // broker): what lives across the waits is only the encoded bytes.
    let spans: u64 = messages.iter().map(|m| m.span_count() as u64).sum();
    let count = |f: fn(&IngestMessage) -> usize| messages.iter().map(f).sum::<usize>() as u64;
    let (span_n, log_n, point_n) = (
        count(|m| m.spans.len()),
        count(|m| m.logs.len()),
        count(|m| m.metrics.len()),
    );
    let payloads: Vec<(MessageKey, Vec<u8>)> = messages
        .into_iter()
        .flat_map(|m| m.keyed(app.config.kafka_key_buckets))
        .map(|(k, m)| (k, m.encode()))
        .collect();
    let reservation = app
        .quota
        .reserve(key.org_id, spans, key.monthly_span_limit)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "quota store unavailable");
            ApiError::unavailable("The quota service is temporarily unavailable; retry shortly.")
        })?;
    let Reservation::Granted {
        key: counter,
        spans,
    } = reservation
    else {
        return Err(ApiError::quota_exceeded());
    };
    let sends = payloads
        .iter()
        .map(|(k, payload)| app.queue.send(k, payload));
    let results = futures::future::join_all(sends).await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        tracing::error!(error = %e, org_id = %key.org_id, "kafka did not confirm the batch");
        app.quota.release(&counter, spans).await;
        return Err(ApiError::unavailable(
            "The ingestion queue is temporarily unavailable; the batch was not accepted, retry shortly.",
        ));
    }
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    app.accepted.spans.fetch_add(span_n, relaxed);
    app.accepted.log_records.fetch_add(log_n, relaxed);
    app.accepted.metric_points.fetch_add(point_n, relaxed);
    Ok(())
}
