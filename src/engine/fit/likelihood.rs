//! Per-customer log-likelihoods, as `lifetimes`' fitters write them
//! (docs/lifetime-value.md).
//!
//! Each splits into a part that depends on the parameters and x only (the
//! gamma functions) and a part that also depends on t_x and T: a fit over
//! customers sorted by x computes the first once per distinct x.

use crate::config::{ChurnModelKind, ChurnParams};
use crate::engine::clv::{SpendParams, Summary};

/// ln Γ.
fn ln_gamma(v: f64) -> f64 {
    libm::lgamma(v)
}

/// The part of a customer's BG/NBD or MBG/NBD log-likelihood that depends
/// on x alone: ln[Γ(r + x) alpha^r / Γ(r)] + ln[B(a, b + x (+ 1)) / B(a, b)].
pub fn purchases_by_count(kind: ChurnModelKind, p: &ChurnParams, x: f64) -> f64 {
    let ChurnParams { r, alpha, a, b } = *p;
    let extra = match kind {
        ChurnModelKind::Bgnbd => 0.0,
        ChurnModelKind::Mbgnbd => 1.0,
    };
    ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x + extra)
        - ln_gamma(b)
        - ln_gamma(a + b + x + extra)
}

/// The part that depends on t_x and T: ln[(alpha + T)^-(r + x) + A (alpha + t_x)^-(r + x)]
/// with A = a / (b + x - 1) (BG/NBD, 0 for x = 0) or a / (b + x) (MBG/NBD).
pub fn purchases_by_time(kind: ChurnModelKind, p: &ChurnParams, s: &Summary) -> f64 {
    let ChurnParams { r, alpha, a, b } = *p;
    let Summary { x, t_x, t } = *s;
    let at_t = -(r + x) * (alpha + t).ln();
    let odds = match kind {
        ChurnModelKind::Bgnbd if x > 0.0 => a / (b + x - 1.0),
        ChurnModelKind::Bgnbd => return at_t,
        ChurnModelKind::Mbgnbd => a / (b + x),
    };
    let at_t_x = odds.ln() - (r + x) * (alpha + t_x).ln();
    let top = at_t.max(at_t_x);
    top + ((at_t - top).exp() + (at_t_x - top).exp()).ln()
}

/// One customer's BG/NBD or MBG/NBD log-likelihood.
pub fn purchases(kind: ChurnModelKind, p: &ChurnParams, s: &Summary) -> f64 {
    purchases_by_count(kind, p, s.x) + purchases_by_time(kind, p, s)
}

/// The part of a customer's Gamma-Gamma log-likelihood that depends on x
/// alone: ln Γ(p x + q) - ln Γ(p x) - ln Γ(q) + q ln v + p x ln x.
pub fn spend_by_count(sp: &SpendParams, x: f64) -> f64 {
    let SpendParams { p, q, v } = *sp;
    ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * v.ln() + p * x * x.ln()
}

/// The part that depends on the mean spend m: (p x - 1) ln m - (p x + q) ln(x m + v).
pub fn spend_by_value(sp: &SpendParams, x: f64, m: f64) -> f64 {
    let SpendParams { p, q, v } = *sp;
    (p * x - 1.0) * m.ln() - (p * x + q) * (x * m + v).ln()
}

/// One customer's Gamma-Gamma log-likelihood: x >= 1 repeat purchases with
/// mean value m > 0.
pub fn spend(sp: &SpendParams, x: f64, m: f64) -> f64 {
    spend_by_count(sp, x) + spend_by_value(sp, x, m)
}
