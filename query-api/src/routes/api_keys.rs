//! `/me/api-keys/`: list, create (raw key shown once), revoke, ping.

use super::page_params;
use crate::auth::{AuthMethod, Principal};
use crate::control::{self, ApiKeyView, KEY_VIEW_COLUMNS};
use crate::error::{AppResult, Json, Query};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::keys::{ALL_SCOPES, SCOPE_READ};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct ListParams {
    page: Option<i64>,
    page_size: Option<i64>,
}

/// `GET /me/api-keys/`: the caller's keys, newest first, never the raw key.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ListParams>,
) -> AppResult<Json<serde_json::Value>> {
    let principal = principal.reader()?;
    let (page, size) = page_params(p.page, p.page_size, 20, 100)?;
    // A browser session or JWT sees all of the user's keys; an API key
    // only those of its own organization.
    let only_org: Option<Uuid> =
        (principal.method == AuthMethod::ApiKey).then_some(principal.org_id);
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM api_keys WHERE user_id = $1 AND ($2::uuid IS NULL OR org_id = $2)",
    )
    .bind(principal.user_id)
    .bind(only_org)
    .fetch_one(&state.0.pg)
    .await?;
    let results: Vec<ApiKeyView> = sqlx::query_as(&format!(
        "SELECT {KEY_VIEW_COLUMNS} FROM api_keys k JOIN organizations o ON o.id = k.org_id \
         WHERE k.user_id = $1 AND ($4::uuid IS NULL OR k.org_id = $4) \
         ORDER BY k.created_at DESC, k.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(principal.user_id)
    .bind(size)
    .bind((page - 1) * size)
    .bind(only_org)
    .fetch_all(&state.0.pg)
    .await?;
    let has_next = page * size < count;
    Ok(Json(json!({
        "count": count,
        "page": page,
        "page_size": size,
        "next": has_next.then(|| format!("?page={}&page_size={size}", page + 1)),
        "previous": (page > 1).then(|| format!("?page={}&page_size={size}", page - 1)),
        "results": results,
    })))
}

#[derive(Deserialize)]
pub struct CreateBody {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    org_slug: Option<String>,
}

/// `POST /me/api-keys/`: 201 with the raw key in `key`, shown only here.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateBody>,
) -> AppResult<Response> {
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
        Some(slug) => {
            let org: Option<(Uuid,)> = sqlx::query_as(
                "SELECT o.id FROM organizations o JOIN memberships m ON m.org_id = o.id \
                 WHERE o.slug = $1 AND m.user_id = $2",
            )
            .bind(slug)
            .bind(principal.user_id)
            .fetch_optional(&state.0.pg)
            .await?;
            org.ok_or_else(|| ApiError::not_found("Organization"))?.0
        }
    };
    if principal.method == AuthMethod::ApiKey && org_id != principal.org_id {
        return Err(ApiError::not_found("Organization").into());
    }
    let (view, raw) = control::create_api_key(
        &state.0.pg,
        &state.0.redis,
        principal.user_id,
        org_id,
        &name,
        &scopes,
    )
    .await?;
    let mut body = serde_json::to_value(&view).expect("key views serialize");
    body["key"] = json!(raw);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /me/api-keys/{key_id}/`: 204; the key stops working on the
/// ingestion path within seconds. 404 for another user's or unknown key.
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> AppResult<StatusCode> {
    let principal = principal.writer()?;
    let key_id = Uuid::parse_str(&key_id).map_err(|_| ApiError::not_found("API key"))?;
    let only_org = (principal.method == AuthMethod::ApiKey).then_some(principal.org_id);
    if control::revoke_api_key(
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

/// `GET /me/api-keys/ping/`: `{"status": "ok"}` for a valid key with `read`.
pub async fn ping(principal: Principal) -> AppResult<Json<serde_json::Value>> {
    principal.require(SCOPE_READ)?;
    Ok(Json(json!({"status": "ok"})))
}
