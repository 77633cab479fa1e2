//! When a failed attempt is retried: 7 attempts in all, the first retry
//! within 10 seconds, then backing off exponentially to hours, each delay
//! jittered by ±20% so that retries of many deliveries spread out.

use rand::Rng;
use std::time::Duration;

/// The delay after failed attempt `n` (1-based) before attempt `n + 1`,
/// before jitter: 5 s, 30 s, 2 min, 10 min, 1 h, 4 h. (Six retries: about
/// 5 h 12 min from the first attempt to the last.)
pub const DELAYS_SECS: [u64; 6] = [5, 30, 120, 600, 3_600, 14_400];

/// The jittered delay after failed attempt `n`, scaled by `scale`.
pub fn retry_delay(n: i32, scale: f64) -> Duration {
    let i = usize::try_from(n.max(1) - 1)
        .unwrap_or(0)
        .min(DELAYS_SECS.len() - 1);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::from_secs_f64(DELAYS_SECS[i] as f64 * jitter * scale.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_retry_comes_within_ten_seconds_and_delays_grow() {
        for _ in 0..100 {
            assert!(retry_delay(1, 1.0) <= Duration::from_secs(6));
            assert!(retry_delay(1, 1.0) >= Duration::from_secs(4));
        }
        let mut last = Duration::ZERO;
        for n in 1..=6 {
            let d = Duration::from_secs(DELAYS_SECS[n - 1]);
            assert!(d > last);
            last = d;
        }
        assert!(retry_delay(99, 1.0) <= Duration::from_secs_f64(14_400.0 * 1.2));
        assert_eq!(retry_delay(3, 0.0), Duration::ZERO);
    }
}
