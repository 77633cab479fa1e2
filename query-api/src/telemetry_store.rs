//! Reading telemetry from ClickHouse: shared helpers and row conversions.
//!
//! Every query filters by `org_id` first (the leading key column of every
//! table) and reads `FINAL`, so re-sent rows never show twice.

use agentvista_shared::{money, time_fmt};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Microseconds since the epoch as an RFC 3339 string.
pub fn fmt_us(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1_000)
        .map(time_fmt::format)
        .unwrap_or_default()
}

pub fn fmt_us_opt(us: Option<i64>) -> Value {
    us.map_or(Value::Null, |u| json!(fmt_us(u)))
}

/// Nano-dollars as the wire's decimal string, or null.
pub fn usd_string<N: Into<i128>>(nanos: Option<N>) -> Value {
    nanos.map_or(Value::Null, |n| json!(money::format_usd(n)))
}

/// Nano-dollars as a JSON number of dollars (aggregates), rounded to 1e-6.
pub fn usd_number(nanos: impl Into<i128>) -> Value {
    json!((money::nanos_to_f64(nanos) * 1e6).round() / 1e6)
}

/// A money total as a JSON number of dollars, or null when no run in scope
/// carries a cost (the one "nothing to sum" value of every money total:
/// agent summaries, daily statistics, comparisons).
pub fn cost_total(runs_with_cost: u64, nanos: i128) -> Value {
    if runs_with_cost == 0 {
        Value::Null
    } else {
        usd_number(nanos)
    }
}

/// A percentage with one decimal place, or null without a denominator.
/// Milliseconds rounded to whole ones; null when unknown.
pub fn rounded_ms(v: Option<f64>) -> Value {
    v.filter(|v| v.is_finite())
        .map_or(Value::Null, |v| json!(v.round() as i64))
}

pub fn percent(num: u64, den: u64) -> Value {
    if den == 0 {
        Value::Null
    } else {
        json!(((num as f64 / den as f64) * 1000.0).round() / 10.0)
    }
}

/// Nanoseconds since the epoch as an RFC 3339 string.
pub fn fmt_ns(ns: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .map(time_fmt::format)
        .unwrap_or_default()
}

/// Key-value pairs as a JSON object.
pub fn map_json(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}
