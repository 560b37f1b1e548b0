//! Time to convert: how long customers took from entering a stage to
//! entering the next one of its conversion pair, in fixed buckets from a
//! minute to half a year (docs/outputs.md, "Funnel windows").
//!
//! A window keeps, per pair with a conversion, the count in each bucket
//! ([`Buckets`]); the window's p50 and p90 are estimated from them as
//! Prometheus' `histogram_quantile` does, by linear interpolation inside
//! the bucket that holds the rank, so that the parts of a window add up
//! exactly. The same buckets feed `journeyd_time_to_convert_seconds`.

use crate::model::ConversionTimes;

/// Upper bounds of the buckets, ms: 1 min, 5 min, 15 min, 1 h, 4 h, 12 h,
/// 1 d, 3 d, 7 d, 14 d, 30 d, 90 d, 180 d; a last bucket holds the rest.
pub const BOUNDS_MS: [i64; 13] = [
    60_000,
    300_000,
    900_000,
    3_600_000,
    14_400_000,
    43_200_000,
    86_400_000,
    259_200_000,
    604_800_000,
    1_209_600_000,
    2_592_000_000,
    7_776_000_000,
    15_552_000_000,
];

/// Number of buckets: one per bound and the rest.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Conversions per bucket.
pub type Buckets = [u64; BUCKETS];

/// The bucket of a conversion that took `ms` (negative: 0).
pub fn bucket(ms: i64) -> usize {
    BOUNDS_MS.partition_point(|&bound| bound < ms.max(0))
}

/// The `q` quantile (0 to 1) of `buckets`, ms, interpolated in the
/// bucket that holds it; the last bucket answers with its lower bound.
/// `None` without conversions.
pub fn quantile(buckets: &Buckets, q: f64) -> Option<i64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0 } else { BOUNDS_MS[i - 1] };
            let Some(&upper) = BOUNDS_MS.get(i) else {
                return Some(lower);
            };
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lower + ((upper - lower) as f64 * within).round() as i64);
        }
        below += n;
    }
    BOUNDS_MS.last().copied()
}

/// The window's view of one pair's buckets.
pub fn render(from_stage: &str, to_stage: &str, buckets: &Buckets) -> ConversionTimes {
    ConversionTimes {
        from_stage: from_stage.into(),
        to_stage: to_stage.into(),
        conversions: buckets.iter().sum(),
        buckets: buckets.to_vec(),
        p50_ms: quantile(buckets, 0.5),
        p90_ms: quantile(buckets, 0.9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn a_conversion_falls_into_the_first_bucket_that_bounds_it() {
        assert_eq!(bucket(-5), 0);
        assert_eq!(bucket(MINUTE), 0, "bounds are inclusive");
        assert_eq!(bucket(MINUTE + 1), 1);
        assert_eq!(bucket(7 * 1440 * MINUTE), 8);
        assert_eq!(bucket(i64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let mut b = Buckets::default();
        assert_eq!(quantile(&b, 0.5), None);
        // 10 conversions between 1 and 5 minutes: the median is half way.
        b[1] = 10;
        assert_eq!(quantile(&b, 0.5), Some(3 * MINUTE));
        assert_eq!(quantile(&b, 0.9), Some(MINUTE + 4 * MINUTE * 9 / 10));
        // 10 more beyond 180 days: p90 answers the last bound.
        b[BUCKETS - 1] = 10;
        assert_eq!(quantile(&b, 0.5), Some(5 * MINUTE));
        assert_eq!(quantile(&b, 0.9), Some(BOUNDS_MS[12]));
    }
}
