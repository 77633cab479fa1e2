//! Reading request bodies within limits: never an unbounded read, never an
//! uncapped decompression.

use agentvista_shared::error::{ApiError, ErrorKind};
use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH};
use std::io::Read;

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("Request body exceeds the {what} limit of {limit} bytes."),
    )
}

/// Read the whole body, refusing more than `limit` bytes on the wire.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large(limit, "body size"));
        }
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit, "body size")),
        Err(_) => Err(ApiError::bad_request("The request body could not be read.")),
    }
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
