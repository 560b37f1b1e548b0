//! Customer lifetime value (docs/lifetime-value.md): the
//! buy-till-you-die model's expected number of purchases over a horizon, the
//! Gamma-Gamma expected order value, and their discounted product, computed
//! exactly as the Python `lifetimes` package computes them.
//!
//! Like [`super::churn`], this module owns arithmetic only: no state, no
//! clock, no I/O, and no allocation, so it can run for every purchase. A
//! customer is summarised as in [`super::churn`]: x repeat purchases, the
//! last at t_x, the customer's age T, both in the model's time unit from the
//! first purchase.
//!
//! # Expected purchases
//!
//! For BG/NBD (Fader, Hardie & Lee 2005, eq. 10) and MBG/NBD (Batislam,
//! Denizel & Filiztekin 2007), the expected number of purchases in the next
//! t units is
//!
//! ```text
//! E[X(t) | x, t_x, T] = P(alive) * c / (a - 1) * (1 - 2F1(r + x, b'; c; z) * (1 - z)^(r + x))
//!   z = t / (alpha + T + t)
//!   BG/NBD:  b' = b + x,     c = a + b + x - 1
//!   MBG/NBD: b' = b + x + 1, c = a + b + x
//! ```
//!
//! with P(alive) as in [`super::churn`]. Euler's transformation makes the
//! product 2F1 * (1 - z)^(r + x) equal to (1 - z)^(a - 1) * 2F1(c - r - x,
//! a - 1; c; z), whose parameters do not grow with x ([`hyp2f1`]): that is
//! what is evaluated, so a customer with thousands of purchases neither
//! overflows nor costs more. At a = 1 the closed form is 0/0 (`lifetimes`
//! answers NaN) and near it c / (a - 1) * (1 - ...) loses digits; within
//! 1e-3 of 1 the factor (1 - ...) / (a - 1) is computed from its series
//! with a - 1 divided out instead, exact through a = 1 (with the series in
//! z only, so for a horizon up to about 2,500 times alpha + T).
//!
//! Worked example (BG/NBD, the paper's CDNOW fit r = 0.243, alpha = 4.414,
//! a = 0.793, b = 2.426): a customer with x = 2, t_x = 30.43, T = 38.86
//! weeks is expected to buy 1.226 times in the next 39 weeks, the figure
//! in the paper.
//!
//! # Expected order value
//!
//! Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): with mean spend m
//! over x repeat purchases, E(M) = (1 - w) * v p / (q - 1) + w * m with
//! w = p x / (p x + q - 1); the population mean v p / (q - 1) for x = 0.
//!
//! # Lifetime value, and how it maps onto `lifetimes`
//!
//! `lifetimes`' `customer_lifetime_value(model, frequency, recency, T,
//! monetary_value, time, discount_rate, freq)` cuts the horizon into `time`
//! months of `factor` units each (T in `freq` units; factor 4.345 for `W`,
//! 30 for `D`, 720 for `H`, 1 for `M`), and sums, month k = 1..time, the
//! purchases expected within that month times E(M), divided by
//! (1 + discount_rate)^k. [`Horizon`] is the same with the months' length
//! in the model's time unit ([`Horizon::period`]), and a horizon that need not
//! be a whole number of months: the last, partial month ending at the
//! horizon is discounted by (1 + rate)^(horizon / period). So
//!
//! - `lifetimes(time = 12, discount_rate = d, freq = "W")` with T in weeks
//!   is `Horizon::new(12 * 4.345, 4.345, d)` with the weekly unit, and
//! - the default horizon of 52 weeks with the weekly unit is 11.968 such
//!   months: `Horizon::new(52, 4.345, d)`, with d per month.
//!
//! A horizon of n months costs n + 1 evaluations of the series.

mod hyp2f1;

pub use self::hyp2f1::{MAX_TERMS, hyp2f1};

use crate::config::{ChurnModelKind, ChurnParams};

/// A customer's purchases as the models see them (the lifetimes names in
/// brackets).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// Repeat purchases (`frequency`).
    pub x: f64,
    /// Time of the last purchase since the first (`recency`).
    pub t_x: f64,
    /// The customer's age: now, since the first purchase (`T`).
    pub t: f64,
}

/// Larger counts and times are refused rather than computed into overflow.
pub const MAX_VALUE: f64 = 1e9;

impl Summary {
    /// What makes the summary impossible, if anything: x must be a whole
    /// number, 0 <= t_x <= T, t_x = 0 without repeat purchases, all finite
    /// and at most [`MAX_VALUE`].
    pub fn check(&self) -> Result<(), &'static str> {
        let Summary { x, t_x, t } = *self;
        if !(x.is_finite() && t_x.is_finite() && t.is_finite()) {
            return Err("x, t_x and T must be finite numbers");
        }
        if x < 0.0 || x.fract() != 0.0 {
            return Err("x must be a whole number of repeat purchases, 0 or more");
        }
        if t_x < 0.0 || t_x > t {
            return Err("t_x must lie between 0 and T");
        }
        if x == 0.0 && t_x != 0.0 {
            return Err("t_x must be 0 without repeat purchases");
        }
        if x > MAX_VALUE || t > MAX_VALUE {
            return Err("x and T must be at most 1e9");
        }
        Ok(())
    }
}

/// Gamma-Gamma spend parameters (lifetimes' p, q, v; v is the papers' gamma).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendParams {
    /// Shape of the spend per transaction given the customer's mean.
    pub p: f64,
    /// Shape of the customers' scale parameter across the population.
    pub q: f64,
    /// Rate of the customers' scale parameter across the population.
    pub v: f64,
}

impl SpendParams {
    /// The CDNOW fit of Fader, Hardie & Lee (2005).
    pub const CDNOW: SpendParams = SpendParams {
        p: 6.25,
        q: 3.74,
        v: 15.44,
    };
}

/// A buy-till-you-die model with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PurchaseModel {
    /// BG/NBD or MBG/NBD.
    pub kind: ChurnModelKind,
    /// r, alpha, a, b.
    pub params: ChurnParams,
}

/// How far ahead lifetime value looks, and how it is discounted: see the
/// module docs for the mapping onto `lifetimes`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Horizon {
    /// The horizon in model time units.
    length: f64,
    /// The discounting period (`lifetimes`' month) in model time units.
    period: f64,
    /// Discount rate per period.
    rate: f64,
    /// Number of periods, the last possibly partial.
    periods: u32,
}

/// The most periods a horizon may have (each costs a series evaluation).
pub const MAX_PERIODS: u32 = 10_000;

impl Horizon {
    /// `None` unless `length` and `period` are positive and finite, `rate`
    /// is finite and above -1, and there are at most [`MAX_PERIODS`] periods.
    pub fn new(length: f64, period: f64, rate: f64) -> Option<Horizon> {
        let valid = length > 0.0 && length.is_finite() && period > 0.0 && period.is_finite();
        if !(valid && rate > -1.0 && rate.is_finite()) {
            return None;
        }
        // A whole number of periods computed as time * factor must not gain
        // a sliver of a period from rounding.
        let periods = (length / period * (1.0 - 1e-12)).ceil();
        (periods >= 1.0 && periods <= f64::from(MAX_PERIODS)).then_some(Horizon {
            length,
            period,
            rate,
            periods: periods as u32,
        })
    }

    /// The horizon in model time units.
    pub fn length(&self) -> f64 {
        self.length
    }

    /// The discounting period in model time units.
    pub fn period(&self) -> f64 {
        self.period
    }
}

/// One customer's lifetime value over a [`Horizon`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LifetimeValue {
    /// Expected purchases within the horizon (undiscounted).
    pub expected_purchases: f64,
    /// Expected value of one purchase (Gamma-Gamma).
    pub expected_order_value: f64,
    /// The discounted sum of expected purchases times order value.
    pub value: f64,
}

impl PurchaseModel {
    /// Expected purchases in the next `horizon` units (`lifetimes`'
    /// `conditional_expected_number_of_purchases_up_to_time`), and at
    /// a = 1 its limit. NaN for invalid input or parameters.
    pub fn expected_purchases(&self, s: &Summary, horizon: f64) -> f64 {
        let ChurnParams { r, alpha, a, b } = self.params;
        let Summary { x, t_x, t } = *s;
        let (c, odds) = match self.kind {
            ChurnModelKind::Bgnbd if x > 0.0 => (a + b + x - 1.0, a / (b + x - 1.0)),
            ChurnModelKind::Bgnbd => (a + b + x - 1.0, 0.0),
            ChurnModelKind::Mbgnbd => (a + b + x, a / (b + x)),
        };
        if horizon == 0.0 {
            return 0.0;
        }
        // 1 - z, computed as the ratio rather than by subtraction.
        let keep = (alpha + t) / (alpha + t + horizon);
        let z = horizon / (alpha + t + horizon);
        let alive = 1.0 + odds * ((alpha + t) / (alpha + t_x)).powf(r + x);
        c * gone_over_a_minus_1(c - r - x, a - 1.0, c, z, keep) / alive
    }

    /// Lifetime value as `lifetimes`' `customer_lifetime_value` computes it,
    /// for a customer whose repeat purchases averaged `monetary`.
    pub fn lifetime_value(
        &self,
        spend: &SpendParams,
        s: &Summary,
        monetary: f64,
        h: &Horizon,
    ) -> LifetimeValue {
        let order = expected_order_value(spend, s.x, monetary);
        let mut value = 0.0;
        let mut before = 0.0;
        for k in 1..=h.periods {
            let end = if k == h.periods {
                h.length
            } else {
                f64::from(k) * h.period
            };
            let upto = self.expected_purchases(s, end);
            value += order * (upto - before) / (1.0 + h.rate).powf(end / h.period);
            before = upto;
        }
        LifetimeValue {
            expected_purchases: before,
            expected_order_value: order,
            value,
        }
    }
}

/// (1 - keep^e 2F1(a', e; c; z)) / e with e = a - 1 and keep = 1 - z: the
/// factor of the expected purchases that is 0/0 at a = 1. Near a = 1 it is
/// -expm1(e ln keep) / e - keep^e (2F1 - 1) / e, each part exact through
/// e = 0 ([`hyp2f1::excess_over_b`]).
fn gone_over_a_minus_1(a1: f64, e: f64, c: f64, z: f64, keep: f64) -> f64 {
    if e.abs() >= NEAR_A_1 {
        return (1.0 - keep.powf(e) * hyp2f1::sum(a1, e, c, z, keep)) / e;
    }
    let l = keep.ln();
    let first = if e == 0.0 { -l } else { -(e * l).exp_m1() / e };
    first - (e * l).exp() * hyp2f1::excess_over_b(a1, e, c, z, MAX_TERMS)
}

/// How close to 1 a must be for [`gone_over_a_minus_1`]'s limit form (the
/// closed form loses about 1e-16 / |a - 1| of its precision).
const NEAR_A_1: f64 = 1e-3;

/// Gamma-Gamma expected value of one purchase for a customer with `x` repeat
/// purchases averaging `monetary` (`lifetimes`' `conditional_expected_average_profit`).
pub fn expected_order_value(spend: &SpendParams, x: f64, monetary: f64) -> f64 {
    let SpendParams { p, q, v } = *spend;
    let weight = p * x / (p * x + q - 1.0);
    let population = v * p / (q - 1.0);
    (1.0 - weight) * population + weight * monetary
}

#[cfg(test)]
mod tests;
