//! Every route of the query API, in one place. Paths that the contract
//! writes with a trailing slash answer with and without it.

use crate::error::AppError;
use crate::routes::{
    agents, alerts, api_keys, auth, health, logs, members, metrics, prompts, traces, usage,
    webhooks,
};
use crate::AppState;
use agentvista_shared::error::ApiError;
use axum::routing::get;
use axum::Router;
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

/// The document's frame: title, server, security schemes, tags. The paths
/// and schemas come from the handlers (`#[utoipa::path]`) and response
/// types (`views`); the ingestion routes from the gateway crate.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "AgentVista API",
        version = "1.0.0",
        description = "Ingestion (gateway) and dashboard (query API) routes under /api/v1. \
            See docs/API.md for behaviour and decisions. OTLP routes are also served at \
            /v1/{traces,metrics,logs} on the server root. Generated from the code: \
            `scripts/openapi` rewrites docs/openapi.json."
    ),
    servers((url = "/api/v1")),
    modifiers(&SecuritySchemes),
    security(("apiKey" = []), ("session" = [])),
    tags(
        (name = "ingestion", description = "SDK batches and OTLP/HTTP export (the ingest gateway)"),
        (name = "auth", description = "Sign-up, login, sessions"),
        (name = "api-keys", description = "The caller's API keys"),
        (name = "agents", description = "Agents and their statistics"),
        (name = "traces", description = "Runs, span trees, outcomes, comparisons"),
        (name = "metrics", description = "OTLP metrics"),
        (name = "logs", description = "OTLP logs"),
        (name = "members", description = "Organization members and roles"),
        (name = "prompts", description = "Prompt versions, runtime fetch, usage links and per-version analytics"),
        (name = "alerts", description = "Alert rules and their firing history"),
        (name = "webhooks", description = "Signed, retried event delivery to your endpoints"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("An `av_` API key, or a JWT from /auth/login".to_string());
        components.add_security_scheme("apiKey", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// Register a documented route, and the same handlers at its path with
/// the trailing slash toggled (clients write both; the contract spells
/// some paths with one).
fn route(r: OpenApiRouter<AppState>, m: UtoipaMethodRouter<AppState>) -> OpenApiRouter<AppState> {
    let (schemas, paths, method) = m;
    let aliases: Vec<String> = paths
        .paths
        .keys()
        .map(|p| match p.strip_suffix('/') {
            Some(bare) => bare.to_string(),
            None => format!("{p}/"),
        })
        .collect();
    let mut r = r.routes((schemas, paths, method.clone()));
    for alias in aliases {
        r = r.route(&alias, method.clone());
    }
    r
}

/// Every documented route of the query API, under `/api/v1`: the route
/// table and the OpenAPI paths are this one list.
fn api() -> OpenApiRouter<AppState> {
    // The routes that read ClickHouse, behind the read slots.
    let mut telemetry = OpenApiRouter::new();
    for m in [
        routes!(agents::list),
        routes!(agents::daily),
        routes!(agents::detail),
        routes!(agents::stats),
        routes!(agents::runs),
        routes!(traces::list),
        routes!(traces::compare),
        routes!(traces::detail, traces::patch),
        routes!(metrics::streams),
        routes!(metrics::query),
        routes!(logs::search),
        routes!(prompts::compare),
        routes!(prompts::usage),
    ] {
        telemetry = route(telemetry, m);
    }
    let telemetry = telemetry.route_layer(axum::middleware::from_fn(limit_reads));
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    for m in [
        routes!(auth::signup),
        routes!(auth::login),
        routes!(auth::logout),
        routes!(auth::me),
        routes!(auth::change_password),
        routes!(auth::sessions, auth::end_sessions),
        routes!(auth::end_session),
        routes!(api_keys::list, api_keys::create),
        routes!(api_keys::ping),
        routes!(api_keys::revoke),
        routes!(api_keys::org_list),
        routes!(api_keys::org_revoke),
        routes!(openapi_json),
        routes!(members::list, members::add),
        routes!(members::change_role, members::remove),
        routes!(usage::usage),
        routes!(webhooks::create, webhooks::list),
        routes!(webhooks::update, webhooks::delete),
        routes!(webhooks::rotate_secret),
        routes!(webhooks::destinations),
        routes!(webhooks::deliveries),
        routes!(webhooks::test),
        routes!(alerts::list, alerts::create),
        routes!(alerts::get, alerts::update, alerts::delete),
        routes!(alerts::events),
        routes!(prompts::list, prompts::create),
        routes!(prompts::get),
        routes!(prompts::versions),
        routes!(prompts::activate),
    ] {
        api = route(api, m);
    }
    api.merge(telemetry)
}

/// The query API's part of the OpenAPI document, generated from the code
/// (the served and checked-in document adds the gateway's routes:
/// [`ingest_gateway::openapi`]-style, merged by `scripts/openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// Every route of the query API as (method, path under `/api/v1`), from
/// the generated document.
pub static ROUTES: LazyLock<Vec<(String, String)>> = LazyLock::new(|| paths_of(&openapi()));

/// (METHOD, path) of every operation of a document.
pub use agentvista_shared::openapi::operations as paths_of;

/// The OpenAPI 3 document of the whole API (ingestion and dashboard), as
/// checked in by `scripts/openapi` (a test keeps it equal to the code's).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// This document: every route of the ingestion gateway and the query API.
#[utoipa::path(operation_id = "openapi_json", get, path = "/openapi.json", tag = "meta", security(),
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    let read_slots = state.clone();
    let main = Router::new().nest("/api/v1", api);
    // Health and metrics here, or (with AV_QUERY_INTERNAL_LISTEN) only on
    // the internal listener and a JSON 404 here, not the dashboard.
    let main = if state.0.config.internal_listen.is_none() {
        main.merge(ops_routes())
    } else {
        let gone = || async { AppError::from(ApiError::not_found("Route")) };
        main.route("/healthz", get(gone))
            .route("/metrics", get(gone))
            .route("/readyz", get(gone))
    };
    main.fallback(web_or_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::security::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record))
        // gzip or zstd for clients that ask (a 10,000-span trace is
        // megabytes of JSON).
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .zstd(true),
        )
        .layer(axum::Extension(read_slots))
        .with_state(state)
}

fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics_text))
        .route("/readyz", get(health::readyz))
}

/// The internal listener's router (`AV_QUERY_INTERNAL_LISTEN`): health,
/// readiness and metrics only.
pub fn ops(state: AppState) -> Router {
    ops_routes().with_state(state)
}

/// At most `AV_QUERY_MAX_READS` telemetry reads at once per replica, so
/// that dashboards polling hard cannot take every ClickHouse query slot
/// (the writers' inserts need some). A read waits up to
/// `AV_QUERY_READ_WAIT_MS` for a slot, then gets 503 with `Retry-After`.
async fn limit_reads(
    axum::Extension(state): axum::Extension<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let wait = state.0.config.read_wait;
    match tokio::time::timeout(wait, state.0.read_slots.acquire()).await {
        Ok(Ok(_slot)) => next.run(req).await,
        _ => AppError(ApiError::unavailable(
            "Too many dashboard reads are in progress; retry shortly.",
        ))
        .into_response(),
    }
}

/// Count every request by matched route template (never the raw path).
async fn record(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().to_string();
    let resp = next.run(req).await;
    state
        .0
        .metrics
        .record(&route, &method, resp.status().as_u16(), started.elapsed());
    resp
}

/// `GET /metrics`: Prometheus text. Scrape it inside the cluster; the
/// routers in `deploy/` do not expose it.
async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        {
            let app = &state.0;
            let w = &app.webhook_metrics;
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            let depth = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                crate::store::webhooks::queue_depth(&app.pg),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .map_or(0, |d| u64::try_from(d).unwrap_or(0));
            app.metrics.render(
                "av_query",
                &[
                    (
                        "av_query_webhook_deliveries_succeeded_total",
                        "counter",
                        load(&w.succeeded),
                    ),
                    (
                        "av_query_webhook_attempts_failed_total",
                        "counter",
                        load(&w.failed_attempts),
                    ),
                    (
                        "av_query_webhook_deliveries_failed_total",
                        "counter",
                        load(&w.gave_up),
                    ),
                    (
                        "av_query_webhook_breaker_trips_total",
                        "counter",
                        load(&w.breaker_trips),
                    ),
                    (
                        "av_query_webhook_attempts_total",
                        "counter",
                        load(&w.attempts),
                    ),
                    (
                        "av_query_webhook_attempt_duration_ms_sum",
                        "counter",
                        load(&w.attempt_ms_sum),
                    ),
                    (
                        "av_query_webhook_events_created_total",
                        "counter",
                        load(&app.webhook_events),
                    ),
                    ("av_query_webhook_queue_depth", "gauge", depth),
                ],
            )
        },
    )
}

async fn not_found() -> AppError {
    ApiError::not_found("Route").into()
}

/// Outside the API, the web dashboard on the same origin: its files, and
/// its index for every other path (client-side routes). Unknown API paths,
/// and everything when no dashboard is configured, are JSON 404s.
async fn web_or_not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    let path = req.uri().path();
    let is_read =
        req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD;
    match &state.0.config.web_dir {
        Some(dir) if is_read && path != "/api" && !path.starts_with("/api/") => {
            let index = tower_http::services::ServeFile::new(dir.join("index.html"));
            match tower_http::services::ServeDir::new(dir)
                .fallback(index)
                .oneshot(req)
                .await
            {
                Ok(r) => r.into_response(),
                Err(e) => match e {},
            }
        }
        _ => not_found().await.into_response(),
    }
}

/// 405 with the `{"detail"}` body and `Allow` naming the path's methods.
async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r =
        AppError(ApiError::bad_request("Method not allowed for this route.")).into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    let allow = allowed_methods(uri.path());
    if let Ok(v) = axum::http::HeaderValue::from_str(&allow.join(", ")) {
        r.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    r
}

/// The methods [`ROUTES`] serves at `path` (under `/api/v1`, with or
/// without its trailing slash: see [`route`]).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let bare = |p: &str| p.trim_end_matches('/').to_string();
    let path = bare(path.strip_prefix("/api/v1").unwrap_or(path));
    let matches = |pattern: &str| {
        let pattern = bare(pattern);
        let (a, b): (Vec<&str>, Vec<&str>) =
            (pattern.split('/').collect(), path.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
    };
    let routes: &'static [(String, String)] = &ROUTES;
    // A static path wins over a pattern, as in the router.
    let exact: Vec<&'static str> = routes
        .iter()
        .filter(|(_, p)| bare(p) == path)
        .map(|(m, _)| m.as_str())
        .collect();
    let mut methods: Vec<&'static str> = if exact.is_empty() {
        routes
            .iter()
            .filter(|(_, p)| matches(p))
            .map(|(m, _)| m.as_str())
            .collect()
    } else {
        exact
    };
    methods.sort_unstable();
    methods.dedup();
    methods
}

#[cfg(test)]
mod tests {
    use super::allowed_methods;

    #[test]
    fn allow_names_the_methods_of_the_path() {
        assert_eq!(allowed_methods("/api/v1/me/api-keys/"), ["GET", "POST"]);
        assert_eq!(
            allowed_methods("/api/v1/dashboard/traces/abc"),
            ["GET", "PATCH"]
        );
        assert_eq!(allowed_methods("/api/v1/dashboard/traces/compare"), ["GET"]);
        assert_eq!(allowed_methods("/api/v1/auth/login"), ["POST"]);
    }
}
