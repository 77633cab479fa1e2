//! One error type for every handler, rendered as `{"detail": ...}` with the
//! status of its [`ErrorKind`]. Extractor rejections go through the same
//! envelope via [`Json`] and [`Query`].

use agentvista_shared::error::{ApiError, ErrorKind};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// The error every handler returns.
#[derive(Debug)]
pub struct AppError(pub ApiError);

pub type AppResult<T> = Result<T, AppError>;

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.detail)
    }
}

/// For background work (`anyhow`): the store's errors were logged with
/// their cause when they were converted.
impl std::error::Error for AppError {}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        AppError(e)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "postgres error");
        AppError(match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                ApiError::unavailable("The database is temporarily unavailable; retry shortly.")
            }
            _ => ApiError::internal(),
        })
    }
}

impl From<clickhouse::error::Error> for AppError {
    fn from(e: clickhouse::error::Error) -> Self {
        tracing::error!(error = %e, "clickhouse error");
        let busy = matches!(&e, clickhouse::error::Error::BadResponse(m)
            if m.contains("TOO_MANY_SIMULTANEOUS_QUERIES") || m.contains("TIMEOUT_EXCEEDED"));
        AppError(match e {
            clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
                ApiError::unavailable(
                    "The telemetry store is temporarily unavailable; retry shortly.",
                )
            }
            _ if busy => ApiError::unavailable("The telemetry store is busy; retry shortly."),
            _ => ApiError::internal(),
        })
    }
}

impl From<redis::RedisError> for AppError {
    fn from(e: redis::RedisError) -> Self {
        tracing::error!(error = %e, "redis error");
        AppError(ApiError::unavailable(
            "The key cache is temporarily unavailable; retry shortly.",
        ))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, self.0.body()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.0.kind == ErrorKind::Unavailable {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// `axum::Json` with rejections rendered in the error envelope.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    /// A body that is not JSON is a 415; malformed JSON a 400; a value of
    /// the wrong shape a 400 naming the field, with the `errors` array.
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "Expected Content-Type: application/json.",
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| {
                AppError(ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    "The request body is too large or could not be read.",
                ))
            })?;
        // PostgreSQL text cannot hold NUL: a 400 naming the field, before
        // any store sees it (the escape is the only way JSON carries one).
        if contains(&bytes, b"\\u0000") {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if let Some(field) = nul_path(&value, String::new()) {
                    let field = if field.is_empty() {
                        "body".to_string()
                    } else {
                        field
                    };
                    return Err(AppError(ApiError::invalid_field(
                        field,
                        "must not contain a NUL character (\\u0000)",
                    )));
                }
            }
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Json).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            AppError(if inner.is_syntax() || inner.is_eof() {
                ApiError::bad_request(format!("Malformed JSON body: {inner}"))
            } else if field.is_empty() || field == "." {
                ApiError::bad_request(format!("Invalid request body: {inner}"))
            } else {
                ApiError::invalid_field(field, strip_position(&inner.to_string()))
            })
        })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The path (`a.b[0]`) of the first string (or object key) holding a NUL
/// character, `""` for the body itself.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(v, here)
            }
        }),
        _ => None,
    }
}

/// A serde_json message without its " at line L column C" suffix.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with rejections rendered in the error envelope.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    /// A value of the wrong type is a 400 naming the parameter, with the
    /// `errors` array, like every other validation error.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(AppError(ApiError::invalid_field(
                name.replace('\0', ""),
                "must not contain a NUL character",
            )));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                AppError(if field.is_empty() || field == "." {
                    ApiError::bad_request(format!("Invalid query parameters: {message}"))
                } else {
                    ApiError::invalid_field(field, message)
                })
            })
    }
}
