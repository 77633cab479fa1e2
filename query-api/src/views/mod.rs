//! Response types: what each route returns, as `#[derive(Serialize,
//! ToSchema)]` structs (the OpenAPI document is generated from them), and
//! their pure conversions from the store's rows. One file per resource.

pub mod accounts;
pub mod agents;
pub mod alerts;
pub mod keys;
pub mod logs;
pub mod members;
pub mod metrics;
pub mod prompts;
pub mod runs;
pub mod usage;
pub mod webhooks;

use agentvista_shared::{money, time_fmt};
use time::OffsetDateTime;

/// A stored time as an RFC 3339 string (UTC).
pub fn rfc3339(t: OffsetDateTime) -> String {
    time_fmt::format(t)
}

/// Microseconds since the epoch as an RFC 3339 string.
pub fn fmt_us(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map(time_fmt::format)
        .unwrap_or_default()
}

/// Nanoseconds since the epoch as an RFC 3339 string.
pub fn fmt_ns(ns: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .map(time_fmt::format)
        .unwrap_or_default()
}

/// Nano-dollars as the wire's decimal string (`"0.004500"`).
pub fn usd_string(nanos: impl Into<i128>) -> String {
    money::format_usd(nanos)
}

/// Nano-dollars as a number of dollars (aggregates), rounded to 1e-6.
pub fn usd_number(nanos: impl Into<i128>) -> f64 {
    (money::nanos_to_f64(nanos) * 1e6).round() / 1e6
}

/// A money total in dollars, or `None` when no run in scope carries a cost
/// (the one "nothing to sum" value of every money total: agent summaries,
/// daily statistics, comparisons).
pub fn cost_total(runs_with_cost: u64, nanos: i128) -> Option<f64> {
    (runs_with_cost > 0).then(|| usd_number(nanos))
}

/// A percentage with one decimal place, or `None` without a denominator.
pub fn percent(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| ((num as f64 / den as f64) * 1000.0).round() / 10.0)
}

/// Milliseconds rounded to whole ones; `None` when unknown.
pub fn rounded_ms(v: Option<f64>) -> Option<i64> {
    v.filter(|v| v.is_finite()).map(|v| v.round() as i64)
}

/// Key-value pairs as a JSON object (attributes, labels).
pub fn attributes(pairs: &[(String, String)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_shape_wire_values() {
        assert_eq!(fmt_us(0), "1970-01-01T00:00:00Z");
        assert_eq!(percent(1, 3), Some(33.3));
        assert_eq!(percent(1, 0), None);
        assert_eq!(cost_total(0, 5), None);
        assert_eq!(cost_total(1, 4_500_000), Some(0.0045));
        assert_eq!(usd_string(4_500_000i64), "0.004500");
        assert_eq!(rounded_ms(Some(f64::NAN)), None);
        assert_eq!(rounded_ms(Some(2.5)), Some(3));
    }
}

#[cfg(test)]
mod snapshots;
