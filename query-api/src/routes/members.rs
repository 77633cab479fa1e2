//! `/org/{org_slug}/members`: who belongs to an organization and with which
//! role. Any member lists; admins add existing users by email, change
//! roles and remove members; an organization always keeps one admin.

use crate::auth::Principal;
use crate::error::{AppResult, Json};
use crate::store::{keys, members};
use crate::views::members::Member;
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody, ErrorKind};
use agentvista_shared::model::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

fn role(v: Option<String>) -> Result<Role, ApiError> {
    let v = v.unwrap_or_default();
    Role::parse(&v).ok_or_else(|| {
        ApiError::invalid_field(
            "role",
            format!("unknown value {v:?}, expected one of {}", Role::EXPECTED),
        )
    })
}

fn refused(r: members::Refused) -> ApiError {
    match r {
        members::Refused::NoSuchUser => ApiError::not_found("User"),
        members::Refused::NotMember => ApiError::not_found("Member"),
        members::Refused::AlreadyMember => ApiError::new(
            ErrorKind::Conflict,
            "The user is already a member of the organization.",
        ),
        members::Refused::LastAdmin => ApiError::new(
            ErrorKind::Conflict,
            "The organization must keep at least one admin.",
        ),
        members::Refused::NotAdmin => ApiError::new(
            ErrorKind::Forbidden,
            "This action requires the admin role in the organization.",
        ),
    }
}

fn member_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("Member"))
}

/// The organization's members, in the order they joined (any member).
#[utoipa::path(operation_id = "members_list", get, path = "/org/{org_slug}/members", tag = "members",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, body = Vec<Member>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> AppResult<Json<Vec<Member>>> {
    let m = principal.member_of(&state, &slug).await?.reader()?;
    let rows = members::list(&state.0.pg, m.org_id).await?;
    Ok(Json(rows.into_iter().map(Member::from).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct AddMember {
    /// The email of an existing user.
    email: Option<String>,
    /// `admin` or `member`.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// Add an existing user by email (admins). 404 when no user has the
/// email; 409 when they are already a member.
#[utoipa::path(operation_id = "members_add", post, path = "/org/{org_slug}/members", tag = "members",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    request_body = AddMember,
    responses((status = 201, body = Member), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    Json(body): Json<AddMember>,
) -> AppResult<(StatusCode, Json<Member>)> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let email = body.email.unwrap_or_default().trim().to_string();
    if email.is_empty() || email.len() > 254 {
        return Err(
            ApiError::invalid_field("email", "must be the email of an existing user").into(),
        );
    }
    let role = role(body.role)?;
    let added = members::add(
        &state.0.pg,
        m.org_id,
        m.principal.user_id,
        &email,
        role.as_str(),
    )
    .await?
    .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(Member::from(added))))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangeRole {
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// Change a member's role (admins). Demoting the last admin is a 409.
#[utoipa::path(operation_id = "members_change_role", patch, path = "/org/{org_slug}/members/{user_id}", tag = "members",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("user_id" = Uuid, Path, description = "The member's user id")),
    request_body = ChangeRole,
    responses((status = 200, body = Member), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn change_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, user_id)): Path<(String, String)>,
    Json(body): Json<ChangeRole>,
) -> AppResult<Json<Member>> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let user_id = member_id(&user_id)?;
    let role = role(body.role)?;
    let changed = members::set_role(
        &state.0.pg,
        m.org_id,
        m.principal.user_id,
        user_id,
        role.as_str(),
    )
    .await?
    .map_err(refused)?;
    Ok(Json(Member::from(changed)))
}

/// Remove a member (admins; any member may remove themselves). Their API
/// keys of the organization are revoked with them. Removing the last
/// admin is a 409.
#[utoipa::path(operation_id = "members_remove", delete, path = "/org/{org_slug}/members/{user_id}", tag = "members",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("user_id" = Uuid, Path, description = "The member's user id")),
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, user_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let m = principal.member_of(&state, &slug).await?;
    let user_id = member_id(&user_id)?;
    let (m, actor) = if user_id == m.principal.user_id {
        m.principal.require(agentvista_shared::keys::SCOPE_WRITE)?;
        (m, None)
    } else {
        let m = m.admin()?;
        let actor = m.principal.user_id;
        (m, Some(actor))
    };
    members::remove(&state.0.pg, m.org_id, actor, user_id)
        .await?
        .map_err(refused)?;
    keys::revoke_all_of(&state.0.pg, &state.0.redis, user_id, m.org_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
