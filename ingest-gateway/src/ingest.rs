//! The two ingestion flows: `/traces/batch` and OTLP/HTTP (traces, metrics,
//! logs), from an admitted request to the answer.

use crate::admission::admit;
use crate::http::{error_response, json, Resp};
use crate::publish::{chunked, new_message, publish};
use crate::{otlp, sdk, App};
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::queue::IngestMessage;
use agentvista_shared::window::IngestWindow;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, StatusCode};

/// `/traces/batch` takes JSON only, as every other JSON route (415).
fn require_json(req: &Request<Incoming>) -> Result<(), ApiError> {
    if otlp::media_type(req.headers()) == "application/json" {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "Expected Content-Type: application/json.",
        ))
    }
}

/// The answer to an accepted SDK batch.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    pub accepted_traces: usize,
    pub accepted_spans: usize,
}

/// Ingest a batch of SDK traces: at most 100 spans in total; idempotent on
/// `trace_id` and `span_id`. 200 only once the queue (Kafka, `acks=all`)
/// has the batch. Every time must lie within 1826 days before and one day
/// after the receive time.
#[utoipa::path(operation_id = "ingest_batch", post, path = "/traces/batch", tag = "ingestion",
    request_body(content = crate::sdk::RawBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted after the queue confirmed", body = BatchAccepted),
        (status = 400, description = "Invalid body; `detail` names the field", body = agentvista_shared::error::ErrorBody),
        (status = 401, description = "Missing or invalid key", body = agentvista_shared::error::ErrorBody),
        (status = 403, description = "The key lacks `write`", body = agentvista_shared::error::ErrorBody),
        (status = 413, description = "Body too large", body = agentvista_shared::error::ErrorBody),
        (status = 415, description = "Body not sent as application/json", body = agentvista_shared::error::ErrorBody),
        (status = 429, description = "Monthly event limit exceeded", body = agentvista_shared::error::ErrorBody),
        (status = 503, description = "Queue unavailable; retry", body = agentvista_shared::error::ErrorBody)))]
pub(crate) async fn ingest_batch(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    require_json(&req)?;
    let (_admission, key, bytes) = admit(app, req).await?;
    let prices = app.prices.overrides(key.org_id).await;
    let window = IngestWindow::now();
    let mut batch = sdk::parse(&bytes, &prices, &window)?;
    drop(bytes);
    sdk::assign_agent_ids(&mut batch, key.org_id);
    let mut message = new_message(&key);
    message.traces = batch.traces;
    message.spans = batch.spans;
    let accepted_traces = message.traces.len();
    let accepted_spans = message.spans.len();
    publish(app, &key, vec![message]).await?;
    tracing::debug!(org_id = %key.org_id, traces = accepted_traces, spans = accepted_spans, "batch accepted");
    let body = BatchAccepted {
        accepted_traces,
        accepted_spans,
    };
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&body).expect("counts serialize"),
    ))
}

/// The OTLP handler: errors in the request's encoding (JSON `{"detail"}` or
/// protobuf `google.rpc.Status`).
/// An OTLP export; `signal` is `None` at the API's base URL, where it is
/// read off the body ([`otlp::sniff`]).
pub(crate) async fn ingest_otlp(
    app: &App,
    req: Request<Incoming>,
    signal: Option<otlp::Signal>,
) -> Resp {
    let enc = match otlp::encoding(req.headers()) {
        Ok(enc) => enc,
        Err(e) => return error_response(&e),
    };
    match ingest_otlp_inner(app, req, signal, enc).await {
        Ok(resp) => resp,
        Err(e) => {
            let (body, ct) = otlp::error_body(enc, &e);
            let mut r = error_response(&e);
            *r.body_mut() = Full::new(Bytes::from(body));
            r.headers_mut().insert(CONTENT_TYPE, ct);
            r
        }
    }
}

async fn ingest_otlp_inner(
    app: &App,
    req: Request<Incoming>,
    signal: Option<otlp::Signal>,
    enc: otlp::Encoding,
) -> Result<Resp, ApiError> {
    let (_admission, key, bytes) = admit(app, req).await?;
    let signal = signal.unwrap_or_else(|| otlp::sniff(enc, &bytes));
    let mut outcome = otlp::Outcome::default();
    let template = new_message(&key);
    let window = IngestWindow::around((template.version / 1_000) as i64);
    let prices = match signal {
        otlp::Signal::Traces => app.prices.overrides(key.org_id).await,
        _ => Default::default(),
    };
    // The body and the decoded request are dropped here, before the wait
    // for Kafka: only the encoded messages live across it.
    let messages: Vec<IngestMessage> = match signal {
        otlp::Signal::Traces => {
            let request = otlp::decode_traces(enc, &bytes)?;
            let t = otlp::traces::translate(&request, key.org_id, &prices, &window);
            outcome.accepted = t.spans.len() as u64;
            outcome.traces = t.traces.len() as u64;
            outcome.rejected = t.rejected;
            outcome.error = t.error;
            let mut messages = chunked(&template, t.spans, |m, c| m.spans = c);
            messages.extend(chunked(&template, t.traces, |m, c| m.traces = c));
            messages
        }
        otlp::Signal::Metrics => {
            let request = otlp::decode_metrics(enc, &bytes)?;
            let t = otlp::metrics::translate(&request, &window);
            outcome.accepted = t.points.len() as u64;
            outcome.rejected = t.rejected;
            outcome.error = t.error;
            chunked(&template, t.points, |m, c| m.metrics = c)
        }
        otlp::Signal::Logs => {
            let request = otlp::decode_logs(enc, &bytes)?;
            let t = otlp::logs::translate(&request, template.version as i64, &window);
            outcome.accepted = t.logs.len() as u64;
            outcome.rejected = t.rejected;
            outcome.error = t.error;
            chunked(&template, t.logs, |m, c| m.logs = c)
        }
    };
    drop(bytes);
    publish(app, &key, messages).await?;
    let mut r = json(StatusCode::OK, otlp::success_body(signal, enc, &outcome));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(enc.content_type()));
    Ok(r)
}
