//! Maximum-likelihood fits of the churn model (BG/NBD or MBG/NBD: r, alpha, a,
//! b) and of the Gamma-Gamma spend model (p, q, v) to customers' purchase
//! summaries (docs/lifetime-value.md).
//!
//! The likelihoods are `lifetimes`' ([`likelihood`]), and so is the
//! method: the mean negative log-likelihood is minimised over the
//! logarithms of the parameters (so they stay positive), with times
//! scaled so the oldest customer's age is 1 and spend so its mean is 1 (the
//! scale parameters alpha and v are scaled back afterwards; the maximum
//! does not move). The optimiser is `argmin`'s Nelder-Mead, which needs no
//! gradient, restarted from its best point until a restart no longer
//! improves: the simplex can stall on the long, flat ridge along which a
//! and b trade off.
//!
//! Fitting is deterministic (the same input gives the same bits), copies
//! its input once (sorted by x, so the gamma functions are evaluated once
//! per distinct x and evaluation, not per customer) and is meant to run off
//! the event path. It never panics: input it cannot fit is a [`FitError`]
//! naming why.

pub mod likelihood;
mod optimize;
pub mod simulate;

use crate::config::{ChurnModelKind, ChurnParams};
use crate::engine::clv::{PurchaseModel, SpendParams, Summary};

use self::optimize::minimize;

/// Why a fit has no answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Nothing to fit.
    #[error("no customers to fit")]
    Empty,
    /// A customer's summary is impossible.
    #[error("customer {index} (from 0): {reason}")]
    Invalid {
        /// Position in the input.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Without repeat purchases the likelihood has no maximum.
    #[error("no customer has a repeat purchase{0}: the model cannot be fitted")]
    NoRepeatPurchases(&'static str),
    /// The ages are all 0: there is no time to learn a rate from.
    #[error("every customer's age (T) is 0")]
    NoTime,
    /// The likelihood grows without bound as a parameter runs to 0 or
    /// infinity: the data cannot tell its value (say, everybody buys alike).
    #[error("the likelihood has no maximum at a finite {0}: the data cannot determine it")]
    Unbounded(&'static str),
    /// No parameters tried gave a finite likelihood (extreme magnitudes).
    #[error("the likelihood is not finite at any parameters tried")]
    NotFinite,
}

/// Fitted churn-model parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PurchaseFit {
    /// The model with the fitted parameters.
    pub model: PurchaseModel,
    /// The log-likelihood summed over the customers, at those parameters.
    pub log_likelihood: f64,
    /// Customers fitted.
    pub customers: usize,
    /// Evaluations of the likelihood the fit took.
    pub evaluations: u64,
}

/// A customer as the spend model sees them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spend {
    /// Repeat purchases.
    pub x: f64,
    /// Their mean value.
    pub monetary: f64,
}

/// Fitted Gamma-Gamma parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendFit {
    /// p, q, v.
    pub params: SpendParams,
    /// The log-likelihood summed over the customers fitted.
    pub log_likelihood: f64,
    /// Customers fitted: those with at least one repeat purchase.
    pub customers: usize,
    /// Evaluations of the likelihood the fit took.
    pub evaluations: u64,
}

pub use crate::engine::clv::MAX_VALUE;

/// How far from 0 a log-parameter may end up before the maximum counts as
/// lying at 0 or infinity (e^30 is about 1e13).
const LOG_BOUND: f64 = 30.0;

/// Fits `kind` to the customers' summaries.
pub fn fit_purchases(kind: ChurnModelKind, data: &[Summary]) -> Result<PurchaseFit, FitError> {
    if data.is_empty() {
        return Err(FitError::Empty);
    }
    for (index, s) in data.iter().enumerate() {
        s.check()
            .map_err(|reason| FitError::Invalid { index, reason })?;
    }
    if data.iter().all(|s| s.x == 0.0) {
        return Err(FitError::NoRepeatPurchases(""));
    }
    let oldest = data.iter().fold(0.0_f64, |m, s| m.max(s.t));
    if oldest == 0.0 {
        return Err(FitError::NoTime);
    }
    let mut scaled: Vec<Summary> = data
        .iter()
        .map(|s| Summary {
            x: s.x,
            t_x: s.t_x / oldest,
            t: s.t / oldest,
        })
        .collect();
    scaled.sort_by(|l, r| l.x.total_cmp(&r.x));
    let params = |v: &[f64]| ChurnParams {
        r: v[0].exp(),
        alpha: v[1].exp(),
        a: v[2].exp(),
        b: v[3].exp(),
    };
    let cost = |v: &[f64]| -mean_purchases_ll(kind, &params(v), &scaled);
    let best = minimize(cost, &[0.0; 4]);
    bounded(&best.point, &["r", "alpha", "a", "b"])?;
    let mut fitted = params(&best.point);
    fitted.alpha *= oldest;
    let log_likelihood = data
        .iter()
        .map(|s| likelihood::purchases(kind, &fitted, s))
        .sum();
    if !f64::is_finite(log_likelihood) {
        return Err(FitError::NotFinite);
    }
    Ok(PurchaseFit {
        model: PurchaseModel {
            kind,
            params: fitted,
        },
        log_likelihood,
        customers: data.len(),
        evaluations: best.evaluations,
    })
}

/// Fits the Gamma-Gamma model to the customers with at least one repeat
/// purchase (the others carry no information on spend and are skipped).
pub fn fit_spend(data: &[Spend]) -> Result<SpendFit, FitError> {
    if data.is_empty() {
        return Err(FitError::Empty);
    }
    for (index, s) in data.iter().enumerate() {
        check_spend(s).map_err(|reason| FitError::Invalid { index, reason })?;
    }
    let mut repeat: Vec<Spend> = data.iter().copied().filter(|s| s.x > 0.0).collect();
    if repeat.is_empty() {
        return Err(FitError::NoRepeatPurchases(" with a value"));
    }
    let mean = repeat.iter().map(|s| s.monetary).sum::<f64>() / repeat.len() as f64;
    for s in &mut repeat {
        s.monetary /= mean;
    }
    repeat.sort_by(|l, r| l.x.total_cmp(&r.x));
    let params = |v: &[f64]| SpendParams {
        p: v[0].exp(),
        q: v[1].exp(),
        v: v[2].exp(),
    };
    let cost = |v: &[f64]| -mean_spend_ll(&params(v), &repeat);
    let best = minimize(cost, &[0.0; 3]);
    bounded(&best.point, &["p", "q", "v"])?;
    let mut fitted = params(&best.point);
    fitted.v *= mean;
    let log_likelihood = data
        .iter()
        .filter(|s| s.x > 0.0)
        .map(|s| likelihood::spend(&fitted, s.x, s.monetary))
        .sum();
    if !f64::is_finite(log_likelihood) {
        return Err(FitError::NotFinite);
    }
    Ok(SpendFit {
        params: fitted,
        log_likelihood,
        customers: repeat.len(),
        evaluations: best.evaluations,
    })
}

/// What makes a spend summary impossible, if anything.
fn check_spend(s: &Spend) -> Result<(), &'static str> {
    if !(s.x.is_finite() && s.monetary.is_finite()) {
        return Err("x and monetary must be finite numbers");
    }
    if s.x < 0.0 || s.x.fract() != 0.0 {
        return Err("x must be a whole number of repeat purchases, 0 or more");
    }
    if s.x > 0.0 && s.monetary <= 0.0 {
        return Err("monetary must be positive with repeat purchases");
    }
    if s.x > MAX_VALUE || s.monetary > MAX_VALUE * MAX_VALUE {
        return Err("x must be at most 1e9 and monetary at most 1e18");
    }
    Ok(())
}

/// An error naming the first parameter whose logarithm ran off.
fn bounded(point: &[f64], names: &[&'static str]) -> Result<(), FitError> {
    match point
        .iter()
        .zip(names)
        .find(|(v, _)| v.is_nan() || v.abs() >= LOG_BOUND)
    {
        Some((_, name)) => Err(FitError::Unbounded(name)),
        None => Ok(()),
    }
}

/// The mean log-likelihood of customers sorted by x.
fn mean_purchases_ll(kind: ChurnModelKind, p: &ChurnParams, sorted: &[Summary]) -> f64 {
    let mut total = 0.0;
    let mut count_part = (f64::NAN, 0.0);
    for s in sorted {
        if s.x != count_part.0 {
            count_part = (s.x, likelihood::purchases_by_count(kind, p, s.x));
        }
        total += count_part.1 + likelihood::purchases_by_time(kind, p, s);
    }
    total / sorted.len() as f64
}

/// The mean Gamma-Gamma log-likelihood of customers sorted by x.
fn mean_spend_ll(p: &SpendParams, sorted: &[Spend]) -> f64 {
    let mut total = 0.0;
    let mut count_part = (f64::NAN, 0.0);
    for s in sorted {
        if s.x != count_part.0 {
            count_part = (s.x, likelihood::spend_by_count(p, s.x));
        }
        total += count_part.1 + likelihood::spend_by_value(p, s.x, s.monetary);
    }
    total / sorted.len() as f64
}

#[cfg(test)]
mod tests;
