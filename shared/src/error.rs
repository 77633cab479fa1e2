//! The error taxonomy shared by every service.
//!
//! Each service maps an [`ErrorKind`] to its HTTP status in one place and
//! renders every error as `{"detail": "..."}`.

use serde::Serialize;

/// What went wrong, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The HTTP status code for this kind.
    pub fn status_code(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// A field-level validation error, rendered in the optional `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An error that is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// The JSON error envelope of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// A human-readable sentence.
    pub detail: &'a str,
    /// Field-level validation errors, when there are any.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(value_type = Option<Vec<FieldError>>)]
    pub errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, detail)
    }

    /// A 400 that names the offending field, both in `detail` and `errors`.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            kind: ErrorKind::BadRequest,
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::Unauthorized, "Missing or invalid API key.")
    }

    pub fn forbidden_scope(scope: &str) -> Self {
        Self::new(
            ErrorKind::Forbidden,
            format!("API key lacks the required scope: {scope}."),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found."))
    }

    /// The exact 429 body of the contract.
    pub fn quota_exceeded() -> Self {
        Self::new(ErrorKind::TooManyRequests, "Monthly event limit exceeded.")
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, detail)
    }

    /// A 500 whose body reveals nothing of internals.
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "Internal server error.")
    }

    pub fn status_code(&self) -> u16 {
        self.kind.status_code()
    }

    /// The serialized `{"detail": ...}` body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            detail: &self.detail,
            errors: &self.errors,
        })
        .unwrap_or_else(|_| br#"{"detail": "Internal server error."}"#.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_body_is_exact() {
        let e = ApiError::quota_exceeded();
        assert_eq!(e.status_code(), 429);
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"detail":"Monthly event limit exceeded."}"#
        );
    }

    #[test]
    fn field_errors_are_listed() {
        let e = ApiError::invalid_field("traces[0].trace.trace_id", "is required");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["detail"], "traces[0].trace.trace_id: is required");
        assert_eq!(v["errors"][0]["field"], "traces[0].trace.trace_id");
    }
}
