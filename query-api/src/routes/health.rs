//! `/healthz` (alive) and `/readyz` (PostgreSQL, ClickHouse and Redis answer).

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let app = &state.0;
    let pg = sqlx::query("SELECT 1").execute(&app.pg).await.is_ok();
    let ch = app.ch.query("SELECT 1").execute().await.is_ok();
    let mut conn = app.redis.clone();
    let redis = redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok();
    let ok = pg && ch && redis;
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(json!({
            "status": if ok { "ok" } else { "unavailable" },
            "postgres": pg, "clickhouse": ch, "redis": redis,
        })),
    )
}
