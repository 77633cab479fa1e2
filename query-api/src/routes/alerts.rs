//! `/alerts`: alert rules of the caller's organization (list, create, read,
//! update, delete) and each one's firing history. Any member manages them
//! (`write` for changes); another organization's alert is a 404.

use crate::auth::Principal;
use crate::error::{AppResult, Json};
use crate::store::agents;
use crate::store::alerts::{self as store, AlertRule};
use crate::views::alerts::{Alert, AlertEvent, CreatedAlert};
use crate::webhooks::{signing, url_policy};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody};
use agentvista_shared::model::{AlertChannel, AlertType};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// An alert rule as a client sends it (create; an update is merged into
/// the current rule first).
#[derive(Debug, Deserialize, ToSchema)]
pub struct AlertBody {
    /// The agent to watch (one of the organization's).
    agent_id: Option<Uuid>,
    /// The service to watch: the runs and metrics whose `service.name` (the
    /// agent name of OTLP data) is this.
    target_service: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = AlertType)]
    alert_type: Option<String>,
    /// Required for every type but `composite`.
    threshold: Option<f64>,
    /// `failure_rate` / `latency_threshold` window: 5 to 1440 (default 60).
    window_minutes: Option<i64>,
    /// Runs a window needs before a rate or p95 can fire: 1 to 10000 (default 5).
    min_runs: Option<i64>,
    /// 0 to 10080 (default 60).
    cooldown_minutes: Option<i64>,
    #[schema(value_type = Option<AlertChannel>)]
    channel: Option<String>,
    /// Required for `webhook` and `both`.
    webhook_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    composite_config: Option<Value>,
    /// Default true.
    is_active: Option<bool>,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, message)
}

/// The validated rule of `body` (agent ownership is checked in ClickHouse).
async fn rule(state: &AppState, org_id: Uuid, body: AlertBody) -> AppResult<AlertRule> {
    let raw_type = body.alert_type.unwrap_or_default();
    let alert_type = AlertType::parse(&raw_type).ok_or_else(|| {
        bad(
            "type",
            format!(
                "unknown value {raw_type:?}, expected one of {}",
                AlertType::EXPECTED
            ),
        )
    })?;
    let target_service = body
        .target_service
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if target_service
        .as_ref()
        .is_some_and(|s| s.chars().count() > 256)
    {
        return Err(bad("target_service", "must be at most 256 characters").into());
    }
    if body.agent_id.is_none() && target_service.is_none() {
        return Err(bad("agent_id", "give agent_id or target_service (at least one)").into());
    }
    let agent_name = match body.agent_id {
        None => None,
        Some(id) => Some(
            agents::get(&state.0.ch, org_id, id)
                .await?
                .ok_or_else(|| ApiError::not_found("Agent"))?
                .name,
        ),
    };
    let threshold = match (alert_type, body.threshold) {
        (AlertType::Composite, t) => t,
        (_, None) => {
            return Err(bad(
                "threshold",
                format!("is required for {} alerts", alert_type.as_str()),
            )
            .into())
        }
        (_, Some(t)) if !t.is_finite() => {
            return Err(bad("threshold", "must be a finite number").into())
        }
        (AlertType::FailureRate, Some(t)) if !(0.0..=1.0).contains(&t) => {
            return Err(bad("threshold", "must be a fraction from 0.0 to 1.0").into())
        }
        (AlertType::Inactivity, Some(t)) if !(t > 0.0 && t <= 8760.0) => {
            return Err(bad("threshold", "must be more than 0 and at most 8760 hours").into())
        }
        (AlertType::CostThreshold, Some(t)) if !(0.0..=1_000_000.0).contains(&t) => {
            return Err(bad("threshold", "must be from 0 to 1000000 USD").into())
        }
        (AlertType::LatencyThreshold, Some(t)) if !(t > 0.0 && t <= 86_400_000.0) => {
            return Err(bad("threshold", "must be more than 0 and at most 86400000 ms").into())
        }
        (_, t) => t,
    };
    let ranged =
        |field: &str, v: Option<i64>, default: i64, lo: i64, hi: i64| -> Result<i32, ApiError> {
            let v = v.unwrap_or(default);
            if (lo..=hi).contains(&v) {
                Ok(v as i32)
            } else {
                Err(bad(field, format!("must be between {lo} and {hi}")))
            }
        };
    let window_minutes = ranged("window_minutes", body.window_minutes, 60, 5, 1440)?;
    let min_runs = ranged("min_runs", body.min_runs, 5, 1, 10_000)?;
    let cooldown_minutes = ranged("cooldown_minutes", body.cooldown_minutes, 60, 0, 10_080)?;
    let raw_channel = body.channel.unwrap_or_else(|| "email".into());
    let channel = AlertChannel::parse(&raw_channel).ok_or_else(|| {
        bad(
            "channel",
            format!(
                "unknown value {raw_channel:?}, expected one of {}",
                AlertChannel::EXPECTED
            ),
        )
    })?;
    let webhook_url = match body.webhook_url.filter(|u| !u.trim().is_empty()) {
        None if channel != AlertChannel::Email => {
            return Err(bad(
                "webhook_url",
                format!("is required when channel is {}", channel.as_str()),
            )
            .into())
        }
        None => None,
        Some(u) => {
            let w = &state.0.config.webhooks;
            Some(
                url_policy::check(u.trim(), w.allow_http, w.allow_private)
                    .await
                    .map_err(|m| bad("webhook_url", m))?
                    .to_string(),
            )
        }
    };
    let composite_config = match (alert_type, body.composite_config) {
        (AlertType::Composite, None) => {
            return Err(bad("composite_config", "is required for composite alerts").into())
        }
        (AlertType::Composite, Some(c)) => {
            Some(composite::check(&c).map_err(|m| bad("composite_config", m))?)
        }
        (_, _) => None,
    };
    Ok(AlertRule {
        agent_id: body.agent_id,
        agent_name,
        target_service,
        alert_type: alert_type.as_str().to_string(),
        threshold,
        window_minutes,
        min_runs,
        cooldown_minutes,
        channel: channel.as_str().to_string(),
        webhook_url,
        composite_config,
        is_active: body.is_active.unwrap_or(true),
    })
}

/// Outbound destinations (an alert's `webhook_url`, like webhook
/// endpoints) are set by the organization's admins only: a 403 otherwise.
async fn outbound_admin(state: &AppState, p: &Principal) -> Result<(), ApiError> {
    let role = crate::store::members::role_by_org(&state.0.pg, p.org_id, p.user_id)
        .await
        .map_err(|e| e.0)?;
    if role.as_deref() == Some("admin") {
        Ok(())
    } else {
        Err(ApiError::new(
            agentvista_shared::error::ErrorKind::Forbidden,
            "Only the organization's admins may set an alert's webhook_url (an outbound destination).",
        ))
    }
}

fn alert_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("Alert"))
}

/// The organization's alerts, newest first.
#[utoipa::path(operation_id = "alerts_list", get, path = "/alerts", tag = "alerts",
    responses((status = 200, body = Vec<Alert>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<Alert>>> {
    let p = principal.reader()?;
    let rows = store::list(&state.0.pg, p.org_id).await?;
    Ok(Json(rows.into_iter().map(Alert::from).collect()))
}

/// Create an alert: 201 with the alert and the secret that signs its
/// webhook deliveries (shown only here).
#[utoipa::path(operation_id = "alerts_create", post, path = "/alerts", tag = "alerts", request_body = AlertBody,
    responses((status = 201, body = CreatedAlert), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<AlertBody>,
) -> AppResult<(StatusCode, Json<CreatedAlert>)> {
    let p = principal.writer()?;
    let rule = rule(&state, p.org_id, body).await?;
    if rule.webhook_url.is_some() {
        outbound_admin(&state, &p).await?;
    }
    if store::count(&state.0.pg, p.org_id).await? >= store::MAX_ALERTS_PER_ORG {
        return Err(ApiError::new(
            agentvista_shared::error::ErrorKind::Conflict,
            format!(
                "An organization can have at most {} alerts.",
                store::MAX_ALERTS_PER_ORG
            ),
        )
        .into());
    }
    let secret = signing::new_secret();
    let alert = store::create(&state.0.pg, p.org_id, p.user_id, &rule, &secret).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAlert {
            alert: Alert::from(alert),
            webhook_secret: secret,
        }),
    ))
}

/// One alert.
#[utoipa::path(operation_id = "alerts_get", get, path = "/alerts/{alert_id}", tag = "alerts",
    params(("alert_id" = Uuid, Path, description = "The alert id")),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Alert>> {
    let p = principal.reader()?;
    let alert = store::get(&state.0.pg, p.org_id, alert_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("Alert"))?;
    Ok(Json(Alert::from(alert)))
}

/// Update an alert: the fields sent replace the current ones (`null`
/// clears an optional field), and the result is validated as a new rule.
#[utoipa::path(operation_id = "alerts_update", patch, path = "/alerts/{alert_id}", tag = "alerts",
    params(("alert_id" = Uuid, Path, description = "The alert id")), request_body = AlertBody,
    responses((status = 200, body = Alert), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(patch): Json<Map<String, Value>>,
) -> AppResult<Json<Alert>> {
    let p = principal.writer()?;
    let id = alert_id(&id)?;
    let current = store::get(&state.0.pg, p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Alert"))?;
    let mut merged = json!({
        "agent_id": current.agent_id, "target_service": current.target_service, "type": current.alert_type,
        "threshold": current.threshold, "window_minutes": current.window_minutes, "min_runs": current.min_runs,
        "cooldown_minutes": current.cooldown_minutes, "channel": current.channel,
        "webhook_url": current.webhook_url, "composite_config": current.composite_config,
        "is_active": current.is_active,
    });
    for (k, v) in patch {
        merged[k] = v;
    }
    let body: AlertBody = serde_path_to_error::deserialize(merged).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid_field(field, e.into_inner().to_string())
    })?;
    let rule = rule(&state, p.org_id, body).await?;
    if rule.webhook_url.is_some() && rule.webhook_url != current.webhook_url {
        outbound_admin(&state, &p).await?;
    }
    let alert = store::update(&state.0.pg, p.org_id, id, &rule)
        .await?
        .ok_or_else(|| ApiError::not_found("Alert"))?;
    Ok(Json(Alert::from(alert)))
}

/// Delete an alert and its history.
#[utoipa::path(operation_id = "alerts_delete", delete, path = "/alerts/{alert_id}", tag = "alerts",
    params(("alert_id" = Uuid, Path, description = "The alert id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let p = principal.writer()?;
    if store::delete(&state.0.pg, p.org_id, alert_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Alert").into())
    }
}

/// The alert's firing history, newest first (at most 200 events): fired
/// and resolved times, the observed value, the threshold, and the
/// notifications each made with their outcome.
#[utoipa::path(operation_id = "alerts_events", get, path = "/alerts/{alert_id}/events", tag = "alerts",
    params(("alert_id" = Uuid, Path, description = "The alert id")),
    responses((status = 200, body = Vec<AlertEvent>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<AlertEvent>>> {
    let p = principal.reader()?;
    let alert = store::get(&state.0.pg, p.org_id, alert_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("Alert"))?;
    let (events, deliveries) = store::events(&state.0.pg, alert.id, 200).await?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let emails = crate::store::emails::of_alert_events(&state.0.pg, &ids).await?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| AlertEvent::build(e, &deliveries, &emails))
            .collect(),
    ))
}

/// The `composite_config` schema.
pub mod composite {
    use serde_json::Value;

    /// `{"operator": "all"|"any", "conditions": [...]}` with at least one
    /// condition of each kind (at most 10 in all):
    /// - `{"kind": "ai", "metric": "failure_rate"|"p95_latency_ms"|"cost_usd"|"runs", "op": ">"|">="|"<"|"<=", "value": n}`
    ///   over the alert target's runs in its window (`cost_usd`: today UTC);
    /// - `{"kind": "infra", "metric_name": "...", "agg": "avg"|"max"|"min"|"sum"|"count"|"last", "op": ..., "value": n, "service_name"?: "..."}`
    ///   over the stored OTLP points of that metric in the window.
    ///
    /// Returns the normalized config (operator defaulted to `all`).
    pub fn check(c: &Value) -> Result<Value, String> {
        let obj = c.as_object().ok_or("must be an object")?;
        let operator = match obj.get("operator").and_then(Value::as_str).unwrap_or("all") {
            o @ ("all" | "any") => o,
            other => return Err(format!("operator {other:?} must be all or any")),
        };
        let conditions = obj
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or("needs conditions: an array of ai and infra conditions")?;
        if conditions.len() > 10 {
            return Err("at most 10 conditions".into());
        }
        let (mut ai, mut infra) = (0, 0);
        for (i, cond) in conditions.iter().enumerate() {
            let op = cond.get("op").and_then(Value::as_str).unwrap_or_default();
            if !matches!(op, ">" | ">=" | "<" | "<=") {
                return Err(format!("conditions[{i}].op must be >, >=, < or <="));
            }
            if !cond
                .get("value")
                .and_then(Value::as_f64)
                .is_some_and(f64::is_finite)
            {
                return Err(format!("conditions[{i}].value must be a number"));
            }
            match cond.get("kind").and_then(Value::as_str) {
                Some("ai") => {
                    ai += 1;
                    let m = cond
                        .get("metric")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !matches!(m, "failure_rate" | "p95_latency_ms" | "cost_usd" | "runs") {
                        return Err(format!(
                            "conditions[{i}].metric must be failure_rate, p95_latency_ms, cost_usd or runs"
                        ));
                    }
                }
                Some("infra") => {
                    infra += 1;
                    let name = cond
                        .get("metric_name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if name.is_empty() || name.len() > 256 {
                        return Err(format!("conditions[{i}].metric_name must name a metric"));
                    }
                    let agg = cond.get("agg").and_then(Value::as_str).unwrap_or("avg");
                    if !matches!(agg, "avg" | "max" | "min" | "sum" | "count" | "last") {
                        return Err(format!(
                            "conditions[{i}].agg must be avg, max, min, sum, count or last"
                        ));
                    }
                }
                _ => return Err(format!("conditions[{i}].kind must be ai or infra")),
            }
        }
        if ai == 0 || infra == 0 {
            return Err("needs at least one ai condition and one infra condition".into());
        }
        let mut out = c.clone();
        out["operator"] = Value::from(operator);
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::check;
        use serde_json::json;

        #[test]
        fn composite_configs_need_both_kinds() {
            let ok = json!({"conditions": [
                {"kind": "ai", "metric": "failure_rate", "op": ">", "value": 0.2},
                {"kind": "infra", "metric_name": "gpu.util", "agg": "avg", "op": ">=", "value": 90}]});
            assert_eq!(check(&ok).unwrap()["operator"], "all");
            assert!(check(&json!({"conditions": [ok["conditions"][0]]}))
                .unwrap_err()
                .contains("one ai condition"));
            assert!(check(&json!({"operator": "xor", "conditions": []})).is_err());
            let bad_op =
                json!({"conditions": [{"kind": "ai", "metric": "runs", "op": "==", "value": 1}]});
            assert!(check(&bad_op).unwrap_err().contains("op"));
            assert!(check(&json!([])).is_err());
        }
    }
}
