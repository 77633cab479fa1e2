//! `/org/{org_slug}/webhooks/endpoints`: register, list, update, delete
//! endpoints, rotate a secret, read deliveries with their attempts, and
//! send a test event. Managing endpoints needs the organization's admin
//! role; any member lists endpoints and reads deliveries.

use super::page_params;
use crate::auth::{OrgMember, Principal};
use crate::error::{AppResult, Json, Query};
use crate::store::webhooks::{self as store, EndpointUpdate, NewDelivery};
use crate::views::webhooks::{
    Delivery, DeliveryPage, OutboundDestination, TestDelivery, WebhookEndpoint,
    WebhookEndpointWithSecret,
};
use crate::webhooks::{
    signing, url_policy, Envelope, EnvelopeOrg, MAX_ENDPOINTS_PER_ORG, MAX_NAME_LEN, TEST_EVENT,
};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody, ErrorKind};
use agentvista_shared::model::WebhookEventType;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

async fn checked_url(state: &AppState, raw: Option<String>) -> Result<String, ApiError> {
    let raw = raw.unwrap_or_default();
    let w = &state.0.config.webhooks;
    url_policy::check(raw.trim(), w.allow_http, w.allow_private)
        .await
        .map(|u| u.to_string())
        .map_err(|m| ApiError::invalid_field("url", m))
}

fn checked_name(raw: Option<String>) -> Result<String, ApiError> {
    let name = raw.unwrap_or_default().trim().to_string();
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::invalid_field(
            "name",
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name)
}

/// A non-empty list of known event types, deduplicated in order.
fn checked_types(raw: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        return Err(ApiError::invalid_field(
            "event_types",
            "must contain at least one event type",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        let t = WebhookEventType::parse(&t).ok_or_else(|| {
            ApiError::invalid_field(
                "event_types",
                format!(
                    "unknown event type {t:?}, expected one of {}",
                    WebhookEventType::EXPECTED
                ),
            )
        })?;
        if !out.iter().any(|o| o == t.as_str()) {
            out.push(t.as_str().to_string());
        }
    }
    Ok(out)
}

fn endpoint_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("Webhook endpoint"))
}

async fn endpoint_of(
    state: &AppState,
    m: &OrgMember,
    id: &str,
) -> AppResult<store::StoredEndpoint> {
    store::get(&state.0.pg, m.org_id, endpoint_id(id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint").into())
}

#[derive(Deserialize, ToSchema)]
pub struct CreateEndpoint {
    /// `https://` URL (at most 2048 characters) that events are POSTed to.
    url: Option<String>,
    /// A label (at most 128 characters).
    name: Option<String>,
    /// At least one of `alert.fired`, `alert.resolved`, `trace.failed`,
    /// `agent_run.completed`.
    #[schema(value_type = Vec<WebhookEventType>)]
    event_types: Option<Vec<String>>,
}

/// Register an endpoint (admins): 201 with the signing `secret`, shown
/// only here. At most 50 endpoints per organization.
#[utoipa::path(operation_id = "webhooks_create", post, path = "/org/{org_slug}/webhooks/endpoints", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    request_body = CreateEndpoint,
    responses((status = 201, body = WebhookEndpointWithSecret), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    Json(body): Json<CreateEndpoint>,
) -> AppResult<(StatusCode, Json<WebhookEndpointWithSecret>)> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let event_types = checked_types(body.event_types)?;
    let name = checked_name(body.name)?;
    let url = checked_url(&state, body.url).await?;
    if store::count(&state.0.pg, m.org_id).await? >= MAX_ENDPOINTS_PER_ORG {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("An organization can have at most {MAX_ENDPOINTS_PER_ORG} webhook endpoints."),
        )
        .into());
    }
    let secret = signing::new_secret();
    let endpoint = store::create(&state.0.pg, m.org_id, &url, &name, &event_types, &secret).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint::from(endpoint),
            secret,
        }),
    ))
}

/// The organization's endpoints, newest first, never with their secrets
/// (any member).
#[utoipa::path(operation_id = "webhooks_list", get, path = "/org/{org_slug}/webhooks/endpoints", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, body = Vec<WebhookEndpoint>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> AppResult<Json<Vec<WebhookEndpoint>>> {
    let m = principal.member_of(&state, &slug).await?.reader()?;
    let rows = store::list(&state.0.pg, m.org_id).await?;
    Ok(Json(rows.into_iter().map(WebhookEndpoint::from).collect()))
}

/// Every outbound URL of the organization: its webhook endpoints and the
/// webhook URLs of its alerts (which the endpoint list does not show).
#[utoipa::path(operation_id = "webhooks_destinations", get, path = "/org/{org_slug}/webhooks/destinations", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, body = Vec<OutboundDestination>), (status = 404, body = ErrorBody)))]
pub async fn destinations(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> AppResult<Json<Vec<OutboundDestination>>> {
    let m = principal.member_of(&state, &slug).await?.reader()?;
    let rows = store::destinations(&state.0.pg, m.org_id).await?;
    Ok(Json(
        rows.into_iter().map(OutboundDestination::from).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateEndpoint {
    url: Option<String>,
    name: Option<String>,
    /// Replaces the list.
    #[schema(value_type = Option<Vec<WebhookEventType>>)]
    event_types: Option<Vec<String>>,
    /// `true` re-enables a paused endpoint and resets
    /// `consecutive_failures`; `false` pauses it.
    is_active: Option<bool>,
}

/// Update an endpoint (admins); absent fields are unchanged.
#[utoipa::path(operation_id = "webhooks_update", patch, path = "/org/{org_slug}/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("endpoint_id" = Uuid, Path, description = "The endpoint id")),
    request_body = UpdateEndpoint,
    responses((status = 200, body = WebhookEndpoint), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
    Json(body): Json<UpdateEndpoint>,
) -> AppResult<Json<WebhookEndpoint>> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let id = endpoint_id(&id)?;
    let mut u = EndpointUpdate {
        is_active: body.is_active,
        ..Default::default()
    };
    if body.event_types.is_some() {
        u.event_types = Some(checked_types(body.event_types)?);
    }
    if body.name.is_some() {
        u.name = Some(checked_name(body.name)?);
    }
    if body.url.is_some() {
        u.url = Some(checked_url(&state, body.url).await?);
    }
    let endpoint = store::update(&state.0.pg, m.org_id, id, &u)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))?;
    Ok(Json(WebhookEndpoint::from(endpoint)))
}

/// Delete an endpoint and its delivery history (admins).
#[utoipa::path(operation_id = "webhooks_delete", delete, path = "/org/{org_slug}/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("endpoint_id" = Uuid, Path, description = "The endpoint id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    if store::delete(&state.0.pg, m.org_id, endpoint_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Webhook endpoint").into())
    }
}

/// Replace the signing secret (admins): the new `secret` is shown only
/// here, and the old one stops signing at once (attempts already running
/// finish with it).
#[utoipa::path(operation_id = "webhooks_rotate_secret", post, path = "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("endpoint_id" = Uuid, Path, description = "The endpoint id")),
    responses((status = 200, body = WebhookEndpointWithSecret), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> AppResult<Json<WebhookEndpointWithSecret>> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let secret = signing::new_secret();
    let endpoint = store::rotate(&state.0.pg, m.org_id, endpoint_id(&id)?, &secret)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))?;
    Ok(Json(WebhookEndpointWithSecret {
        endpoint: WebhookEndpoint::from(endpoint),
        secret,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// From 1 (default) to 10000.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i64>,
    /// Clamped to 1..=100 (default 20).
    page_size: Option<i64>,
    /// `pending`, `succeeded` or `failed`.
    #[param(inline, value_type = Option<DeliveryStatus>)]
    status: Option<String>,
}

/// The documented values of a delivery's `status`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

/// An endpoint's deliveries, newest first, each with every attempt (time,
/// status code or error, duration) (any member).
#[utoipa::path(operation_id = "webhooks_deliveries", get, path = "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/deliveries", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("endpoint_id" = Uuid, Path, description = "The endpoint id"), DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
    Query(p): Query<DeliveryParams>,
) -> AppResult<Json<DeliveryPage>> {
    let m = principal.member_of(&state, &slug).await?.reader()?;
    let (page, size) = page_params(p.page, p.page_size, 20, 100)?;
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s @ ("pending" | "succeeded" | "failed")) => Some(s),
        Some(other) => {
            return Err(ApiError::invalid_field(
                "status",
                format!("unknown value {other:?}, expected one of pending, succeeded, failed"),
            )
            .into())
        }
    };
    let endpoint = endpoint_of(&state, &m, &id).await?;
    let (total, rows, attempts) =
        store::deliveries(&state.0.pg, endpoint.id, status, page, size).await?;
    Ok(Json(DeliveryPage {
        total,
        page,
        page_size: size,
        has_more: page * size < total,
        deliveries: rows
            .into_iter()
            .map(|d| Delivery::build(d, &attempts))
            .collect(),
    }))
}

/// Send a `webhook.test` event to the endpoint (admins): 202 with the
/// delivery, which the dispatcher sends like any other (signed, retried,
/// listed under deliveries).
#[utoipa::path(operation_id = "webhooks_test", post, path = "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/test", tag = "webhooks",
    params(("org_slug" = String, Path, description = "The organization's slug"),
           ("endpoint_id" = Uuid, Path, description = "The endpoint id")),
    responses((status = 202, body = TestDelivery), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> AppResult<(StatusCode, Json<TestDelivery>)> {
    let m = principal.member_of(&state, &slug).await?.admin()?;
    let endpoint = endpoint_of(&state, &m, &id).await?;
    let event_id = Uuid::now_v7();
    let body = Envelope {
        id: event_id,
        event_type: TEST_EVENT.to_string(),
        created_at: agentvista_shared::time_fmt::format(time::OffsetDateTime::now_utc()),
        organization: EnvelopeOrg {
            id: m.org_id,
            slug: m.slug.clone(),
        },
        data: serde_json::json!({"endpoint_id": endpoint.id, "message": "A test event from AgentVista."}),
    }
    .to_body();
    let key = format!("{TEST_EVENT}:{event_id}");
    let mut tx = state.0.pg.begin().await?;
    let delivery_id = store::enqueue(
        &mut tx,
        &NewDelivery {
            org_id: m.org_id,
            endpoint_id: endpoint.id,
            event_id,
            event_type: TEST_EVENT,
            idempotency_key: &key,
            body: &body,
        },
    )
    .await?
    .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestDelivery {
            delivery_id,
            event_id,
            event_type: TEST_EVENT,
        }),
    ))
}
