//! What every ingestion request goes through first: a load-shedding slot,
//! the key (with `write`) and the body, read and decoded within the size
//! limit and the in-flight byte budget.

use crate::{body, App};
use agentvista_shared::error::ApiError;
use agentvista_shared::keys::{KeyRecord, SCOPE_WRITE};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::Request;

/// Authenticate with the `write` scope.
pub async fn authorize_write(app: &App, req: &Request<Incoming>) -> Result<KeyRecord, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = app.keys.authenticate(header).await?;
    if !key.has_scope(SCOPE_WRITE) {
        return Err(ApiError::forbidden_scope(SCOPE_WRITE));
    }
    Ok(key)
}

/// What an admitted request holds until it is answered: a slot and its
/// share of the in-flight byte budget.
pub struct Admission<'a> {
    _slot: tokio::sync::SemaphorePermit<'a>,
    _bytes: tokio::sync::SemaphorePermit<'a>,
}

/// Body bytes are budgeted in KiB permits.
pub(crate) fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

fn at_capacity() -> ApiError {
    ApiError::unavailable("The gateway is at capacity; retry shortly.")
}

/// Budget reserved before reading a body without `Content-Length`; topped
/// up to the real size once it is read.
const UNKNOWN_LENGTH_BUDGET: usize = 64 * 1024;

/// What every ingestion request goes through first: a load-shedding slot,
/// the key (with `write`), and the body read and decoded within the size
/// limit and the in-flight byte budget. Beyond either the request gets 503
/// with `Retry-After` at once: memory stays bounded by the budget instead
/// of growing with the queue of waiting requests.
pub(crate) async fn admit(
    app: &App,
    req: Request<Incoming>,
) -> Result<(Admission<'_>, KeyRecord, Bytes), ApiError> {
    let slot = app.inflight.try_acquire().map_err(|_| at_capacity())?;
    let key = authorize_write(app, &req).await?;
    let (parts, body) = req.into_parts();
    let limit = app.config.max_body_bytes;
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(UNKNOWN_LENGTH_BUDGET)
        .min(limit);
    let held = kib(declared);
    let mut budget = app
        .inflight_bytes
        .try_acquire_many(held)
        .map_err(|_| at_capacity())?;
    let raw = body::read_limited(&parts.headers, body, limit).await?;
    let bytes = body::decode(&parts.headers, raw, limit)?;
    let needed = kib(bytes.len());
    if needed > held {
        budget.merge(
            app.inflight_bytes
                .try_acquire_many(needed - held)
                .map_err(|_| at_capacity())?,
        );
    }
    Ok((
        Admission {
            _slot: slot,
            _bytes: budget,
        },
        key,
        bytes,
    ))
}
