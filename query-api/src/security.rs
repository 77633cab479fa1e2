//! What every answer and every browser request goes through before a
//! handler: the cross-site request rule (cookie sessions, login), a NUL byte in
//! the path refused, and the security headers on every response.
//!
//! The CSRF rule: a state-changing request (any method but GET, HEAD and
//! OPTIONS) without an `Authorization` header (so one a browser may send on
//! its own, with the session cookie or, for login and sign-up, to set one)
//! is refused with 403 when the browser says it comes from another site or
//! another origin of the same site: a
//! `Sec-Fetch-Site` other than `same-origin` or `none`, or (browsers that
//! send no `Sec-Fetch-Site`) an `Origin` that is neither the request's own
//! (`Host`) nor `AV_PUBLIC_URL`'s. A request with neither header is not a
//! browser's form or script (curl, SDKs) and passes. Bearer tokens and API
//! keys are never sent by a browser on its own, so they need no rule.

use crate::error::AppError;
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorKind};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The dashboard's Content-Security-Policy: its own scripts only (no inline
/// script, no eval), its own API, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every response's security headers (set unless a handler set its own).
pub const HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

/// The middleware: the path and CSRF checks, then the handler, then the
/// headers.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    let headers = resp.headers_mut();
    for (name, value) in HEADERS {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    resp
}

fn check(state: &AppState, req: &Request) -> Result<(), AppError> {
    if req.uri().path().contains("%00") {
        return Err(ApiError::bad_request("The path must not contain a NUL character.").into());
    }
    if needs_same_origin(req) && !same_origin(req.headers(), &state.0.config.public_url) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "Cross-site request refused: a state-changing request without an Authorization \
             header must come from the dashboard's own origin.",
        )
        .into());
    }
    Ok(())
}

/// Whether the request is one the CSRF rule covers: a state change that a
/// browser could send on its own (no `Authorization` header).
fn needs_same_origin(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.headers().get(header::AUTHORIZATION).is_none()
}

/// Whether a browser's request comes from the dashboard's own origin (a
/// request without the browser's headers passes: see the module's doc).
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let authority = |u: &url::Url| {
        u.host_str().map(|h| match u.port_or_known_default() {
            Some(p) => format!("{}://{h}:{p}", u.scheme()),
            None => format!("{}://{h}", u.scheme()),
        })
    };
    let Some(from) = authority(&origin) else {
        return false;
    };
    if url::Url::parse(public_url)
        .ok()
        .and_then(|u| authority(&u))
        .is_some_and(|own| own == from)
    {
        return true;
    }
    // The request's own host, as the browser addressed it.
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|host| url::Url::parse(&format!("{}://{host}", origin.scheme())).ok())
        .and_then(|u| authority(&u))
        .is_some_and(|own| own == from)
}

#[cfg(test)]
mod tests {
    use super::same_origin;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_browser_says_where_a_request_comes_from() {
        let public = "https://av.example.com";
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            public
        ));
        // No browser header: curl, SDKs.
        assert!(same_origin(&headers(&[]), public));
        // Origin only (older browsers).
        assert!(same_origin(
            &headers(&[("origin", "https://av.example.com")]),
            public
        ));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ]),
            public
        ));
        assert!(!same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:9999"),
                ("host", "127.0.0.1:8080")
            ]),
            public
        ));
        assert!(!same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("host", "av.example.com")
            ]),
            public
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), public));
    }
}
