//! Histogram arithmetic for downsampled metric reads: merging histograms
//! with different bounds and interpolated quantiles. Pure and unit-tested.

/// Histograms with possibly different explicit bounds as one histogram
/// over the union of their bounds. Each bucket's count is spread over the
/// union buckets it covers in proportion to their width (the same
/// uniform-within-a-bucket assumption the quantile interpolation makes), so
/// histograms that share bounds merge exactly; the overflow bucket goes to
/// the union bucket just above its lower bound. Sets whose counts do not fit
/// their bounds (bounds + 1 counts, strictly increasing finite bounds) are
/// left out.
pub fn merge_histograms(sets: &[(&[f64], &[u64])]) -> (Vec<f64>, Vec<f64>) {
    let valid = |b: &[f64], c: &[u64]| {
        !b.is_empty()
            && c.len() == b.len() + 1
            && b.iter().all(|x| x.is_finite())
            && b.windows(2).all(|w| w[0] < w[1])
    };
    let mut union: Vec<f64> = sets
        .iter()
        .filter(|(b, c)| valid(b, c))
        .flat_map(|(b, _)| b.iter().copied())
        .collect();
    union.sort_by(f64::total_cmp);
    union.dedup();
    let mut merged = vec![0f64; union.len() + 1];
    let at = |x: f64| union.partition_point(|u| *u < x);
    for (bounds, counts) in sets.iter().filter(|(b, c)| valid(b, c)) {
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let c = c as f64;
            if i == bounds.len() {
                merged[at(bounds[i - 1]) + 1] += c;
                continue;
            }
            let hi = bounds[i];
            let lo = if i == 0 { hi.min(0.0) } else { bounds[i - 1] };
            let last = at(hi);
            if hi <= lo {
                merged[last] += c;
                continue;
            }
            let first = if i == 0 { 0 } else { at(lo) + 1 };
            for (j, slot) in merged.iter_mut().enumerate().take(last + 1).skip(first) {
                let from = if j == 0 { lo } else { union[j - 1].max(lo) };
                *slot += c * (union[j] - from).max(0.0) / (hi - lo);
            }
        }
    }
    (union, merged)
}

/// The `q` quantile of a histogram with explicit bounds, interpolating
/// linearly inside the bucket (the last bucket answers its lower bound).
pub fn histogram_quantile(counts: &[f64], bounds: &[f64], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 || bounds.is_empty() {
        return None;
    }
    let rank = q * total;
    let mut seen = 0f64;
    for (i, &c) in counts.iter().enumerate() {
        if c <= 0.0 {
            continue;
        }
        if seen + c >= rank {
            let lower = if i == 0 {
                bounds[0].min(0.0)
            } else {
                bounds[i - 1]
            };
            let Some(&upper) = bounds.get(i) else {
                return Some(lower);
            };
            let within = (rank - seen) / c;
            return Some(lower + (upper - lower) * within);
        }
        seen += c;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::{histogram_quantile, merge_histograms};

    #[test]
    fn quantiles_from_buckets() {
        // bounds 0,10,100: buckets (-inf,0], (0,10], (10,100], (100,inf)
        let bounds = [0.0, 10.0, 100.0];
        assert_eq!(
            histogram_quantile(&[0., 10., 0., 0.], &bounds, 0.5),
            Some(5.0)
        );
        assert_eq!(
            histogram_quantile(&[0., 5., 5., 0.], &bounds, 0.75),
            Some(55.0)
        );
        assert_eq!(
            histogram_quantile(&[0., 0., 0., 4.], &bounds, 0.99),
            Some(100.0)
        );
        assert_eq!(histogram_quantile(&[0., 0., 0., 0.], &bounds, 0.5), None);
    }

    #[test]
    fn histograms_merge_over_mixed_bounds() {
        // The same bounds: an exact merge.
        let a: (&[f64], &[u64]) = (&[0.0, 10.0, 100.0], &[0, 10, 0, 0]);
        let (b, m) = merge_histograms(&[a, a]);
        assert_eq!(b, vec![0.0, 10.0, 100.0]);
        assert_eq!(m, vec![0.0, 20.0, 0.0, 0.0]);
        // Different bounds: 10 in (0,10] and 10 in (0,20], half of which
        // lies in (0,10]: 15 of 20 below 10, the median inside (0,10].
        let c: (&[f64], &[u64]) = (&[20.0], &[10, 0]);
        let (b, m) = merge_histograms(&[a, c]);
        assert_eq!(b, vec![0.0, 10.0, 20.0, 100.0]);
        assert_eq!(m, vec![0.0, 15.0, 5.0, 0.0, 0.0]);
        let p50 = histogram_quantile(&m, &b, 0.5).unwrap();
        assert!((p50 - 20.0 / 3.0).abs() < 1e-9, "{p50}");
        // Counts that do not fit their bounds are left out, never a panic.
        let bad: (&[f64], &[u64]) = (&[1.0, 2.0], &[1, 2, 3, 4, 5]);
        let (_, m) = merge_histograms(&[bad, a]);
        assert_eq!(m.iter().sum::<f64>(), 10.0);
        let (b, m) = merge_histograms(&[bad]);
        assert_eq!(histogram_quantile(&m, &b, 0.5), None);
    }
}
