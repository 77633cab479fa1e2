//! Webhooks: what an event delivery is, independent of HTTP routes and
//! storage: the envelope and its signature (`signing`), which URLs may be
//! called (`url_policy`), and when a failed attempt is retried
//! (`schedule`). The routes are `routes/webhooks.rs`, the SQL
//! `store/webhooks.rs`; events are made by `workers/webhook_events.rs`
//! (from ingestion) and sent by `workers/webhook_dispatch.rs`.

pub mod schedule;
pub mod signing;
pub mod url_policy;

use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

/// How deliveries are made (`AV_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Plain `http://` URLs are accepted (self-hosters delivering to
    /// internal services). Off by default.
    pub allow_http: bool,
    /// Destinations that resolve to loopback, private, link-local or
    /// metadata addresses are accepted. Off by default.
    pub allow_private: bool,
    /// One attempt's time limit; a timeout is a failed attempt.
    pub timeout: Duration,
    /// Consecutive failed attempts (across deliveries) that pause an
    /// endpoint, once they span at least `breaker_window`.
    pub breaker_threshold: i32,
    /// How long a streak of failed attempts must have lasted before it
    /// pauses the endpoint (a burst of events to a receiver that is down
    /// for a few seconds pauses nothing).
    pub breaker_window: Duration,
    /// Multiplies the retry schedule (1 in production; tests shrink it).
    pub backoff_scale: f64,
    /// Time between dispatcher passes; zero disables the dispatcher.
    pub poll: Duration,
    /// How long a dispatcher holds an endpoint without renewing.
    pub lease: Duration,
    /// Endpoints delivered to at once per replica.
    pub concurrency: usize,
    /// Whether this replica consumes the ingest topic for run events.
    pub events: bool,
    /// The consumer group of the event consumer.
    pub events_group: String,
    /// Where a new consumer group starts: `latest` (default: runs ingested
    /// from then on) or `earliest` (the topic's retained history).
    pub events_from: String,
}

/// The most endpoints one organization may register.
pub const MAX_ENDPOINTS_PER_ORG: i64 = 50;
/// A URL's and a name's longest accepted length.
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_NAME_LEN: usize = 128;
/// Attempts per delivery (the first and six retries).
pub const MAX_ATTEMPTS: i32 = 7;

/// The type of the event `POST .../test` sends (outside the subscription
/// vocabulary: every endpoint receives it when asked).
pub const TEST_EVENT: &str = "webhook.test";

/// The JSON every delivery carries: the event, its organization, and the
/// event's data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Envelope<T: Serialize> {
    /// The event's id: the same for every endpoint the event goes to.
    pub id: Uuid,
    /// `alert.fired`, `alert.resolved`, `trace.failed`,
    /// `agent_run.completed`, or `webhook.test`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339: when the event was created.
    pub created_at: String,
    pub organization: EnvelopeOrg,
    pub data: T,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvelopeOrg {
    pub id: Uuid,
    pub slug: String,
}

impl<T: Serialize> Envelope<T> {
    /// The envelope's bytes, as stored and sent.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("envelopes serialize")
    }
}
