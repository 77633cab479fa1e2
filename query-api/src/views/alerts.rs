//! Alerts and their firing history.

use crate::store::alerts::{StoredAlert, StoredAlertEvent};
use agentvista_shared::model::{AlertChannel, AlertType};
use agentvista_shared::time_fmt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    pub id: Uuid,
    /// The target agent, or null for a service-targeted alert.
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    /// The target service (`service.name`), or null.
    pub target_service: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = AlertType)]
    pub alert_type: String,
    /// `failure_rate`: a fraction 0-1; `inactivity`: hours;
    /// `cost_threshold`: USD per UTC day; `latency_threshold`: p95 ms;
    /// null for `composite`.
    pub threshold: Option<f64>,
    /// The evaluation window of `failure_rate` and `latency_threshold`.
    pub window_minutes: i32,
    /// Runs a window needs before a rate or a p95 can fire.
    pub min_runs: i32,
    pub cooldown_minutes: i32,
    #[schema(value_type = AlertChannel)]
    pub channel: String,
    pub webhook_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub composite_config: Option<serde_json::Value>,
    pub is_active: bool,
    /// `ok` or `firing`.
    pub state: String,
    /// The value the last evaluation observed.
    pub last_value: Option<f64>,
    pub last_evaluated_at: Option<String>,
    pub last_fired_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<StoredAlert> for Alert {
    fn from(a: StoredAlert) -> Self {
        Alert {
            id: a.id,
            agent_id: a.agent_id,
            agent_name: a.agent_name,
            target_service: a.target_service,
            alert_type: a.alert_type,
            threshold: a.threshold,
            window_minutes: a.window_minutes,
            min_runs: a.min_runs,
            cooldown_minutes: a.cooldown_minutes,
            channel: a.channel,
            webhook_url: a.webhook_url,
            composite_config: a.composite_config,
            is_active: a.is_active,
            state: a.state,
            last_value: a.last_value,
            last_evaluated_at: a.last_evaluated_at.map(time_fmt::format),
            last_fired_at: a.last_fired_at.map(time_fmt::format),
            created_at: time_fmt::format(a.created_at),
            updated_at: time_fmt::format(a.updated_at),
        }
    }
}

/// An alert with the secret its webhook deliveries are signed with: the
/// answer to creation only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAlert {
    #[serde(flatten)]
    pub alert: Alert,
    /// Signs the deliveries to `webhook_url` as organization webhooks are
    /// signed (`X-Webhook-Signature`); shown only here.
    pub webhook_secret: String,
}

/// A notification an event made.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertNotification {
    /// `email`, `webhook` (the alert's `webhook_url`) or `org_webhook`
    /// (an organization endpoint subscribed to the event).
    pub channel: &'static str,
    /// The webhook delivery or the email.
    pub delivery_id: Uuid,
    /// The email's recipient.
    pub to: Option<String>,
    /// Webhooks: `pending`, `succeeded`, `failed`; email: `pending`,
    /// `sent`, `failed`.
    pub status: String,
    pub attempts: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEvent {
    pub id: Uuid,
    /// `fired` or `resolved`.
    pub kind: String,
    /// The observed value.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub at: String,
    pub notifications: Vec<AlertNotification>,
}

impl AlertEvent {
    pub fn build(
        e: StoredAlertEvent,
        deliveries: &[(Uuid, Uuid, bool, String, i32)],
        emails: &[(Uuid, Uuid, String, String, i32)],
    ) -> Self {
        let mut notifications: Vec<AlertNotification> = emails
            .iter()
            .filter(|m| m.0 == e.id)
            .map(|(_, id, to, status, attempts)| AlertNotification {
                channel: "email",
                delivery_id: *id,
                to: Some(to.clone()),
                status: status.clone(),
                attempts: *attempts,
            })
            .collect();
        notifications.extend(deliveries.iter().filter(|d| d.0 == e.id).map(
            |(_, id, own, status, attempts)| AlertNotification {
                channel: if *own { "webhook" } else { "org_webhook" },
                delivery_id: *id,
                to: None,
                status: status.clone(),
                attempts: *attempts,
            },
        ));
        AlertEvent {
            notifications,
            id: e.id,
            kind: e.kind,
            value: e.value,
            threshold: e.threshold,
            at: time_fmt::format(e.at),
        }
    }
}
