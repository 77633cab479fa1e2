//! Alerts (PostgreSQL): the rules, their evaluation state and firing
//! history. An alert with a webhook channel owns a hidden webhook endpoint
//! (`webhook_endpoints.alert_id`) so that its notifications go through the
//! webhook outbox and dispatcher like every other delivery.

use crate::error::AppResult;
use crate::store::emails;
use crate::store::webhooks::{self, NewDelivery};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// An alert as read back (never its webhook secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAlert {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub target_service: Option<String>,
    #[sqlx(rename = "type")]
    pub alert_type: String,
    pub threshold: Option<f64>,
    pub window_minutes: i32,
    pub min_runs: i32,
    pub cooldown_minutes: i32,
    pub channel: String,
    pub webhook_url: Option<String>,
    pub composite_config: Option<serde_json::Value>,
    pub is_active: bool,
    pub state: String,
    pub last_value: Option<f64>,
    pub last_evaluated_at: Option<OffsetDateTime>,
    pub last_fired_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, org_id, user_id, agent_id, agent_name, target_service, type, threshold, \
    window_minutes, min_runs, cooldown_minutes, channel, webhook_url, composite_config, is_active, state, \
    last_value, last_evaluated_at, last_fired_at, created_at, updated_at";

/// The most alerts one organization may have.
pub const MAX_ALERTS_PER_ORG: i64 = 200;

/// How many alerts the organization has.
pub async fn count(pg: &PgPool, org_id: Uuid) -> AppResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM alerts WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(pg)
            .await?,
    )
}

/// A rule as validated by the route (every field decided).
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub target_service: Option<String>,
    pub alert_type: String,
    pub threshold: Option<f64>,
    pub window_minutes: i32,
    pub min_runs: i32,
    pub cooldown_minutes: i32,
    pub channel: String,
    pub webhook_url: Option<String>,
    pub composite_config: Option<serde_json::Value>,
    pub is_active: bool,
}

/// Keep the alert's hidden endpoint in step with its channel and URL. An
/// update of the alert also re-arms the endpoint (its breaker cannot be
/// reset through the endpoints API, which does not list it).
async fn sync_endpoint(
    tx: &mut Transaction<'_, Postgres>,
    org_id: Uuid,
    alert_id: Uuid,
    rule: &AlertRule,
    secret: &str,
) -> AppResult<()> {
    let wants = rule.channel != "email" && rule.webhook_url.is_some();
    if !wants {
        sqlx::query("DELETE FROM webhook_endpoints WHERE alert_id = $1")
            .bind(alert_id)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, org_id, url, name, event_types, secret, alert_id) \
         VALUES ($1, $2, $3, 'alert', ARRAY['alert.fired', 'alert.resolved'], $4, $5) \
         ON CONFLICT (alert_id) WHERE alert_id IS NOT NULL DO UPDATE SET url = EXCLUDED.url, \
           is_active = true, consecutive_failures = 0, updated_at = now()",
    )
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(&rule.webhook_url)
    .bind(secret)
    .bind(alert_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Create an alert; returns it and the secret its webhook deliveries are
/// signed with.
pub async fn create(
    pg: &PgPool,
    org_id: Uuid,
    user_id: Uuid,
    rule: &AlertRule,
    secret: &str,
) -> AppResult<StoredAlert> {
    let mut tx = pg.begin().await?;
    let alert: StoredAlert = sqlx::query_as(&format!(
        "INSERT INTO alerts (id, org_id, user_id, agent_id, agent_name, target_service, type, threshold, \
           window_minutes, min_runs, cooldown_minutes, channel, webhook_url, webhook_secret, composite_config, is_active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(user_id)
    .bind(rule.agent_id)
    .bind(&rule.agent_name)
    .bind(&rule.target_service)
    .bind(&rule.alert_type)
    .bind(rule.threshold)
    .bind(rule.window_minutes)
    .bind(rule.min_runs)
    .bind(rule.cooldown_minutes)
    .bind(&rule.channel)
    .bind(&rule.webhook_url)
    .bind(secret)
    .bind(&rule.composite_config)
    .bind(rule.is_active)
    .fetch_one(&mut *tx)
    .await?;
    sync_endpoint(&mut tx, org_id, alert.id, rule, secret).await?;
    tx.commit().await?;
    Ok(alert)
}

/// The organization's alerts, newest first.
pub async fn list(pg: &PgPool, org_id: Uuid) -> AppResult<Vec<StoredAlert>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .fetch_all(pg)
    .await?)
}

pub async fn get(pg: &PgPool, org_id: Uuid, id: Uuid) -> AppResult<Option<StoredAlert>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(pg)
    .await?)
}

/// Replace an alert's rule (the route merged the change into the current
/// rule). Deactivating an alert ends its firing state without a
/// resolution event.
pub async fn update(
    pg: &PgPool,
    org_id: Uuid,
    id: Uuid,
    rule: &AlertRule,
) -> AppResult<Option<StoredAlert>> {
    let mut tx = pg.begin().await?;
    let alert: Option<StoredAlert> = sqlx::query_as(&format!(
        "UPDATE alerts SET agent_id = $3, agent_name = $4, target_service = $5, type = $6, threshold = $7, \
           window_minutes = $8, min_runs = $9, cooldown_minutes = $10, channel = $11, webhook_url = $12, \
           composite_config = $13, is_active = $14, \
           state = CASE WHEN $14 THEN state ELSE 'ok' END, updated_at = now() \
         WHERE org_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(org_id)
    .bind(id)
    .bind(rule.agent_id)
    .bind(&rule.agent_name)
    .bind(&rule.target_service)
    .bind(&rule.alert_type)
    .bind(rule.threshold)
    .bind(rule.window_minutes)
    .bind(rule.min_runs)
    .bind(rule.cooldown_minutes)
    .bind(&rule.channel)
    .bind(&rule.webhook_url)
    .bind(&rule.composite_config)
    .bind(rule.is_active)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(alert) = alert else {
        return Ok(None);
    };
    let secret: String = sqlx::query_scalar("SELECT webhook_secret FROM alerts WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    sync_endpoint(&mut tx, org_id, id, rule, &secret).await?;
    tx.commit().await?;
    Ok(Some(alert))
}

pub async fn delete(pg: &PgPool, org_id: Uuid, id: Uuid) -> AppResult<bool> {
    Ok(
        sqlx::query("DELETE FROM alerts WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .execute(pg)
            .await?
            .rows_affected()
            > 0,
    )
}

/// A firing or resolution as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAlertEvent {
    pub id: Uuid,
    pub kind: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub at: OffsetDateTime,
}

/// The alert's history, newest first, with the webhook deliveries each
/// event made: (delivery id, endpoint is the alert's own, status, attempts).
pub async fn events(
    pg: &PgPool,
    alert_id: Uuid,
    limit: i64,
) -> AppResult<(Vec<StoredAlertEvent>, Vec<(Uuid, Uuid, bool, String, i32)>)> {
    let events: Vec<StoredAlertEvent> = sqlx::query_as(
        "SELECT id, kind, value, threshold, at FROM alert_events WHERE alert_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(alert_id)
    .bind(limit)
    .fetch_all(pg)
    .await?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let deliveries: Vec<(Uuid, Uuid, bool, String, i32)> = sqlx::query_as(
        "SELECT d.event_id, d.id, e.alert_id IS NOT NULL, d.status, d.attempts \
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.event_id = ANY($1) ORDER BY d.created_at",
    )
    .bind(&ids)
    .fetch_all(pg)
    .await?;
    Ok((events, deliveries))
}

/// Every active alert of every organization whose owner is still a member
/// (the evaluator's input), with the organization's slug.
pub async fn active(pg: &PgPool) -> AppResult<Vec<(StoredAlert, String)>> {
    let alerts: Vec<StoredAlert> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE is_active \
         AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = alerts.org_id AND m.user_id = alerts.user_id) \
         ORDER BY org_id, id"
    ))
    .fetch_all(pg)
    .await?;
    let orgs: Vec<Uuid> = alerts.iter().map(|a| a.org_id).collect();
    let slugs: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, slug FROM organizations WHERE id = ANY($1)")
            .bind(&orgs)
            .fetch_all(pg)
            .await?;
    let slugs: std::collections::HashMap<Uuid, String> = slugs.into_iter().collect();
    Ok(alerts
        .into_iter()
        .filter_map(|a| {
            let slug = slugs.get(&a.org_id)?.clone();
            Some((a, slug))
        })
        .collect())
}

/// Record the values of evaluations that changed nothing, in one
/// statement.
pub async fn record_values(pg: &PgPool, values: &[(Uuid, Option<f64>)]) -> AppResult<()> {
    if values.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = values.iter().map(|v| v.0).collect();
    let vals: Vec<Option<f64>> = values.iter().map(|v| v.1).collect();
    sqlx::query(
        "UPDATE alerts a SET last_value = v.val, last_evaluated_at = now() \
         FROM UNNEST($1::uuid[], $2::float8[]) AS v(id, val) WHERE a.id = v.id",
    )
    .bind(&ids)
    .bind(&vals)
    .execute(pg)
    .await?;
    Ok(())
}

/// What an evaluation decided for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to notify (the value is recorded).
    Stay,
    Fire,
    Resolve,
}

/// Record an evaluation. A firing or resolution is applied only if the
/// alert is still as the evaluator read it (`state`, `last_fired_at`), so
/// a second evaluator can never fire it twice; the event, the state and
/// the webhook deliveries (the alert's own endpoint and the organization's
/// endpoints subscribed to the event type) are written in one transaction.
/// Returns the event id when one was made.
pub async fn record(
    pg: &PgPool,
    alert: &StoredAlert,
    value: Option<f64>,
    transition: Transition,
    body: impl Fn(Uuid) -> String,
    email: impl Fn() -> (String, String, String),
) -> AppResult<Option<Uuid>> {
    let mut tx = pg.begin().await?;
    let (new_state, kind) = match transition {
        Transition::Stay => {
            sqlx::query(
                "UPDATE alerts SET last_value = $2, last_evaluated_at = now() WHERE id = $1",
            )
            .bind(alert.id)
            .bind(value)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        Transition::Fire => ("firing", "fired"),
        Transition::Resolve => ("ok", "resolved"),
    };
    let changed = sqlx::query(
        "UPDATE alerts SET state = $2, last_value = $3, last_evaluated_at = now(), \
           last_fired_at = CASE WHEN $2 = 'firing' THEN now() ELSE last_fired_at END \
         WHERE id = $1 AND is_active AND state = $4 AND last_fired_at IS NOT DISTINCT FROM $5",
    )
    .bind(alert.id)
    .bind(new_state)
    .bind(value)
    .bind(&alert.state)
    .bind(alert.last_fired_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    let event_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO alert_events (id, alert_id, org_id, kind, value, threshold) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(alert.id)
    .bind(alert.org_id)
    .bind(kind)
    .bind(value)
    .bind(alert.threshold)
    .execute(&mut *tx)
    .await?;
    let event_type = if kind == "fired" {
        "alert.fired"
    } else {
        "alert.resolved"
    };
    let body = body(event_id);
    let mut endpoints = webhooks::subscribers(&mut tx, alert.org_id, event_type).await?;
    let own: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE alert_id = $1 AND is_active")
            .bind(alert.id)
            .fetch_optional(&mut *tx)
            .await?;
    endpoints.extend(own);
    if alert.channel != "webhook" {
        // The owner and the organization's admins, once each.
        let owner: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(alert.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut to: Vec<String> = owner.into_iter().collect();
        for a in emails::admin_addresses(&mut tx, alert.org_id).await? {
            if !to.iter().any(|t| t.eq_ignore_ascii_case(&a)) {
                to.push(a);
            }
        }
        let (subject, text, html) = email();
        for addr in &to {
            emails::enqueue(
                &mut tx,
                &emails::NewEmail {
                    org_id: alert.org_id,
                    to: addr,
                    subject: &subject,
                    text: &text,
                    html: &html,
                    kind: event_type,
                    alert_event_id: Some(event_id),
                },
            )
            .await?;
        }
    }
    let key = format!("{event_type}:{event_id}");
    for endpoint_id in endpoints {
        webhooks::enqueue(
            &mut tx,
            &NewDelivery {
                org_id: alert.org_id,
                endpoint_id,
                event_id,
                event_type,
                idempotency_key: &key,
                body: &body,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some(event_id))
}
