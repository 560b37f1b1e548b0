//! The Gauss hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1, as the
//! conditional expectations of BG/NBD and MBG/NBD need it (docs/lifetime-value.md).
//!
//! There the arguments are a = r + x, b = b + x (+ 1), c = a + b + x (- 1)
//! and z = t / (alpha + T + t): a and b grow with the number of repeat
//! purchases x, and the plain series then climbs through terms of size up to
//! (1 - z)^-x before it converges (for x = 1000 at z = 0.9 that overflows).
//! Euler's transformation
//!
//! ```text
//! 2F1(a, b; c; z) = (1 - z)^(c - a - b) * 2F1(c - a, c - b; c; z)
//! ```
//!
//! turns the numerator parameters into c - a = a + b - 1 - r and c - b = a - 1,
//! which do not grow with x, while the denominator c does: the transformed
//! series converges faster the more purchases a customer has. [`hyp2f1`]
//! sums whichever form has the smaller numerator product.
//!
//! The series converges like z^n, so the number of terms grows as z nears 1:
//! about 350 at z = 0.9, 3,500 at z = 0.99. z = t / (alpha + T + t) nears 1
//! when the horizon is many times alpha + T: for a new customer (T = 0) of a
//! business whose customers buy often in the model's time unit (alpha small).
//! Above z = 0.98, or when [`QUICK_TERMS`] terms do not suffice and z > 0.9,
//! the connection formula to 1 - z (Abramowitz & Stegun 15.3.6)
//!
//! ```text
//! 2F1(a, b; c; z) = G(c, m; c - a, c - b) 2F1(a, b; 1 - m; 1 - z)
//!                 + (1 - z)^m G(c, -m; a, b) 2F1(c - a, c - b; 1 + m; 1 - z)
//!   m = c - a - b,  G(p, q; u, v) = Γ(p) Γ(q) / (Γ(u) Γ(v))
//! ```
//!
//! sums two series in 1 - z instead, which converge at once (unless c is
//! large: then the series in z, which converges fast, is used after all).
//! At an integer m
//! the two terms' gamma functions have poles that cancel (the formula needs
//! logarithmic terms there instead); for m within 1e-6 of an integer (for
//! the expectations: r - a an integer) the series in z goes on, up to
//! [`MAX_TERMS`] terms (z up to about 0.9996), and beyond that the result is
//! NaN rather than a truncated sum. Near such m the cancellation costs
//! little: at 1e-6 from an integer the result is still good to 3e-15.

use libm::lgamma_r;

/// Terms summed before trying the connection formula.
pub const QUICK_TERMS: u32 = 2_000;

/// The most terms summed before giving up (about 0.3 ms).
pub const MAX_TERMS: u32 = 100_000;

/// Relative size of the bounded remainder at which the sum stops.
const EPS: f64 = 1e-17;

/// 2F1(a, b; c; z) for 0 <= z < 1; NaN outside that range, for non-finite
/// arguments, for c a non-positive integer, and when it cannot be summed
/// (see the module docs).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !((0.0..1.0).contains(&z) && a.is_finite() && b.is_finite() && c.is_finite()) {
        return f64::NAN;
    }
    let (ea, eb) = (c - a, c - b);
    if (ea * eb).abs() < (a * b).abs() {
        (1.0 - z).powf(c - a - b) * sum(ea, eb, c, z, 1.0 - z)
    } else {
        sum(a, b, c, z, 1.0 - z)
    }
}

/// 2F1(a, b; c; z) with `w` = 1 - z given separately (a caller that has
/// it as a ratio keeps its precision): the series in z, or the connection
/// formula when that converges too slowly.
pub fn sum(a: f64, b: f64, c: f64, z: f64, w: f64) -> f64 {
    // The series in z needs about ln(1e-17) / ln(z) terms, more than
    // QUICK_TERMS above z = 0.98 unless c is large (many purchases).
    if z > 0.98
        && let Some(v) = near_one(a, b, c, w)
    {
        return v;
    }
    let quick = series(a, b, c, z, QUICK_TERMS);
    if !quick.is_nan() {
        return quick;
    }
    if z > 0.9
        && let Some(v) = near_one(a, b, c, w)
    {
        return v;
    }
    series(a, b, c, z, MAX_TERMS)
}

/// The connection formula to 1 - z = `w`; `None` when c - a - b is within
/// 1e-3 of an integer or a part is not finite.
fn near_one(a: f64, b: f64, c: f64, w: f64) -> Option<f64> {
    let m = c - a - b;
    if (m - m.round()).abs() < 1e-6 {
        return None;
    }
    let first = gamma_ratio([c, m], [c - a, c - b]) * series(a, b, 1.0 - m, w, QUICK_TERMS);
    let second =
        w.powf(m) * gamma_ratio([c, -m], [a, b]) * series(c - a, c - b, 1.0 + m, w, QUICK_TERMS);
    let v = first + second;
    v.is_finite().then_some(v)
}

/// Γ(p) Γ(q) / (Γ(u) Γ(v)), through logarithms so large arguments do not
/// overflow; 0 when u or v is a pole of Γ (a non-positive integer), NaN
/// when p or q is.
fn gamma_ratio([p, q]: [f64; 2], [u, v]: [f64; 2]) -> f64 {
    let pole = |x: f64| x <= 0.0 && x.fract() == 0.0;
    if pole(p) || pole(q) {
        return f64::NAN;
    }
    if pole(u) || pole(v) {
        return 0.0;
    }
    let [(lp, sp), (lq, sq), (lu, su), (lv, sv)] = [p, q, u, v].map(lgamma_r);
    f64::from(sp * sq * su * sv) * (lp + lq - lu - lv).exp()
}

/// The power series sum_n (a)_n (b)_n / ((c)_n n!) z^n, summed until the
/// remainder is bounded below `EPS` of the sum; NaN if that takes more than
/// `max_terms` terms or c is a non-positive integer.
///
/// The remainder bound: past n > max(-a, -b, -c) all later terms have one
/// sign and the ratio of consecutive terms, (a + n)(b + n) z / ((c + n)(n + 1)),
/// tends to z monotonically from one side, so it is at most
/// rho = max(current ratio, z) and the remainder at most |term| rho / (1 - rho).
pub fn series(a: f64, b: f64, c: f64, z: f64, max_terms: u32) -> f64 {
    terms(a, b, c, z, 1.0, 0, max_terms)
}

/// (2F1(a, b; c; z) - 1) / b, exact also at b = 0 (where it is the
/// derivative in b): the series from its n = 1 term, a z / c once b is
/// divided out. NaN as for [`series`].
pub fn excess_over_b(a: f64, b: f64, c: f64, z: f64, max_terms: u32) -> f64 {
    terms(a, b, c, z, a * z / c, 1, max_terms)
}

/// The hypergeometric series from its term number `first_n`, which is
/// `first`: each next term is the previous times
/// (a + n)(b + n) z / ((c + n)(n + 1)).
fn terms(a: f64, b: f64, c: f64, z: f64, first: f64, first_n: u32, max_terms: u32) -> f64 {
    let mut term = first;
    let mut sum = first;
    if term == 0.0 {
        return sum;
    }
    let settled = (-a).max(-b).max(-c).max(0.0);
    for n in first_n..max_terms {
        let n = f64::from(n);
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        if term == 0.0 {
            // a or b is a non-positive integer: the series ends here.
            return sum;
        }
        if !sum.is_finite() {
            return f64::NAN;
        }
        let rho = ratio.abs().max(z);
        if n + 1.0 > settled && rho < 1.0 && term.abs() * rho <= EPS * (1.0 - rho) * sum.abs() {
            return sum;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from scipy.special.hyp2f1 (scipy 1.17), checked
    /// against mpmath.hyp2f1 at 30 digits.
    /// Reference values from mpmath.hyp2f1 at 30 digits (scipy's
    /// hyp2f1 agrees with them to 1e-14).
    const MPMATH: &[(f64, f64, f64, f64, f64)] = &[
        // (a, b, c, z, 2F1)
        (0.243, 2.426, 2.219, 0.5, 1.2070970070440423),
        (2.243, 4.426, 5.219, 0.1, 1.2209705238375083),
        (10.525, 12.614, 12.505, 0.7, 358_587.317_623_009_3),
        (100.243, 102.426, 102.219, 0.9, 2.8081262418659924e+100),
        (0.525, 2.614, 2.505, 0.95, 5.554_193_092_323_212),
        (1.5, -0.2, 3.1, 0.99, 0.8566821947454777),
        (1.0, 1.0, 2.0, 0.5, 1.3862943611198906),
        (50.243, 52.426, 52.219, 0.9, 2.7981010719674782e+50),
        (0.525, 2.614, 2.505, 0.98, 9.660_534_709_252_681),
    ];

    #[test]
    fn agrees_with_mpmath() {
        for &(a, b, c, z, want) in MPMATH {
            let got = hyp2f1(a, b, c, z);
            let rel = ((got - want) / want).abs();
            assert!(
                rel < 1e-12,
                "2F1({a}, {b}; {c}; {z}) = {got}, want {want} ({rel:e})"
            );
        }
    }

    #[test]
    fn near_one_agrees_with_mpmath() {
        // (a, b, c, z, 2F1): the transformed parameters of BG/NBD (x = 0)
        // and MBG/NBD (x = 1) with the CDNOW fits, the plain BG/NBD ones,
        // and c - a - b = 1, where the connection formula cannot be used
        // and the series in z goes on.
        let cases = [
            (1.976, -0.207, 2.219, 0.9999, 0.475_407_526_206_261_7),
            (1.976, -0.207, 2.219, 0.999999, 0.465_561_038_711_436_06),
            (1.98, -0.109, 3.505, 0.99999, 0.895_304_399_420_160_8),
            (1.0, -0.7, 1.3, 0.999, 0.302_065_416_184_953_65),
            (0.243, 2.426, 2.219, 0.99999, 83.249_347_494_311_47),
            // c - a - b = 1.0001, 1.00001, 1.000001: the connection
            // formula's cancelling poles cost digits, about 1e-16 / 1e-5.
            (1.0, -0.7, 1.3001, 0.99999, 0.300_100_297_102_804_85),
            (1.0, -0.7, 1.30001, 0.99999, 0.300_037_318_670_542_1),
            (1.0, -0.7, 1.300001, 0.99999, 0.300_031_020_204_285_4),
        ];
        for (a, b, c, z, want) in cases {
            let got = hyp2f1(a, b, c, z);
            let rel = ((got - want) / want).abs();
            println!("2F1({a}, {b}; {c}; {z}): relative error {rel:e}");
            assert!(
                rel < 1e-10,
                "2F1({a}, {b}; {c}; {z}) = {got}, want {want} ({rel:e})"
            );
        }
    }

    #[test]
    fn closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z; 2F1(a, b; b; z) = (1 - z)^-a.
        for z in [0.0_f64, 1e-9, 0.3, 0.9, 0.999] {
            let want = if z == 0.0 { 1.0 } else { -(-z).ln_1p() / z };
            let got = hyp2f1(1.0, 1.0, 2.0, z);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "z {z}: {got} vs {want}"
            );
            let want = (1.0 - z).powf(-0.7);
            let got = hyp2f1(0.7, 3.3, 3.3, z);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "z {z}: {got} vs {want}"
            );
        }
        // A terminating series: 2F1(-2, b; c; z) = 1 - 2bz/c + b(b+1)z^2/(c(c+1)).
        let (b, c, z) = (1.5, 2.5, 0.4);
        let want = 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0));
        assert!((hyp2f1(-2.0, b, c, z) - want).abs() < 1e-15);
    }

    proptest::proptest! {
        /// Near z = 1, with the transformed parameters of the expectations,
        /// whatever [`sum`] chooses equals the series in z summed to the end.
        #[test]
        fn near_one_equals_the_long_series(
            r in 0.05f64..5.0,
            a in 0.1f64..10.0,
            b in 0.1f64..10.0,
            x in 0u32..300,
            modified in proptest::bool::ANY,
            w in 0.0005f64..0.1,
        ) {
            let x = f64::from(x);
            let c = a + b + x - if modified { 0.0 } else { 1.0 };
            proptest::prop_assume!(c > 0.0 && (a - 1.0).abs() > 1e-3);
            let (ea, eb, z) = (c - r - x, a - 1.0, 1.0 - w);
            let long = series(ea, eb, c, z, MAX_TERMS);
            proptest::prop_assume!(long.is_finite());
            let got = sum(ea, eb, c, z, w);
            let rel = ((got - long) / long).abs();
            proptest::prop_assert!(rel < 1e-9, "{got} vs {long}: {rel:e}");
        }

        /// Over the parameters the conditional expectations use, the
        /// transformed series equals the plain one wherever the plain one
        /// is representable.
        #[test]
        fn euler_form_equals_the_plain_series(
            r in 0.05f64..5.0,
            a in 0.1f64..10.0,
            b in 0.1f64..10.0,
            x in 0u32..300,
            modified in proptest::bool::ANY,
            z in 0.0f64..0.95,
        ) {
            let x = f64::from(x);
            let (pa, pb) = (r + x, b + x + if modified { 1.0 } else { 0.0 });
            let c = a + pb - 1.0;
            proptest::prop_assume!(c > 0.0);
            // Near overflow (1e308) the plain series itself goes wrong
            // (x = 270, z = 0.93: 7.6e-9 off mpmath, the Euler form 3e-14).
            let long = series(pa, pb, c, z, MAX_TERMS);
            proptest::prop_assume!(long < 1e200);
            let plain = long * (1.0 - z).powf(pa);
            proptest::prop_assume!(plain.is_finite() && plain > 1e-250);
            let euler = (1.0 - z).powf(c - pb) * series(c - pa, c - pb, c, z, MAX_TERMS);
            let rel = ((euler - plain) / plain).abs();
            proptest::prop_assert!(rel < 1e-9, "{euler} vs {plain}: {rel:e}");
        }
    }

    #[test]
    fn outside_the_range_is_nan_not_a_guess() {
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_nan());
        assert!(hyp2f1(1.0, 1.0, 2.0, -0.1).is_nan());
        assert!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_nan());
        assert!(hyp2f1(1.0, 1.0, 2.0, f64::INFINITY).is_nan());
        // Converges too slowly to sum: NaN instead of a truncated value.
        assert!(series(0.5, 0.5, 0.2, 1.0 - 1e-7, MAX_TERMS).is_nan());
    }
}
