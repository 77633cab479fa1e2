//! Money: decimal strings on the wire, integer billionths of a dollar inside.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::str::FromStr;

/// Billionths of a dollar per dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// The largest amount a client may send for one span or one run: one
/// million dollars. Larger values are refused (`is too large`).
pub const MAX_USD: i64 = 1_000_000;
pub const MAX_NANOS: i64 = MAX_USD * NANOS_PER_USD;

/// The largest run total derived from spans (100 million dollars): sums
/// saturate here. Stored as `Decimal64(9)`, whose limit is about 10^9
/// dollars; reads add amounts as 128-bit integers, so no sum of stored
/// amounts can overflow.
pub const MAX_TOTAL_NANOS: i64 = 100 * MAX_NANOS;

/// Add amounts, saturating at [`MAX_TOTAL_NANOS`].
pub fn add_capped(a: i64, b: i64) -> i64 {
    a.saturating_add(b).min(MAX_TOTAL_NANOS)
}

/// Parse a non-negative decimal string (`"0.004500"`) into nano-dollars,
/// at most [`MAX_USD`]. More than nine decimal places are rounded half-even.
pub fn parse_usd(s: &str) -> Result<i64, &'static str> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 {
        return Err("must be a decimal string such as \"0.004500\"");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
    {
        return Err("must be a decimal string such as \"0.004500\"");
    }
    let d = Decimal::from_str(s).map_err(|_| "must be a decimal string such as \"0.004500\"")?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err("must not be negative");
    }
    d.checked_mul(Decimal::from(NANOS_PER_USD))
        .ok_or(TOO_LARGE)?
        .round()
        .to_i64()
        .filter(|n| *n <= MAX_NANOS)
        .ok_or(TOO_LARGE)
}

const TOO_LARGE: &str = "is too large (at most 1000000 USD)";

/// Format nano-dollars as a decimal string with six places (`"0.004500"`);
/// more places are kept when they are significant. Takes any sum of stored
/// amounts (128 bits).
pub fn format_usd(nanos: impl Into<i128>) -> String {
    let mut d = Decimal::from_i128_with_scale(nanos.into(), 9);
    d.rescale(9);
    let s = d.to_string();
    // Trim trailing zeros beyond six decimal places.
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut frac = frac.to_string();
    while frac.len() > 6 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{int}.{frac}")
}

/// Nano-dollars as a float number of dollars, for aggregate JSON numbers.
pub fn nanos_to_f64(nanos: impl Into<i128>) -> f64 {
    nanos.into() as f64 / NANOS_PER_USD as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<i64, ()>)] = &[
            ("0.004500", Ok(4_500_000)),
            ("1", Ok(1_000_000_000)),
            ("0", Ok(0)),
            ("0.0000000015", Ok(2)),
            ("-0.1", Err(())),
            ("abc", Err(())),
            ("1e5", Err(())),
            ("", Err(())),
            ("99999999999999999999", Err(())),
            ("1000000", Ok(MAX_NANOS)),
            ("1000000.000000001", Err(())),
        ];
        for (input, want) in cases {
            let got = parse_usd(input).map_err(|_| ());
            assert_eq!(&got, want, "{input}");
        }
    }

    #[test]
    fn format_table() {
        assert_eq!(format_usd(4_500_000), "0.004500");
        assert_eq!(format_usd(0), "0.000000");
        assert_eq!(format_usd(1_234_567_891), "1.234567891");
        assert_eq!(format_usd(3_200_000), "0.003200");
        assert_eq!(format_usd(MAX_NANOS), "1000000.000000");
        // A sum of many maximal amounts, beyond 64 bits.
        assert_eq!(
            format_usd(i128::from(MAX_TOTAL_NANOS) * 1_000_000),
            "100000000000000.000000"
        );
    }
}
