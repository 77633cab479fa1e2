//! Webhook endpoints (the secret only in the answers to creation and
//! rotation) and deliveries with their attempts.

use crate::store::webhooks::{StoredAttempt, StoredDelivery, StoredEndpoint};
use agentvista_shared::model::WebhookEventType;
use agentvista_shared::time_fmt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub name: String,
    #[schema(value_type = Vec<WebhookEventType>)]
    pub event_types: Vec<String>,
    /// False once paused by hand or by the circuit breaker.
    pub is_active: bool,
    /// Consecutive failed attempts; at the breaker threshold (10) the
    /// endpoint is paused. `PATCH is_active: true` resets it.
    pub consecutive_failures: i32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<StoredEndpoint> for WebhookEndpoint {
    fn from(e: StoredEndpoint) -> Self {
        WebhookEndpoint {
            id: e.id,
            url: e.url,
            name: e.name,
            event_types: e.event_types,
            is_active: e.is_active,
            consecutive_failures: e.consecutive_failures,
            created_at: time_fmt::format(e.created_at),
            updated_at: time_fmt::format(e.updated_at),
        }
    }
}

/// An endpoint with its signing secret: the answer to creation (201) and
/// to rotation, the only times the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_` and 64 hex characters: the HMAC-SHA256 key. Store it now.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub attempt: i32,
    pub attempted_at: String,
    /// The receiver's HTTP status; null when no response came.
    pub status_code: Option<i32>,
    /// Why no response came (timeout, connection refused, refused
    /// destination), or null.
    pub error: Option<String>,
    pub duration_ms: i32,
}

impl From<&StoredAttempt> for DeliveryAttempt {
    fn from(a: &StoredAttempt) -> Self {
        DeliveryAttempt {
            attempt: a.attempt,
            attempted_at: time_fmt::format(a.attempted_at),
            status_code: a.status_code,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Sent as `X-Webhook-Id`, the same on every attempt.
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed` (after 7 attempts).
    pub status: String,
    pub attempt_count: i32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
}

impl Delivery {
    pub fn build(d: StoredDelivery, attempts: &[StoredAttempt]) -> Self {
        Delivery {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            next_attempt_at: (d.status == "pending").then(|| time_fmt::format(d.next_attempt_at)),
            status: d.status,
            attempt_count: d.attempts,
            created_at: time_fmt::format(d.created_at),
            completed_at: d.completed_at.map(time_fmt::format),
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(DeliveryAttempt::from)
                .collect(),
        }
    }
}

/// `GET .../deliveries`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
    pub has_more: bool,
    pub deliveries: Vec<Delivery>,
}

/// `POST .../test` (202): the delivery created; the dispatcher sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDelivery {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: &'static str,
}

/// One URL the organization's data is sent to (`GET
/// /org/{org_slug}/webhooks/destinations`).
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboundDestination {
    /// `webhook_endpoint` or `alert`.
    pub source: String,
    /// The endpoint's or the alert's id.
    pub id: Uuid,
    pub url: String,
    pub is_active: bool,
    /// The alert's owner (null for endpoints, which belong to the
    /// organization).
    pub owner_user_id: Option<Uuid>,
    pub created_at: String,
}

impl From<crate::store::webhooks::StoredDestination> for OutboundDestination {
    fn from(d: crate::store::webhooks::StoredDestination) -> Self {
        OutboundDestination {
            source: d.source,
            id: d.id,
            url: d.url,
            is_active: d.is_active,
            owner_user_id: d.owner_user_id,
            created_at: time_fmt::format(d.created_at),
        }
    }
}
