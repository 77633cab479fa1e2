//! Organization members (PostgreSQL `memberships`): who belongs to an
//! organization and with which role. An organization always keeps at
//! least one admin: changes that would remove the last one are refused
//! under a lock on the organization's memberships. The acting admin's own
//! role is checked again under that lock, inside the change's transaction:
//! an admin demoted while their request was in flight changes nothing.
//! Removing a member deactivates the alerts they own (and their hidden
//! webhook endpoints) in the same transaction: nothing goes on notifying a
//! person who left, at a URL they chose.

use crate::error::AppResult;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A member as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredMember {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: OffsetDateTime,
}

/// The caller's membership of the organization `slug`: its id and the role.
pub async fn role_in(pg: &PgPool, slug: &str, user_id: Uuid) -> AppResult<Option<(Uuid, String)>> {
    Ok(sqlx::query_as(
        "SELECT o.id, m.role FROM organizations o JOIN memberships m ON m.org_id = o.id \
         WHERE o.slug = $1 AND m.user_id = $2",
    )
    .bind(slug)
    .bind(user_id)
    .fetch_optional(pg)
    .await?)
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at \
     FROM memberships m JOIN users u ON u.id = m.user_id";

/// The members, in the order they joined.
pub async fn list(pg: &PgPool, org_id: Uuid) -> AppResult<Vec<StoredMember>> {
    Ok(sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY m.created_at, m.user_id"
    ))
    .bind(org_id)
    .fetch_all(pg)
    .await?)
}

async fn get(
    tx: &mut sqlx::PgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<StoredMember>> {
    Ok(sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(tx)
    .await?)
}

/// Why a membership change was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No user has that email.
    NoSuchUser,
    /// Already a member (adding), or not a member (changing, removing).
    AlreadyMember,
    NotMember,
    /// The change would leave the organization without an admin.
    LastAdmin,
    /// The acting member is (no longer) an admin.
    NotAdmin,
}

/// A member's role in an organization by its id.
pub async fn role_by_org(pg: &PgPool, org_id: Uuid, user_id: Uuid) -> AppResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(pg)
            .await?,
    )
}

/// Lock the organization's memberships; `Refused::NotAdmin` unless `actor`
/// (when given) is an admin now.
async fn lock_as(
    tx: &mut sqlx::PgConnection,
    org_id: Uuid,
    actor: Option<Uuid>,
) -> AppResult<Result<Vec<(Uuid, String)>, Refused>> {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT user_id, role FROM memberships WHERE org_id = $1 FOR UPDATE")
            .bind(org_id)
            .fetch_all(tx)
            .await?;
    if let Some(actor) = actor {
        if !rows.iter().any(|(u, r)| *u == actor && r == "admin") {
            return Ok(Err(Refused::NotAdmin));
        }
    }
    Ok(Ok(rows))
}

/// Add the user with `email` to the organization with `role`, as the
/// admin `actor`.
pub async fn add(
    pg: &PgPool,
    org_id: Uuid,
    actor: Uuid,
    email: &str,
    role: &str,
) -> AppResult<Result<StoredMember, Refused>> {
    let mut tx = pg.begin().await?;
    if let Err(r) = lock_as(&mut tx, org_id, Some(actor)).await? {
        return Ok(Err(r));
    }
    let user: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((user_id,)) = user else {
        return Ok(Err(Refused::NoSuchUser));
    };
    let inserted = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Err(Refused::AlreadyMember));
    }
    let member = get(&mut tx, org_id, user_id).await?.expect("just inserted");
    tx.commit().await?;
    Ok(Ok(member))
}

/// Lock the organization's memberships (checking `actor`'s role, when
/// given) and count its admins other than `user_id` (every change that
/// could remove an admin goes through here, so two concurrent demotions
/// cannot both pass).
async fn other_admins(
    tx: &mut sqlx::PgConnection,
    org_id: Uuid,
    actor: Option<Uuid>,
    user_id: Uuid,
) -> AppResult<Result<usize, Refused>> {
    Ok(lock_as(tx, org_id, actor).await?.map(|rows| {
        rows.iter()
            .filter(|(u, r)| *u != user_id && r == "admin")
            .count()
    }))
}

/// Change a member's role, as the admin `actor`.
pub async fn set_role(
    pg: &PgPool,
    org_id: Uuid,
    actor: Uuid,
    user_id: Uuid,
    role: &str,
) -> AppResult<Result<StoredMember, Refused>> {
    let mut tx = pg.begin().await?;
    let others = match other_admins(&mut tx, org_id, Some(actor), user_id).await? {
        Ok(n) => n,
        Err(r) => return Ok(Err(r)),
    };
    let Some(current) = get(&mut tx, org_id, user_id).await? else {
        return Ok(Err(Refused::NotMember));
    };
    if current.role == "admin" && role != "admin" && others == 0 {
        return Ok(Err(Refused::LastAdmin));
    }
    sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .execute(&mut *tx)
        .await?;
    let member = get(&mut tx, org_id, user_id)
        .await?
        .expect("still a member");
    tx.commit().await?;
    Ok(Ok(member))
}

/// Remove a member, as the admin `actor` (`None`: members leaving on their
/// own). Their alerts are deactivated; their keys of the organization are
/// revoked by the caller (`store::keys::revoke_all_of`).
pub async fn remove(
    pg: &PgPool,
    org_id: Uuid,
    actor: Option<Uuid>,
    user_id: Uuid,
) -> AppResult<Result<(), Refused>> {
    let mut tx = pg.begin().await?;
    let others = match other_admins(&mut tx, org_id, actor, user_id).await? {
        Ok(n) => n,
        Err(r) => return Ok(Err(r)),
    };
    let Some(current) = get(&mut tx, org_id, user_id).await? else {
        return Ok(Err(Refused::NotMember));
    };
    if current.role == "admin" && others == 0 {
        return Ok(Err(Refused::LastAdmin));
    }
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE webhook_endpoints SET is_active = false WHERE org_id = $1 AND alert_id IN \
         (SELECT id FROM alerts WHERE org_id = $1 AND user_id = $2)",
    )
    .bind(org_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE alerts SET is_active = false, updated_at = now() WHERE org_id = $1 AND user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}
