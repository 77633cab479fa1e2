//! The time windows: which event times ingestion accepts, and which times a
//! query may name.
//!
//! Every stored table is partitioned by the month of its event time, and
//! ClickHouse refuses an insert block that touches more than 100 partitions;
//! the per-day rollups use `Date`, which ends in 2149. So the gateway accepts
//! a record only when its times fall inside [`IngestWindow`] (about five
//! years back, one day ahead of the receive time): a batch then spans at most
//! 62 months, and nothing stored is outside the range every read can handle.
//! Queries may name any time in [`QUERY_MIN_US`, `QUERY_MAX_US`]; reads of a
//! window that holds no data answer empty, never an error.

/// How far back an event time may lie at ingestion: 1826 days, five years.
pub const MAX_AGE_DAYS: i64 = 1826;
/// How far ahead of the receive time an event time may lie (clock skew).
pub const MAX_AHEAD_SECS: i64 = 86_400;

/// 1970-01-01T00:00:00Z in microseconds.
pub const QUERY_MIN_US: i64 = 0;
/// 2100-01-01T00:00:00Z in microseconds.
pub const QUERY_MAX_US: i64 = 4_102_444_800_000_000;

const US_PER_DAY: i64 = 86_400_000_000;

/// The event times ingestion accepts, fixed at one receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestWindow {
    pub earliest_us: i64,
    pub latest_us: i64,
}

impl IngestWindow {
    /// The window around a receive time (µs since the epoch).
    pub fn around(now_us: i64) -> Self {
        IngestWindow {
            earliest_us: now_us.saturating_sub(MAX_AGE_DAYS * US_PER_DAY),
            latest_us: now_us.saturating_add(MAX_AHEAD_SECS * 1_000_000),
        }
    }

    /// The window around the current time.
    pub fn now() -> Self {
        Self::around(now_us())
    }

    /// A window that accepts every time (for tests and replay tools).
    pub fn unbounded() -> Self {
        IngestWindow {
            earliest_us: i64::MIN,
            latest_us: i64::MAX,
        }
    }

    /// `Ok` when `us` is inside the window; otherwise the sentence a 400 or
    /// a `partial_success` message gives.
    pub fn check_us(&self, us: i64) -> Result<(), &'static str> {
        if us < self.earliest_us {
            Err("is more than 1826 days (five years) in the past")
        } else if us > self.latest_us {
            Err("is more than one day in the future")
        } else {
            Ok(())
        }
    }

    /// As [`Self::check_us`], for nanoseconds.
    pub fn check_ns(&self, ns: i64) -> Result<(), &'static str> {
        self.check_us(ns.div_euclid(1_000))
    }
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    (now_ns() / 1_000) as i64
}

/// Nanoseconds since the epoch, now (the ingest row version).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `Ok` when a query time (µs) is inside the queryable range.
pub fn check_query_us(us: i128) -> Result<i64, &'static str> {
    if us < QUERY_MIN_US as i128 || us >= QUERY_MAX_US as i128 {
        Err("must be between 1970-01-01T00:00:00Z and 2100-01-01T00:00:00Z")
    } else {
        Ok(us as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_five_years_back_and_a_day_ahead() {
        let now = 1_764_000_000_000_000; // 2025-11-24
        let w = IngestWindow::around(now);
        assert!(w.check_us(now).is_ok());
        assert!(w.check_us(now - 1826 * US_PER_DAY).is_ok());
        assert!(w.check_us(now - 1826 * US_PER_DAY - 1).is_err());
        assert!(w.check_us(now + 86_400_000_000).is_ok());
        assert!(w.check_us(now + 86_400_000_001).is_err());
        assert!(w.check_ns((now + 1) * 1_000).is_ok());
        assert!(IngestWindow::unbounded().check_us(i64::MIN).is_ok());
        // A batch inside the window spans at most 62 calendar months.
        let months = (1826 + 1) as f64 / (365.25 / 12.0);
        assert!(months.ceil() < 62.0);
    }

    #[test]
    fn query_times_are_bounded() {
        assert!(check_query_us(0).is_ok());
        assert!(check_query_us(-1).is_err());
        assert!(check_query_us(QUERY_MAX_US as i128).is_err());
        assert!(check_query_us(QUERY_MAX_US as i128 - 1).is_ok());
    }
}
