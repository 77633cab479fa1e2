//! Timestamp parsing and formatting (RFC 3339 / ISO 8601, always UTC out).

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Parse an RFC 3339 timestamp. A missing offset is not accepted.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.to_offset(UtcOffset::UTC))
}

/// Format as RFC 3339 in UTC with a `Z` suffix.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The current month as `YYYY-MM` (UTC): the quota period.
pub fn month_key(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let t = parse("2024-01-15T10:00:00.100Z").unwrap();
        assert_eq!(format(t), "2024-01-15T10:00:00.1Z");
        let t = parse("2024-01-15T12:00:00+02:00").unwrap();
        assert_eq!(format(t), "2024-01-15T10:00:00Z");
        assert!(parse("2024-01-15 10:00:00").is_none());
        assert!(parse("yesterday").is_none());
        assert_eq!(month_key(t), "2024-01");
    }
}
