//! An organization's plan and this month's usage.

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /org/{org_slug}/usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub org_slug: String,
    /// `free`, `starter`, `pro` or `scale`.
    pub plan: String,
    /// Spans the organization may send per UTC month (the plan's, or the
    /// organization's override).
    pub monthly_span_limit: u64,
    /// Spans metered this month, as the quota counts them (null when the
    /// counter cannot be read).
    pub spans_used: Option<u64>,
    /// Percent of the limit used (one decimal); null without a count or
    /// with a zero limit.
    pub percent_used: Option<f64>,
    /// The month counted, `YYYY-MM` (UTC).
    pub month: String,
    /// When the count starts again (RFC 3339, the first of next month UTC).
    pub resets_at: String,
    /// Days telemetry is kept.
    pub retention_days: u16,
}
