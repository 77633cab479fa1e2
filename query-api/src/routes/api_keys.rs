//! `/me/api-keys/`: list, create (raw key shown once), revoke, ping; and
//! `/org/{org_slug}/api-keys`: an organization's admins list and revoke
//! every member's keys.

use super::page_params;
use crate::auth::{AuthMethod, Principal};
use crate::error::{AppResult, Json, Query};
use crate::store::{accounts, keys};
use crate::views::keys::{ApiKey, ApiKeyPage, CreatedApiKey, MemberApiKey, Status};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody, ErrorKind};
use agentvista_shared::keys::{ALL_SCOPES, SCOPE_READ};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// From 1 (default) to 10000.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i64>,
    /// Clamped to 1..=100 (default 20).
    page_size: Option<i64>,
}

/// The caller's keys, newest first, never the raw key. A browser session
/// or JWT sees all of the user's keys; an API key only those of its own
/// organization.
#[utoipa::path(operation_id = "api_keys_list", get, path = "/me/api-keys/", tag = "api-keys", params(ListParams),
    responses((status = 200, body = ApiKeyPage), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ListParams>,
) -> AppResult<Json<ApiKeyPage>> {
    let principal = principal.reader()?;
    let (page, size) = page_params(p.page, p.page_size, 20, 100)?;
    let only_org = (principal.method == AuthMethod::ApiKey).then_some(principal.org_id);
    let (count, results) = keys::page(&state.0.pg, principal.user_id, only_org, page, size).await?;
    Ok(Json(ApiKeyPage {
        count,
        page,
        page_size: size,
        next: (page * size < count).then(|| format!("?page={}&page_size={size}", page + 1)),
        previous: (page > 1).then(|| format!("?page={}&page_size={size}", page - 1)),
        results: results.into_iter().map(ApiKey::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    /// At most 128 characters.
    name: Option<String>,
    /// Non-empty: `read` and/or `write`.
    scopes: Option<Vec<String>>,
    /// The organization of the key (the caller must be a member); default:
    /// the credential's organization.
    org_slug: Option<String>,
}

/// Create a key: 201 with the raw key in `key`, shown only here. A key may
/// mint keys only within its own scopes and organization.
#[utoipa::path(operation_id = "api_keys_create", post, path = "/me/api-keys/", tag = "api-keys", request_body = CreateBody,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateBody>,
) -> AppResult<(StatusCode, Json<CreatedApiKey>)> {
    let principal = principal.writer()?;
    let mut scopes = body.scopes.unwrap_or_default();
    if scopes.is_empty() {
        return Err(ApiError::invalid_field(
            "scopes",
            "must contain at least one valid scope (read, write)",
        )
        .into());
    }
    if let Some(bad) = scopes.iter().find(|s| !ALL_SCOPES.contains(&s.as_str())) {
        return Err(ApiError::invalid_field(
            "scopes",
            format!("unknown scope {bad:?}, expected read or write"),
        )
        .into());
    }
    scopes.sort();
    scopes.dedup();
    // A key may mint keys only within its own scopes and its own
    // organization: it can never widen what it grants (docs/API.md).
    if principal.method == AuthMethod::ApiKey {
        if let Some(extra) = scopes.iter().find(|s| !principal.scopes.contains(s)) {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("An API key cannot create a key with a scope it does not have ({extra})."),
            )
            .into());
        }
    }
    let name = body.name.unwrap_or_default().trim().to_string();
    if name.chars().count() > 128 {
        return Err(ApiError::invalid_field("name", "must be at most 128 characters").into());
    }
    let org_id = match body.org_slug.as_deref().filter(|s| !s.is_empty()) {
        None => principal.org_id,
        Some(slug) => accounts::member_org_by_slug(&state.0.pg, principal.user_id, slug)
            .await?
            .ok_or_else(|| ApiError::not_found("Organization"))?,
    };
    if principal.method == AuthMethod::ApiKey && org_id != principal.org_id {
        return Err(ApiError::not_found("Organization").into());
    }
    let (key, raw) = keys::create_api_key(
        &state.0.pg,
        &state.0.redis,
        principal.user_id,
        org_id,
        &name,
        &scopes,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: ApiKey::from(key),
            key: raw,
        }),
    ))
}

/// Revoke a key: 204; it stops working on the ingestion path within
/// seconds. 404 for another user's or an unknown key.
#[utoipa::path(operation_id = "api_keys_revoke", delete, path = "/me/api-keys/{key_id}/", tag = "api-keys",
    params(("key_id" = Uuid, Path, description = "The key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> AppResult<StatusCode> {
    let principal = principal.writer()?;
    let key_id = Uuid::parse_str(&key_id).map_err(|_| ApiError::not_found("API key"))?;
    let only_org = (principal.method == AuthMethod::ApiKey).then_some(principal.org_id);
    if keys::revoke_api_key(
        &state.0.pg,
        &state.0.redis,
        principal.user_id,
        only_org,
        key_id,
    )
    .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("API key").into())
    }
}

/// Check a credential: `{"status": "ok"}` for a valid key with `read`.
#[utoipa::path(operation_id = "api_keys_ping", get, path = "/me/api-keys/ping/", tag = "api-keys",
    responses((status = 200, body = Status), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn ping(principal: Principal) -> AppResult<Json<Status>> {
    principal.require(SCOPE_READ)?;
    Ok(Json(Status::OK))
}

/// Every key of the organization's members, with its owner (admins only;
/// at most 1,000, active first).
#[utoipa::path(operation_id = "org_api_keys_list", get, path = "/org/{org_slug}/api-keys", tag = "api-keys",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, body = Vec<MemberApiKey>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn org_list(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> AppResult<Json<Vec<MemberApiKey>>> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let rows = keys::of_org(&state.0.pg, m.org_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(k, user_id, user_email)| MemberApiKey {
                key: ApiKey::from(k),
                user_id,
                user_email,
            })
            .collect(),
    ))
}

/// Revoke any member's key of the organization (admins only): 204; it
/// stops working on the ingestion path within seconds.
#[utoipa::path(operation_id = "org_api_keys_revoke", delete, path = "/org/{org_slug}/api-keys/{key_id}", tag = "api-keys",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("key_id" = Uuid, Path, description = "The key id")),
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn org_revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, key_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let key_id = Uuid::parse_str(&key_id).map_err(|_| ApiError::not_found("API key"))?;
    if keys::revoke_in_org(&state.0.pg, &state.0.redis, m.org_id, key_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("API key").into())
    }
}
