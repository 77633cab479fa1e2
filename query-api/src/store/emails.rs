//! The email outbox (PostgreSQL `emails`): queued in the transaction of
//! what caused them, taken by one sender at a time (`SKIP LOCKED`), retried
//! with backoff up to 5 attempts.

use crate::error::AppResult;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;
use uuid::Uuid;

/// Attempts per email.
pub const MAX_ATTEMPTS: i32 = 5;

/// A message to queue.
pub struct NewEmail<'a> {
    pub org_id: Uuid,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub kind: &'a str,
    pub alert_event_id: Option<Uuid>,
}

pub async fn enqueue(tx: &mut Transaction<'_, Postgres>, e: &NewEmail<'_>) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO emails (id, org_id, to_addr, subject, body_text, body_html, kind, alert_event_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(e.org_id)
    .bind(e.to)
    .bind(e.subject)
    .bind(e.text)
    .bind(e.html)
    .bind(e.kind)
    .bind(e.alert_event_id)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// The email addresses of an organization's admins.
pub async fn admin_addresses(
    tx: &mut Transaction<'_, Postgres>,
    org_id: Uuid,
) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.role = 'admin' ORDER BY m.created_at",
    )
    .bind(org_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// A queued email as the sender reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct DueEmail {
    pub id: Uuid,
    pub to_addr: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i32,
}

/// Take the next due email: locked (`SKIP LOCKED`) in `tx` until the
/// sender records its outcome and commits.
pub async fn next_due(tx: &mut Transaction<'_, Postgres>) -> AppResult<Option<DueEmail>> {
    Ok(sqlx::query_as(
        "SELECT id, to_addr, subject, body_text, body_html, attempts FROM emails \
         WHERE status = 'pending' AND next_attempt_at <= now() \
         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Record one attempt: sent, retried after `retry_in`, or failed for good.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    attempts: i32,
    error: Option<&str>,
    retry_in: Duration,
) -> AppResult<()> {
    let status = match error {
        None => "sent",
        Some(_) if attempts >= MAX_ATTEMPTS => "failed",
        Some(_) => "pending",
    };
    sqlx::query(
        "UPDATE emails SET status = $2, attempts = $3, last_error = $4, \
           sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE NULL END, \
           next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(attempts)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The emails an alert event made: (event id, email id, recipient, status, attempts).
pub async fn of_alert_events(
    pg: &PgPool,
    events: &[Uuid],
) -> AppResult<Vec<(Uuid, Uuid, String, String, i32)>> {
    Ok(sqlx::query_as(
        "SELECT alert_event_id, id, to_addr, status, attempts FROM emails \
         WHERE alert_event_id = ANY($1) ORDER BY created_at",
    )
    .bind(events)
    .fetch_all(pg)
    .await?)
}
