//! One module per resource; every route is wired in `crate::router`.

pub mod agents;
pub mod alerts;
pub mod api_keys;
pub mod auth;
pub mod health;
pub mod logs;
pub mod members;
pub mod metrics;
pub mod prompts;
pub mod traces;
pub mod usage;
pub mod webhooks;

/// The highest page number served: deeper pages are a 400 (keyset cursors
/// or filters reach further data cheaply).
pub const MAX_PAGE: i64 = 10_000;

/// Page-number pagination: `page` in 1..=[`MAX_PAGE`] (a 400 naming `page`
/// otherwise), `page_size` clamped to 1..=max as the contract says.
pub fn page_params(
    page: Option<i64>,
    page_size: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), agentvista_shared::error::ApiError> {
    let page = page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(agentvista_shared::error::ApiError::invalid_field(
            "page",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let size = page_size.unwrap_or(default).clamp(1, max);
    Ok((page, size))
}
