//! Webhook events from ingestion: a Kafka consumer of its own (consumer
//! group `AV_WEBHOOK_EVENTS_GROUP`) on the ingest topic turns every run
//! that has ended into `agent_run.completed` (status `completed`, `failed`
//! or `timed_out`) and, when it failed, `trace.failed`, for each active
//! endpoint of the run's organization subscribed to the type.
//!
//! Exactly one delivery per run, event type and endpoint: the delivery's
//! idempotency key is `<type>:<trace_id>` (unique per endpoint), the
//! deliveries of a chunk of messages are created in one PostgreSQL
//! transaction, and the chunk's Kafka offsets are committed only after it.
//! A consumer killed anywhere is redelivered the chunk, and the conflicts
//! drop what was already created. A run first seen `running` makes no
//! event; the batch that later carries its end does. Runs are events from
//! the moment the group first joined (`auto.offset.reset = latest`: a new
//! deployment does not replay the topic's history to receivers).

use super::Worker;
use crate::store::webhooks::{self as store, NewDelivery};
use crate::views::runs::Run;
use crate::webhooks::{Envelope, EnvelopeOrg};
use agentvista_shared::model::{RunStatus, TraceRecord, WebhookEventType};
use agentvista_shared::queue::IngestMessage;
use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Messages handled per transaction at most.
const CHUNK: usize = 500;

pub struct WebhookEvents {
    pub pg: PgPool,
    /// The brokers and security settings (`agentvista_shared::clients::kafka`).
    pub kafka: ClientConfig,
    pub topic: String,
    pub group: String,
    /// `earliest` or `latest` (`AV_WEBHOOK_EVENTS_FROM`).
    pub from: String,
    pub enabled: bool,
    pub created: Arc<AtomicU64>,
    /// The supervisor's stop signal (the consumer loop ends on it).
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl Worker for WebhookEvents {
    fn name(&self) -> &'static str {
        "webhook-events"
    }

    /// The consumer runs for as long as it can; after an error it is
    /// created again a second later.
    fn interval(&self) -> Duration {
        if self.enabled {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        }
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        let consumer: StreamConsumer = self
            .kafka
            .clone()
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &self.from)
            .set("session.timeout.ms", "10000")
            // A long poll: the broker answers as soon as a message arrives
            // (fetch.min.bytes = 1); the wait only bounds idle fetches.
            .set("fetch.wait.max.ms", "500")
            .create()
            .context("creating the webhook event consumer")?;
        consumer
            .subscribe(&[&self.topic])
            .context("subscribing to the ingest topic")?;
        let mut stop = self.stop.clone();
        loop {
            // A chunk: the first message, then whatever arrives within 20 ms.
            let first = tokio::select! {
                m = consumer.recv() => m?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let mut chunk = vec![(
                first.topic().to_string(),
                first.partition(),
                first.offset(),
                first.payload().map(<[u8]>::to_vec),
            )];
            let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
            while chunk.len() < CHUNK {
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(Ok(m)) => chunk.push((
                        m.topic().to_string(),
                        m.partition(),
                        m.offset(),
                        m.payload().map(<[u8]>::to_vec),
                    )),
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => break,
                }
            }
            let runs: Vec<(Uuid, TraceRecord)> = chunk
                .iter()
                .filter_map(|(_, _, _, payload)| IngestMessage::decode(payload.as_deref()?).ok())
                .flat_map(|m| {
                    let org = m.org_id;
                    m.traces.into_iter().map(move |t| (org, t))
                })
                .collect();
            let created = enqueue_events(&self.pg, &runs).await?;
            self.created.fetch_add(created, Ordering::Relaxed);
            let mut tpl = TopicPartitionList::new();
            let mut next: HashMap<(String, i32), i64> = HashMap::new();
            for (topic, partition, offset, _) in &chunk {
                let e = next.entry((topic.clone(), *partition)).or_insert(0);
                *e = (*e).max(offset + 1);
            }
            for ((topic, partition), offset) in next {
                tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
            }
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                // The deliveries are stored; a failed commit means
                // redelivery, which the idempotency keys absorb.
                tracing::warn!(error = %e, "webhook event offsets not committed");
            }
        }
    }
}

/// The events a run makes.
pub fn events_of(t: &TraceRecord) -> Vec<WebhookEventType> {
    match t.status {
        RunStatus::Running => vec![],
        RunStatus::Completed | RunStatus::TimedOut => vec![WebhookEventType::AgentRunCompleted],
        RunStatus::Failed => vec![
            WebhookEventType::AgentRunCompleted,
            WebhookEventType::TraceFailed,
        ],
    }
}

/// Create the deliveries of `runs` in one transaction; returns how many
/// were new.
pub async fn enqueue_events(pg: &PgPool, runs: &[(Uuid, TraceRecord)]) -> anyhow::Result<u64> {
    if runs.iter().all(|(_, t)| events_of(t).is_empty()) {
        return Ok(0);
    }
    let mut tx = pg.begin().await?;
    let mut slugs: HashMap<Uuid, Option<String>> = HashMap::new();
    let mut subscribers: HashMap<(Uuid, WebhookEventType), Vec<Uuid>> = HashMap::new();
    let mut created = 0;
    for (org, run) in runs {
        for event in events_of(run) {
            let key = (*org, event);
            if let std::collections::hash_map::Entry::Vacant(e) = subscribers.entry(key) {
                e.insert(store::subscribers(&mut tx, *org, event.as_str()).await?);
            }
            let endpoints = &subscribers[&key];
            if endpoints.is_empty() {
                continue;
            }
            if !slugs.contains_key(org) {
                let slug: Option<String> =
                    sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
                        .bind(org)
                        .fetch_optional(&mut *tx)
                        .await?;
                slugs.insert(*org, slug);
            }
            let Some(slug) = slugs[org].clone() else {
                continue;
            };
            let idempotency_key = format!("{}:{}", event.as_str(), run.trace_id);
            let event_id = Uuid::new_v5(org, idempotency_key.as_bytes());
            let body = Envelope {
                id: event_id,
                event_type: event.as_str().to_string(),
                created_at: agentvista_shared::time_fmt::format(time::OffsetDateTime::now_utc()),
                organization: EnvelopeOrg { id: *org, slug },
                data: Run::from(run),
            }
            .to_body();
            for endpoint_id in endpoints {
                let new = store::enqueue(
                    &mut tx,
                    &NewDelivery {
                        org_id: *org,
                        endpoint_id: *endpoint_id,
                        event_id,
                        event_type: event.as_str(),
                        idempotency_key: &idempotency_key,
                        body: &body,
                    },
                )
                .await?;
                created += u64::from(new.is_some());
            }
        }
    }
    tx.commit().await?;
    Ok(created)
}
