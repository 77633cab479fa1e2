//! Webhook endpoints, the delivery outbox and its attempts (PostgreSQL).
//!
//! A delivery is created in the same transaction as the decision to send
//! it (the event consumer's, or a test request's) and is unique per
//! (endpoint, idempotency key), so a redelivered decision creates nothing
//! new. Dispatchers take an endpoint (a lease on its row, `SKIP LOCKED`),
//! then send its due deliveries in creation order; a dispatcher that dies
//! leaves the lease to expire and the deliveries pending.

use crate::error::AppResult;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// An endpoint as read back (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEndpoint {
    pub id: Uuid,
    pub url: String,
    pub name: String,
    pub event_types: Vec<String>,
    pub is_active: bool,
    pub consecutive_failures: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, name, event_types, is_active, consecutive_failures, created_at, updated_at";

pub async fn count(pg: &PgPool, org_id: Uuid) -> AppResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM webhook_endpoints WHERE org_id = $1 AND alert_id IS NULL",
    )
    .bind(org_id)
    .fetch_one(pg)
    .await?)
}

pub async fn create(
    pg: &PgPool,
    org_id: Uuid,
    url: &str,
    name: &str,
    event_types: &[String],
    secret: &str,
) -> AppResult<StoredEndpoint> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (id, org_id, url, name, event_types, secret) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(url)
    .bind(name)
    .bind(event_types)
    .bind(secret)
    .fetch_one(pg)
    .await?)
}

/// The organization's endpoints, newest first.
pub async fn list(pg: &PgPool, org_id: Uuid) -> AppResult<Vec<StoredEndpoint>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND alert_id IS NULL \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .fetch_all(pg)
    .await?)
}

/// One URL the organization's data is sent to.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredDestination {
    pub source: String,
    pub id: Uuid,
    pub url: String,
    pub is_active: bool,
    pub owner_user_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// Every outbound URL of the organization: its webhook endpoints and its
/// alerts' webhook URLs, newest first.
pub async fn destinations(pg: &PgPool, org_id: Uuid) -> AppResult<Vec<StoredDestination>> {
    Ok(sqlx::query_as(
        "SELECT 'webhook_endpoint' AS source, id, url, is_active, NULL::uuid AS owner_user_id, created_at \
           FROM webhook_endpoints WHERE org_id = $1 AND alert_id IS NULL \
         UNION ALL \
         SELECT 'alert', id, webhook_url, is_active, user_id, created_at \
           FROM alerts WHERE org_id = $1 AND webhook_url IS NOT NULL \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(org_id)
    .fetch_all(pg)
    .await?)
}

pub async fn get(pg: &PgPool, org_id: Uuid, id: Uuid) -> AppResult<Option<StoredEndpoint>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND id = $2 AND alert_id IS NULL"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(pg)
    .await?)
}

/// A change to an endpoint; `None` keeps the value.
#[derive(Debug, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub name: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// Apply `update`; `is_active: true` also resets `consecutive_failures`
/// (closing the circuit breaker) and makes the endpoint's pending
/// deliveries due at once (the receiver was presumably fixed).
pub async fn update(
    pg: &PgPool,
    org_id: Uuid,
    id: Uuid,
    u: &EndpointUpdate,
) -> AppResult<Option<StoredEndpoint>> {
    let mut tx = pg.begin().await?;
    let updated: Option<StoredEndpoint> = sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET \
           url = COALESCE($3, url), name = COALESCE($4, name), \
           event_types = COALESCE($5, event_types), is_active = COALESCE($6, is_active), \
           consecutive_failures = CASE WHEN $6 THEN 0 ELSE consecutive_failures END, \
           failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END, \
           updated_at = now() \
         WHERE org_id = $1 AND id = $2 AND alert_id IS NULL RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(org_id)
    .bind(id)
    .bind(&u.url)
    .bind(&u.name)
    .bind(&u.event_types)
    .bind(u.is_active)
    .fetch_optional(&mut *tx)
    .await?;
    if updated.is_some() && u.is_active == Some(true) {
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = now() \
             WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at > now()",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(updated)
}

pub async fn delete(pg: &PgPool, org_id: Uuid, id: Uuid) -> AppResult<bool> {
    Ok(sqlx::query(
        "DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2 AND alert_id IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .execute(pg)
    .await?
    .rows_affected()
        > 0)
}

/// Replace the signing secret: attempts from now on are signed with the
/// new one only.
pub async fn rotate(
    pg: &PgPool,
    org_id: Uuid,
    id: Uuid,
    secret: &str,
) -> AppResult<Option<StoredEndpoint>> {
    Ok(sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET secret = $3, updated_at = now() \
         WHERE org_id = $1 AND id = $2 AND alert_id IS NULL RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(org_id)
    .bind(id)
    .bind(secret)
    .fetch_optional(pg)
    .await?)
}

/// The active endpoints of an organization subscribed to `event_type`.
pub async fn subscribers(
    tx: &mut Transaction<'_, Postgres>,
    org_id: Uuid,
    event_type: &str,
) -> AppResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM webhook_endpoints WHERE org_id = $1 AND is_active AND $2 = ANY(event_types) \
           AND alert_id IS NULL ORDER BY id",
    )
    .bind(org_id)
    .bind(event_type)
    .fetch_all(&mut **tx)
    .await?)
}

/// A delivery to create (the outbox row).
pub struct NewDelivery<'a> {
    pub org_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub idempotency_key: &'a str,
    pub body: &'a str,
}

/// Create the delivery unless the endpoint already has one for its
/// idempotency key; returns the new delivery's id.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    d: &NewDelivery<'_>,
) -> AppResult<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, idempotency_key, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (endpoint_id, idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(d.org_id)
    .bind(d.endpoint_id)
    .bind(d.event_id)
    .bind(d.event_type)
    .bind(d.idempotency_key)
    .bind(d.body)
    .fetch_optional(&mut **tx)
    .await?)
}

/// A delivery as read back, with its attempts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredDelivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAttempt {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub attempted_at: OffsetDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One page of an endpoint's deliveries, newest first, with the total and
/// every attempt of the page's deliveries.
pub async fn deliveries(
    pg: &PgPool,
    endpoint_id: Uuid,
    status: Option<&str>,
    page: i64,
    size: i64,
) -> AppResult<(i64, Vec<StoredDelivery>, Vec<StoredAttempt>)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)",
    )
    .bind(endpoint_id)
    .bind(status)
    .fetch_one(pg)
    .await?;
    let rows: Vec<StoredDelivery> = sqlx::query_as(
        "SELECT id, event_id, event_type, status, attempts, next_attempt_at, created_at, completed_at \
         FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
    )
    .bind(endpoint_id)
    .bind(status)
    .bind(size)
    .bind((page - 1) * size)
    .fetch_all(pg)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
    let attempts: Vec<StoredAttempt> = sqlx::query_as(
        "SELECT delivery_id, attempt, attempted_at, status_code, error, duration_ms \
         FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
    )
    .bind(&ids)
    .fetch_all(pg)
    .await?;
    Ok((total, rows, attempts))
}

/// An endpoint taken by a dispatcher.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeasedEndpoint {
    pub id: Uuid,
    pub url: String,
    pub secret: String,
}

/// Take up to `limit` active endpoints that have a due pending delivery
/// and no live lease, leasing each for `lease`.
pub async fn lease_endpoints(
    pg: &PgPool,
    limit: i64,
    lease: Duration,
) -> AppResult<Vec<LeasedEndpoint>> {
    Ok(sqlx::query_as(
        "UPDATE webhook_endpoints SET lease_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
           SELECT e.id FROM webhook_endpoints e \
           WHERE e.is_active AND (e.lease_until IS NULL OR e.lease_until < now()) \
             AND EXISTS (SELECT 1 FROM webhook_deliveries d \
                         WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()) \
           ORDER BY e.lease_until NULLS FIRST LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, url, secret",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pg)
    .await?)
}

/// Extend the lease (before each attempt); `false` when the endpoint was
/// deleted or paused meanwhile.
pub async fn renew(
    pg: &PgPool,
    endpoint_id: Uuid,
    lease: Duration,
) -> AppResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "UPDATE webhook_endpoints SET lease_until = now() + make_interval(secs => $2) \
         WHERE id = $1 AND is_active RETURNING url, secret",
    )
    .bind(endpoint_id)
    .bind(lease.as_secs_f64())
    .fetch_optional(pg)
    .await?)
}

pub async fn release(pg: &PgPool, endpoint_id: Uuid) -> AppResult<()> {
    sqlx::query("UPDATE webhook_endpoints SET lease_until = NULL WHERE id = $1")
        .bind(endpoint_id)
        .execute(pg)
        .await?;
    Ok(())
}

/// The endpoint's pending deliveries that are due now, oldest first. Each
/// delivery is retried on its own schedule: one that keeps failing never
/// holds the endpoint's later deliveries back (ordering is not promised;
/// every event carries its `created_at`).
pub async fn due(
    pg: &PgPool,
    endpoint_id: Uuid,
    limit: i64,
) -> AppResult<Vec<(Uuid, String, i32)>> {
    Ok(sqlx::query_as(
        "SELECT id, body, attempts FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at <= now() \
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(pg)
    .await?)
}

/// Record deliveries that succeeded on their attempt `n`, in one
/// transaction, and reset the endpoint's failures.
pub async fn record_successes(
    pg: &PgPool,
    endpoint_id: Uuid,
    done: &[(Uuid, i32, AttemptOutcome)],
) -> AppResult<()> {
    if done.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = done.iter().map(|d| d.0).collect();
    let attempts: Vec<i32> = done.iter().map(|d| d.1).collect();
    let at: Vec<OffsetDateTime> = done.iter().map(|d| d.2.attempted_at).collect();
    let codes: Vec<Option<i32>> = done.iter().map(|d| d.2.status_code).collect();
    let ms: Vec<i32> = done.iter().map(|d| d.2.duration_ms).collect();
    let mut tx = pg.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, duration_ms) \
         SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::timestamptz[], $4::int[], $5::int[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&at)
    .bind(&codes)
    .bind(&ms)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries d SET status = 'succeeded', attempts = a.n, completed_at = now() \
         FROM UNNEST($1::uuid[], $2::int[]) AS a(id, n) WHERE d.id = a.id",
    )
    .bind(&ids)
    .bind(&attempts)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL WHERE id = $1 AND consecutive_failures <> 0")
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The outcome of one attempt.
pub struct AttemptOutcome {
    pub attempted_at: OffsetDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub success: bool,
}

/// What recording an attempt did to the endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    /// Retried at the given time.
    Retry,
    /// The last attempt failed: the delivery is `failed`.
    GaveUp,
}

/// When an endpoint's failures pause it (`AV_WEBHOOK_BREAKER_*`).
#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    pub threshold: i32,
    pub window: Duration,
}

/// Record an attempt and move the delivery and the endpoint on, in one
/// transaction: success ends the delivery and resets the endpoint's
/// failures; a failure schedules the next attempt (`retry_in`) or ends the
/// delivery as failed after `max_attempts`, and counts against the
/// endpoint, pausing it at `breaker.threshold` consecutive failures that
/// span at least `breaker.window`. Returns what happened and whether the
/// breaker tripped now.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    pg: &PgPool,
    endpoint_id: Uuid,
    delivery_id: Uuid,
    attempt: i32,
    o: &AttemptOutcome,
    retry_in: Duration,
    max_attempts: i32,
    breaker: Breaker,
) -> AppResult<(AfterAttempt, bool)> {
    let mut tx = pg.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(delivery_id)
    .bind(attempt)
    .bind(o.attempted_at)
    .bind(o.status_code)
    .bind(&o.error)
    .bind(o.duration_ms)
    .execute(&mut *tx)
    .await?;
    let after = if o.success {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'succeeded', attempts = $2, completed_at = now() WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL WHERE id = $1",
        )
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await?;
        AfterAttempt::Delivered
    } else if attempt >= max_attempts {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = $2, completed_at = now() WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        AfterAttempt::GaveUp
    } else {
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = $2, next_attempt_at = now() + make_interval(secs => $3) \
             WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(attempt)
        .bind(retry_in.as_secs_f64())
        .execute(&mut *tx)
        .await?;
        AfterAttempt::Retry
    };
    let mut tripped = false;
    if !o.success {
        // The streak's length and age under the row's lock: a pass may
        // trip the breaker once, whoever records the failure.
        let (failures, streak_secs, was_active): (i32, f64, bool) = sqlx::query_as(
            "SELECT consecutive_failures + 1, \
               EXTRACT(EPOCH FROM now() - COALESCE(failing_since, now()))::float8, is_active \
             FROM webhook_endpoints WHERE id = $1 FOR UPDATE",
        )
        .bind(endpoint_id)
        .fetch_one(&mut *tx)
        .await?;
        let trip = was_active
            && failures >= breaker.threshold
            && streak_secs >= breaker.window.as_secs_f64();
        let (active, org_id, url): (bool, Uuid, String) = sqlx::query_as(
            "UPDATE webhook_endpoints SET consecutive_failures = $2, \
               failing_since = COALESCE(failing_since, now()), is_active = is_active AND NOT $3 \
             WHERE id = $1 RETURNING is_active, org_id, url",
        )
        .bind(endpoint_id)
        .bind(failures)
        .bind(trip)
        .fetch_one(&mut *tx)
        .await?;
        tripped = trip && !active;
        if tripped {
            // The pause and the admins' notice commit together.
            notify_admins_in(
                &mut tx,
                org_id,
                "webhook.endpoint_paused",
                "A webhook endpoint was paused",
                &format!(
                    "The endpoint {endpoint_id} ({url}) failed {failures} delivery attempts in a row and was paused. \
                     Fix the receiver, then re-enable it (PATCH is_active: true)."
                ),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok((after, tripped))
}

/// Record a notification owed to the organization's admins, and queue it
/// as an email to each of them, in `tx`.
pub async fn notify_admins_in(
    tx: &mut Transaction<'_, Postgres>,
    org_id: Uuid,
    kind: &str,
    subject: &str,
    body: &str,
) -> AppResult<()> {
    let html = format!("<p>{}</p>", crate::email::escape(body));
    for to in crate::store::emails::admin_addresses(tx, org_id).await? {
        crate::store::emails::enqueue(
            tx,
            &crate::store::emails::NewEmail {
                org_id,
                to: &to,
                subject,
                text: body,
                html: &html,
                kind,
                alert_event_id: None,
            },
        )
        .await?;
    }
    sqlx::query(
        "INSERT INTO admin_notifications (id, org_id, kind, subject, body) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(kind)
    .bind(subject)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Pending deliveries (all organizations), for `/metrics`.
pub async fn queue_depth(pg: &PgPool) -> AppResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .fetch_one(pg)
            .await?,
    )
}
