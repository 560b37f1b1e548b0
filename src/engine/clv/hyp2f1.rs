//! The Gauss hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1, as the
//! conditional expectations of BG/NBD and MBG/NBD need it (README.md, "Lifetime
//! value and model fits").
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
//! about 400 at z = 0.9, 4,000 at z = 0.99. z stays below 0.95 unless the
//! horizon is many times alpha + T (alpha is in the model's time unit, so the
//! ratio does not depend on it); past [`MAX_TERMS`] terms (z above about
//! 0.9996, a horizon 2,500 times alpha + T) the result is NaN rather than a
//! truncated sum.

/// The most terms summed before giving up (about 0.3 ms).
pub const MAX_TERMS: u32 = 100_000;

/// Relative size of the bounded remainder at which the sum stops.
const EPS: f64 = 1e-17;

/// 2F1(a, b; c; z) for 0 <= z < 1; NaN outside that range, for non-finite
/// arguments, for c a non-positive integer, and when the series has not
/// converged within [`MAX_TERMS`] terms.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !((0.0..1.0).contains(&z) && a.is_finite() && b.is_finite() && c.is_finite()) {
        return f64::NAN;
    }
    let (ea, eb) = (c - a, c - b);
    if (ea * eb).abs() < (a * b).abs() {
        (1.0 - z).powf(c - a - b) * series(ea, eb, c, z)
    } else {
        series(a, b, c, z)
    }
}

/// The power series sum_n (a)_n (b)_n / ((c)_n n!) z^n, summed until the
/// remainder is bounded below `EPS` of the sum; NaN if that takes more than
/// [`MAX_TERMS`] terms or c is a non-positive integer.
///
/// The remainder bound: past n > max(-a, -b) all later terms have one sign
/// and the ratio of consecutive terms, (a + n)(b + n) z / ((c + n)(n + 1)),
/// tends to z monotonically from one side, so it is at most
/// rho = max(current ratio, z) and the remainder at most |term| rho / (1 - rho).
pub fn series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    let settled = (-a).max(-b).max(0.0);
    for n in 0..MAX_TERMS {
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
            let plain = series(pa, pb, c, z) * (1.0 - z).powf(pa);
            proptest::prop_assume!(plain.is_finite() && plain > 1e-250);
            let euler = (1.0 - z).powf(c - pb) * series(c - pa, c - pb, c, z);
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
        assert!(series(0.5, 0.5, 0.2, 1.0 - 1e-7).is_nan());
    }
}
