//! Every route of the query API, in one place. Paths that the contract
//! writes with a trailing slash answer with and without it.

use crate::error::AppError;
use crate::routes::{agents, api_keys, auth, health, logs, metrics, traces};
use crate::AppState;
use agentvista_shared::error::ApiError;
use axum::routing::{delete, get, post};
use axum::Router;

/// Every route of the query API as (method, path under `/api/v1`), spelled
/// as in `docs/openapi.json`; the tests check the document, this list and
/// the router against each other.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/signup"),
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/me"),
    ("GET", "/me/api-keys/"),
    ("POST", "/me/api-keys/"),
    ("DELETE", "/me/api-keys/{key_id}/"),
    ("GET", "/me/api-keys/ping/"),
    ("GET", "/agents"),
    ("GET", "/agents/{agent_id}"),
    ("GET", "/agents/{agent_id}/stats"),
    ("GET", "/agents/{agent_id}/runs"),
    ("GET", "/dashboard/traces"),
    ("GET", "/dashboard/traces/compare"),
    ("GET", "/dashboard/traces/{trace_id}"),
    ("PATCH", "/dashboard/traces/{trace_id}"),
    ("GET", "/dashboard/metrics/"),
    ("GET", "/dashboard/metrics/query"),
    ("GET", "/dashboard/logs/search"),
    ("GET", "/openapi.json"),
];

/// The OpenAPI 3 document of the whole API (ingestion and dashboard).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

pub fn router(state: AppState) -> Router {
    // The routes that read ClickHouse, behind the read slots.
    let telemetry = Router::new()
        .route("/agents", get(agents::list))
        .route("/agents/", get(agents::list))
        .route("/agents/{agent_id}", get(agents::detail))
        .route("/agents/{agent_id}/stats", get(agents::stats))
        .route("/agents/{agent_id}/runs", get(agents::runs))
        .route("/dashboard/traces", get(traces::list))
        .route("/dashboard/traces/", get(traces::list))
        .route("/dashboard/traces/compare", get(traces::compare))
        .route(
            "/dashboard/traces/{trace_id}",
            get(traces::detail).patch(traces::patch),
        )
        .route("/dashboard/metrics/", get(metrics::streams))
        .route("/dashboard/metrics", get(metrics::streams))
        .route("/dashboard/metrics/query", get(metrics::query))
        .route("/dashboard/logs/search", get(logs::search))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_reads,
        ));
    let api = Router::new()
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/me/api-keys/", get(api_keys::list).post(api_keys::create))
        .route("/me/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/me/api-keys/ping/", get(api_keys::ping))
        .route("/me/api-keys/ping", get(api_keys::ping))
        .route("/me/api-keys/{key_id}/", delete(api_keys::revoke))
        .route("/me/api-keys/{key_id}", delete(api_keys::revoke))
        .route("/openapi.json", get(openapi))
        .merge(telemetry);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics_text))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// At most `AV_QUERY_MAX_READS` telemetry reads at once per replica, so
/// that dashboards polling hard cannot take every ClickHouse query slot
/// (the writers' inserts need some). A read waits up to
/// `AV_QUERY_READ_WAIT_MS` for a slot, then gets 503 with `Retry-After`.
async fn limit_reads(
    axum::extract::State(state): axum::extract::State<AppState>,
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
        state.0.metrics.render("av_query", &[]),
    )
}

async fn not_found() -> AppError {
    ApiError::not_found("Route").into()
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

/// The methods [`ROUTES`] serves at `path` (under `/api/v1`).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let matches = |pattern: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (pattern.split('/').collect(), path.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
    };
    // A static path wins over a pattern, as in the router.
    let exact: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, p)| *p == path)
        .map(|(m, _)| *m)
        .collect();
    let mut methods: Vec<&'static str> = if exact.is_empty() {
        ROUTES
            .iter()
            .filter(|(_, p)| matches(p))
            .map(|(m, _)| *m)
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
