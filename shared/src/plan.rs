//! Plans: the monthly span limit and the retention period of an organization.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Starter,
    Pro,
    Scale,
}

impl Plan {
    pub const ALL: [Plan; 4] = [Plan::Free, Plan::Starter, Plan::Pro, Plan::Scale];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Scale => "scale",
        }
    }

    pub fn parse(s: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Spans (events) per calendar month (UTC).
    pub fn monthly_span_limit(self) -> u64 {
        match self {
            Plan::Free => 50_000,
            Plan::Starter => 1_000_000,
            Plan::Pro => 10_000_000,
            Plan::Scale => 100_000_000,
        }
    }

    /// Days that telemetry is kept.
    pub fn retention_days(self) -> u16 {
        match self {
            Plan::Free => 3,
            Plan::Starter => 14,
            Plan::Pro => 30,
            Plan::Scale => 90,
        }
    }
}

/// The Redis key of an organization's span counter for the month of `now`
/// (UTC): the gateway's quota reserves against it, the usage route reads it.
pub fn quota_counter_key(org_id: uuid::Uuid, now: time::OffsetDateTime) -> String {
    format!("av:quota:{org_id}:{}", crate::time_fmt::month_key(now))
}
