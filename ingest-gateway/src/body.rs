//! Reading request bodies within limits: never an unbounded read, never an
//! uncapped decompression.

use agentvista_shared::error::{ApiError, ErrorKind};
use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH};
use std::io::Read;

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("Request body exceeds the {what} limit of {limit} bytes."),
    )
}

/// At most this much of an oversized body is read and discarded before the
/// 413 is sent, so that a proxy still sending it gets the answer instead of
/// a reset connection (and relays the JSON 413 rather than a 502).
pub const DRAIN_BYTES: usize = 64 * 1024 * 1024;
/// And for at most this long.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Read the whole body, refusing more than `limit` bytes on the wire.
pub async fn read_limited(
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            drain(body, 0).await;
            return Err(too_large(limit, "body size"));
        }
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::bad_request("The request body could not be read."))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body, buf.len() + data.len()).await;
                return Err(too_large(limit, "body size"));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Read and discard what is left of a body (bounded in bytes and time).
async fn drain(mut body: Incoming, mut seen: usize) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > DRAIN_BYTES {
                    break;
                }
            }
        }
    })
    .await;
}

/// Undo `Content-Encoding` (identity or gzip), producing at most `limit`
/// bytes: a gzip bomb is refused with 413 after `limit` bytes of output.
pub fn decode(headers: &HeaderMap, raw: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => gunzip(&raw, limit),
        Some(other) => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Unsupported Content-Encoding {other:?}; use gzip or identity."),
        )),
    }
}

pub fn gunzip(raw: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
    let mut decoder = GzDecoder::new(raw).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| ApiError::bad_request("The request body is not valid gzip."))?;
    if out.len() > limit {
        return Err(too_large(limit, "decompressed size"));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_round_trips() {
        assert_eq!(&gunzip(&gz(b"hello"), 100).unwrap()[..], b"hello");
    }

    #[test]
    fn gzip_bomb_is_refused() {
        let bomb = gz(&vec![0u8; 50 * 1024 * 1024]);
        assert!(bomb.len() < 200 * 1024);
        let err = gunzip(&bomb, 1024 * 1024).unwrap_err();
        assert_eq!(err.status_code(), 413);
        assert!(err.detail.contains("decompressed size"));
    }

    #[test]
    fn garbage_is_a_400() {
        assert_eq!(gunzip(b"not gzip", 100).unwrap_err().status_code(), 400);
    }
}
