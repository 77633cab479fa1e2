//! The gateway's HTTP side: routing a request to its flow, request
//! metrics, health, and errors rendered as `{"detail"}` responses.

use crate::ingest::{ingest_batch, ingest_otlp};
use crate::{otlp, App, BATCH_PATH, BATCH_PATH_SLASH};
use agentvista_shared::error::{ApiError, ErrorKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Instant;

pub(crate) type Resp = Response<Full<Bytes>>;

pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Render an error as `{"detail": ...}` with its status (and `Retry-After`
/// for 503s, which are always worth retrying).
pub fn error_response(e: &ApiError) -> Resp {
    let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, e.body());
    if e.kind == ErrorKind::Unavailable {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = match req.uri().path() {
        "/healthz" | "/readyz" | "/metrics" | BATCH_PATH => req.uri().path().to_string(),
        BATCH_PATH_SLASH => BATCH_PATH.to_string(),
        p if otlp::Signal::is_base_path(p) => "/api/v1".to_string(),
        p => match otlp::Signal::from_path(p) {
            Some(_) => p.trim_end_matches('/').to_string(),
            None => "other".to_string(),
        },
    };
    let resp = route_request(&app, req).await;
    app.metrics
        .record(&route, &method, resp.status().as_u16(), started.elapsed());
    resp
}

async fn route_request(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let app = app.clone();
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        (&Method::GET, "/readyz") => readyz(&app).await,
        (&Method::GET, "/metrics") => {
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            let a = &app.accepted;
            let text = app.metrics.render(
                "av_gateway",
                &[
                    ("av_gateway_spans_accepted_total", "counter", load(&a.spans)),
                    (
                        "av_gateway_log_records_accepted_total",
                        "counter",
                        load(&a.log_records),
                    ),
                    (
                        "av_gateway_metric_points_accepted_total",
                        "counter",
                        load(&a.metric_points),
                    ),
                ],
            );
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::POST, BATCH_PATH | BATCH_PATH_SLASH) => {
            let started = Instant::now();
            let result = ingest_batch(&app, req).await;
            match result {
                Ok(resp) => resp,
                Err(e) => {
                    if e.kind == ErrorKind::Unavailable || e.kind == ErrorKind::Internal {
                        tracing::warn!(status = e.status_code(), detail = %e.detail, elapsed_ms = started.elapsed().as_millis() as u64, "batch refused");
                    }
                    error_response(&e)
                }
            }
        }
        (&Method::POST, p) if otlp::Signal::from_path(p).is_some() => {
            let signal = otlp::Signal::from_path(p);
            ingest_otlp(&app, req, signal).await
        }
        // The API's base URL: an exporter given it as its endpoint posts
        // there verbatim; the body says which signal it is.
        (&Method::POST, p) if otlp::Signal::is_base_path(p) => ingest_otlp(&app, req, None).await,
        (_, p)
            if p == BATCH_PATH
                || p == BATCH_PATH_SLASH
                || otlp::Signal::from_path(p).is_some()
                || otlp::Signal::is_base_path(p) =>
        {
            let mut r = error_response(&ApiError::bad_request("Method not allowed; use POST."));
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
        _ => error_response(&ApiError::not_found("Route")),
    }
}

async fn readyz(app: &App) -> Resp {
    let mut redis = app.redis.clone();
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .is_ok();
    let pg_ok = sqlx::query("SELECT 1").execute(&app.pg).await.is_ok();
    let kafka_ok = app.queue.ready().await;
    let body = serde_json::json!({
        "status": if redis_ok && pg_ok && kafka_ok { "ok" } else { "unavailable" },
        "redis": redis_ok, "postgres": pg_ok, "kafka": kafka_ok,
    });
    let status = if redis_ok && pg_ok && kafka_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, body.to_string().into_bytes())
}
