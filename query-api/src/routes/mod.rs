//! One module per resource; every route is wired in `crate::router`.

pub mod agents;
pub mod api_keys;
pub mod auth;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod traces;

/// Page-number pagination, clamped: `page` >= 1, `page_size` in 1..=max.
pub fn clamp_page(page: Option<i64>, page_size: Option<i64>, default: i64, max: i64) -> (i64, i64) {
    let page = page.unwrap_or(1).max(1);
    let size = page_size.unwrap_or(default).clamp(1, max);
    (page, size)
}
