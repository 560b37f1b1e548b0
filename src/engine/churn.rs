//! Churn risk (docs/configuration.md, `[churn]`): the buy-till-you-die probability that a
//! customer is still active, negative signals on the logit scale, bands with
//! hysteresis, and the event time at which time alone moves a customer into
//! the next band.
//!
//! This module owns the arithmetic only. It keeps no per-customer state, reads
//! no clock (`now` is always an argument), does no I/O and allocates nothing;
//! which signals are active, and the timers, belong to the caller.
//!
//! # The math, with a worked example
//!
//! Take the default model (`mbgnbd`, CDNOW fit r = 0.525, alpha = 6.183,
//! a = 0.891, b = 1.614, time unit one week) and a customer with three
//! purchases: the first at week 0 and the last at week 10, so x = 2 repeat
//! purchases and t_x = 10. With A = a / (b + x) = 0.2465 and k = r + x = 2.525,
//!
//! ```text
//! P(alive | T) = 1 / (1 + A * ((alpha + T) / (alpha + t_x))^k)
//! logit(risk)  = ln(1 - P) - ln(P) = ln A + k * ln((alpha + T) / (alpha + t_x))
//! ```
//!
//! so the logit of the base risk is a logarithm of T, and negative signals add
//! their weights to it: risk = sigmoid(ln A + k ln(...) + signal_logit). Right
//! after the last purchase (T = t_x) the risk is A / (1 + A) = 0.198: `low`.
//! The risk only grows with T, and solving for a threshold theta gives
//!
//! ```text
//! T* = (alpha + t_x) * exp((logit(theta) - ln A - signal_logit) / k) - alpha
//! ```
//!
//! | threshold    | no signal  | support_ticket (+0.4) | payment_failed (+1.0) |
//! |--------------|------------|-----------------------|-----------------------|
//! | medium (0.3) | week 13.96 | week 11.01            | (week 7.37)           |
//! | high (0.6)   | week 26.90 | week 22.06            | week 16.08            |
//!
//! T is never less than t_x: with a failed payment the closed form's week
//! 7.37 lies before the last purchase, so that customer is `medium` as soon as
//! the signal arrives, and `high` at week 16.08.
//!
//! [`ChurnModel::next_band_change`] turns T* into an event time (rounded up to
//! the millisecond) and then checks it against [`ChurnModel::assess`] and
//! [`ChurnModel::band`] themselves, so a timer set at the returned time sees
//! exactly the band change it was set for, one millisecond earlier does not.
//!
//! With `bgnbd` a customer without repeat purchases has A = 0: P(alive) is 1,
//! the risk is 0 whatever the signals (0 has no logit to shift), and time alone
//! never changes the band.

use crate::config::{ChurnConfig, ChurnModelKind, ChurnParams};
use crate::model::{Band, EventTime};

/// The buy-till-you-die model and band thresholds, compiled from the config.
#[derive(Clone, Debug, PartialEq)]
pub struct ChurnModel {
    /// Which closed form gives P(alive).
    kind: ChurnModelKind,
    /// The fitted (or default CDNOW) parameters.
    params: ChurnParams,
    /// Length of the model's time unit in milliseconds (t_x and T are in it).
    unit_ms: f64,
    /// Risk at which `medium` starts.
    medium: f64,
    /// Risk at which `high` starts.
    high: f64,
    /// How far below a band's lower bound risk must fall to leave it.
    hysteresis: f64,
}

/// What the model needs to know about a customer's purchases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurchaseHistory {
    /// Number of purchases, at least 1; `purchases - 1` are repeat purchases.
    pub purchases: u32,
    /// Event time of the first purchase: the origin of t_x and T.
    pub first: EventTime,
    /// Event time of the latest purchase: t_x.
    pub last: EventTime,
}

impl PurchaseHistory {
    /// A customer with one purchase at `at`.
    pub fn first_purchase(at: EventTime) -> Self {
        PurchaseHistory {
            purchases: 1,
            first: at,
            last: at,
        }
    }

    /// Counts another purchase; a late one (out of event-time order) may move
    /// `first` back or leave `last` unchanged.
    pub fn record(&mut self, at: EventTime) {
        self.purchases = self.purchases.saturating_add(1);
        self.first = self.first.min(at);
        self.last = self.last.max(at);
    }

    /// x: the number of repeat purchases.
    pub fn repeat_purchases(&self) -> u32 {
        self.purchases.saturating_sub(1)
    }
}

/// The churn risk of one customer at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// In [0, 1]: 1 - P(alive), raised by signals, or 1 when cancelled.
    pub risk: f64,
    /// The model's probability that the customer is still active.
    pub p_alive: f64,
}

impl ChurnModel {
    /// Compiles the churn config. Parameters are expected to be positive
    /// (config validation checks them); other values never panic here, they
    /// only give meaningless risks.
    pub fn new(cfg: &ChurnConfig) -> Self {
        let unit_ms = cfg.time_unit.as_secs_f64() * 1000.0;
        ChurnModel {
            kind: cfg.model,
            params: cfg.effective_params(),
            // A zero unit would divide by zero; validation rejects it.
            unit_ms: if unit_ms > 0.0 { unit_ms } else { 1.0 },
            medium: cfg.bands.medium,
            high: cfg.bands.high,
            hysteresis: cfg.bands.hysteresis,
        }
    }

    /// P(alive) for `x` repeat purchases, the last at `t_x`, evaluated at `t`
    /// (both in model units from the first purchase; `t` is clamped to at
    /// least `t_x`).
    pub fn p_alive(&self, x: u32, t_x: f64, t: f64) -> f64 {
        let a = self.odds_factor(x);
        if a == 0.0 {
            return 1.0;
        }
        let p = 1.0 / (1.0 + a * self.ratio(t_x, t).powf(self.exponent(x)));
        // Only invalid parameters leave (0, 1]; keep the output a probability.
        if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
    }

    /// The risk at `now`: 1 - P(alive), then `signal_logit` (the summed
    /// weights of the active negative signals) added on the logit scale;
    /// `cancelled` sets it to 1.
    pub fn assess(
        &self,
        h: &PurchaseHistory,
        signal_logit: f64,
        cancelled: bool,
        now: EventTime,
    ) -> Assessment {
        let x = h.repeat_purchases();
        let t_x = self.units(h.last.since(h.first).max(0));
        let t = self.units(now.since(h.first));
        let p_alive = self.p_alive(x, t_x, t);
        let risk = if cancelled {
            1.0
        } else {
            sigmoid(self.base_logit(x, t_x, t) + signal_logit)
        };
        Assessment { risk, p_alive }
    }

    /// The band for `risk`, given the band the customer was in. A band is
    /// entered as soon as risk reaches its lower bound and left downward only
    /// when risk falls below that bound minus the hysteresis (stepping down
    /// one band at a time, as a continuous fall would). Without a previous
    /// band the plain thresholds apply. A NaN risk keeps the previous band.
    pub fn band(&self, risk: f64, previous: Option<Band>) -> Band {
        let plain = if risk >= self.high {
            Band::High
        } else if risk >= self.medium {
            Band::Medium
        } else {
            Band::Low
        };
        let Some(mut held) = previous else {
            return plain;
        };
        while let Some(below) = lower_band(held) {
            if risk < self.lower_bound(held) - self.hysteresis {
                held = below;
            } else {
                break;
            }
        }
        plain.max(held)
    }

    /// The lower bound of `band`'s risk range.
    pub fn lower_bound(&self, band: Band) -> f64 {
        match band {
            Band::Low => 0.0,
            Band::Medium => self.medium,
            Band::High => self.high,
        }
    }

    /// The earliest event time `t > after` at which
    /// `band(assess(h, signal_logit, false, t).risk, Some(current))` differs
    /// from `current`, assuming no new events and a constant `signal_logit`.
    ///
    /// `None` when that never happens before [`EventTime::MAX`]: already
    /// `high`, `bgnbd` without repeat purchases, or a crossing too far away.
    /// If the band already differs just after `after` (say `current` is stale
    /// because a signal expired), that is `after + 1 ms`.
    pub fn next_band_change(
        &self,
        h: &PurchaseHistory,
        signal_logit: f64,
        current: Band,
        after: EventTime,
    ) -> Option<EventTime> {
        let changed = |t: i64| {
            let risk = self.assess(h, signal_logit, false, EventTime(t)).risk;
            self.band(risk, Some(current)) != current
        };
        let start = after.millis().checked_add(1)?;
        if changed(start) {
            return Some(EventTime(start));
        }
        // Risk never falls with time, so from here on the band can only rise.
        let next = upper_band(current)?;
        let guess = self.crossing_guess(h, signal_logit, self.lower_bound(next));
        earliest_change(changed, start, guess).map(EventTime)
    }

    /// Where the closed form puts the crossing of `threshold`, in ms; `None`
    /// if it is not finite or not before `EventTime::MAX`.
    fn crossing_guess(
        &self,
        h: &PurchaseHistory,
        signal_logit: f64,
        threshold: f64,
    ) -> Option<i64> {
        let x = h.repeat_purchases();
        let t_x = self.units(h.last.since(h.first).max(0));
        let target = threshold.ln() - (-threshold).ln_1p();
        let y = (target - self.odds_factor(x).ln() - signal_logit) / self.exponent(x);
        let alpha = self.params.alpha;
        let offset = ((alpha + t_x) * y.exp() - alpha) * self.unit_ms;
        let at = h.first.millis() as f64 + offset.ceil();
        // `i64::MAX as f64` rounds up to 2^63, so `<` excludes everything beyond.
        (at.is_finite() && at < i64::MAX as f64).then_some(at.max(i64::MIN as f64) as i64)
    }

    /// ln of the odds of being dead: ln A + (r + x) ln((alpha + T) / (alpha + t_x)).
    fn base_logit(&self, x: u32, t_x: f64, t: f64) -> f64 {
        let a = self.odds_factor(x);
        if a == 0.0 {
            return f64::NEG_INFINITY;
        }
        a.ln() + self.exponent(x) * self.ratio(t_x, t).ln()
    }

    /// A in P(alive) = 1 / (1 + A * ratio^(r + x)); 0 for bgnbd with x = 0.
    fn odds_factor(&self, x: u32) -> f64 {
        let ChurnParams { a, b, .. } = self.params;
        let x = f64::from(x);
        match self.kind {
            ChurnModelKind::Mbgnbd => a / (b + x),
            ChurnModelKind::Bgnbd if x == 0.0 => 0.0,
            ChurnModelKind::Bgnbd => a / (b + x - 1.0),
        }
    }

    /// r + x.
    fn exponent(&self, x: u32) -> f64 {
        self.params.r + f64::from(x)
    }

    /// (alpha + T) / (alpha + t_x), with T clamped to at least t_x.
    fn ratio(&self, t_x: f64, t: f64) -> f64 {
        let alpha = self.params.alpha;
        (alpha + t.max(t_x)) / (alpha + t_x)
    }

    /// Milliseconds to model units.
    fn units(&self, ms: i64) -> f64 {
        ms as f64 / self.unit_ms
    }
}

/// The logistic function, mapping NaN (only from invalid parameters) to 0.
fn sigmoid(z: f64) -> f64 {
    let s = 1.0 / (1.0 + (-z).exp());
    if s.is_nan() { 0.0 } else { s }
}

fn lower_band(b: Band) -> Option<Band> {
    match b {
        Band::Low => None,
        Band::Medium => Some(Band::Low),
        Band::High => Some(Band::Medium),
    }
}

fn upper_band(b: Band) -> Option<Band> {
    match b {
        Band::Low => Some(Band::Medium),
        Band::Medium => Some(Band::High),
        Band::High => None,
    }
}

/// The smallest `t > lo` with `changed(t)`, for `changed` false at `lo` and
/// monotone from then on; `None` if there is none below `i64::MAX`.
///
/// Probes the closed-form `guess` first: usually it is exact and this costs
/// two evaluations. A guess that floating-point error put a little off is
/// corrected by galloping towards the boundary, and a missing guess by a
/// bisection over the whole range, so the answer never depends on the
/// closed form being right.
fn earliest_change(changed: impl Fn(i64) -> bool, mut lo: i64, guess: Option<i64>) -> Option<i64> {
    if lo == i64::MAX {
        return None;
    }
    let mut hi = guess.unwrap_or(i64::MAX).clamp(lo + 1, i64::MAX);
    let mut step: i64 = 1;
    // Gallop up until `changed(hi)`; `lo` trails as the last unchanged probe.
    while !changed(hi) {
        if hi == i64::MAX {
            return None;
        }
        lo = hi;
        hi = hi.saturating_add(step);
        step = step.saturating_mul(2);
    }
    // A guess that was a little late: gallop down (at most 16 probes, about a
    // minute) to bring `lo` close before bisecting.
    step = 1;
    while guess.is_some() && step <= 1 << 15 && hi.abs_diff(lo) > 1 {
        let probe = hi.saturating_sub(step).max(lo + 1);
        if changed(probe) {
            hi = probe;
            step = step.saturating_mul(2);
        } else {
            lo = probe;
            break;
        }
    }
    while hi.abs_diff(lo) > 1 {
        let mid = lo.midpoint(hi);
        if changed(mid) { hi = mid } else { lo = mid }
    }
    (hi < i64::MAX).then_some(hi)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    const WEEK_MS: i64 = 7 * 86_400_000;
    const T0: EventTime = EventTime(1_700_000_000_000);

    fn model(kind: ChurnModelKind) -> ChurnModel {
        ChurnModel::new(&ChurnConfig {
            model: kind,
            ..ChurnConfig::default()
        })
    }

    fn weeks(w: f64) -> EventTime {
        T0.plus_ms((w * WEEK_MS as f64) as i64)
    }

    /// Three purchases: weeks 0, 4 and 10.
    fn regular() -> PurchaseHistory {
        let mut h = PurchaseHistory::first_purchase(T0);
        h.record(weeks(10.0));
        h.record(weeks(4.0));
        h
    }

    fn in_weeks(t: EventTime) -> f64 {
        t.since(T0) as f64 / WEEK_MS as f64
    }

    #[test]
    fn band_hysteresis_table() {
        let m = model(ChurnModelKind::Mbgnbd);
        use Band::*;
        let table = [
            (0.10, None, Low),
            (0.30, None, Medium),
            (0.29, None, Low),
            (0.60, None, High),
            (0.30, Some(Low), Medium),
            (0.61, Some(Low), High),
            (0.27, Some(Medium), Medium),
            (0.25, Some(Medium), Medium),
            (0.2499, Some(Medium), Low),
            (0.56, Some(High), High),
            (0.55, Some(High), High),
            (0.5499, Some(High), Medium),
            (0.27, Some(High), Medium),
            (0.20, Some(High), Low),
            (0.65, Some(Medium), High),
            (f64::NAN, Some(Medium), Medium),
        ];
        for (risk, previous, expected) in table {
            assert_eq!(
                m.band(risk, previous),
                expected,
                "risk {risk} from {previous:?}"
            );
        }
    }

    #[test]
    fn risk_is_one_minus_p_alive_shifted_by_signals() {
        let m = model(ChurnModelKind::Mbgnbd);
        let h = regular();
        let plain = m.assess(&h, 0.0, false, weeks(20.0));
        assert!((plain.risk - (1.0 - plain.p_alive)).abs() < 1e-12);
        let raised = m.assess(&h, 0.8, false, weeks(20.0));
        let logit = |p: f64| (p / (1.0 - p)).ln();
        assert!((logit(raised.risk) - logit(plain.risk) - 0.8).abs() < 1e-9);
        assert_eq!(raised.p_alive, plain.p_alive);
        let cancelled = m.assess(&h, 0.0, true, weeks(20.0));
        assert_eq!(cancelled.risk, 1.0);
        assert_eq!(cancelled.p_alive, plain.p_alive);
    }

    #[test]
    fn time_before_the_last_purchase_counts_as_the_last_purchase() {
        let m = model(ChurnModelKind::Mbgnbd);
        assert_eq!(m.p_alive(2, 10.0, 3.0), m.p_alive(2, 10.0, 10.0));
        let h = regular();
        assert_eq!(
            m.assess(&h, 0.0, false, T0),
            m.assess(&h, 0.0, false, h.last)
        );
    }

    #[test]
    fn time_alone_moves_a_regular_customer_low_medium_high() {
        let m = model(ChurnModelKind::Mbgnbd);
        let h = regular();
        assert_eq!(
            m.band(m.assess(&h, 0.0, false, h.last).risk, None),
            Band::Low
        );
        let medium = m.next_band_change(&h, 0.0, Band::Low, h.last).unwrap();
        let high = m.next_band_change(&h, 0.0, Band::Medium, medium).unwrap();
        println!(
            "medium at week {:.4}, high at week {:.4}",
            in_weeks(medium),
            in_weeks(high)
        );
        assert!((in_weeks(medium) - 13.961731).abs() < 1e-5);
        assert!((in_weeks(high) - 26.902215).abs() < 1e-5);
        assert_eq!(m.next_band_change(&h, 0.0, Band::High, high), None);
        let risk = |t: EventTime| m.assess(&h, 0.0, false, t).risk;
        assert!(risk(medium) >= 0.3 && risk(medium.minus_ms(1)) < 0.3);
        assert!(risk(high) >= 0.6 && risk(high.minus_ms(1)) < 0.6);
    }

    #[test]
    fn signals_shift_the_crossing_earlier() {
        let m = model(ChurnModelKind::Mbgnbd);
        let h = regular();
        let mut previous = m.next_band_change(&h, 0.0, Band::Low, h.last).unwrap();
        for signal in [0.2, 0.4, 0.5] {
            let t = m.next_band_change(&h, signal, Band::Low, h.last).unwrap();
            assert!(
                t < previous,
                "signal {signal}: {t:?} not before {previous:?}"
            );
            previous = t;
        }
        let ticket = m.next_band_change(&h, 0.4, Band::Low, h.last).unwrap();
        assert!((in_weeks(ticket) - 11.010423).abs() < 1e-5);
        let ticket_high = m.next_band_change(&h, 0.4, Band::Medium, ticket).unwrap();
        assert!((in_weeks(ticket_high) - 22.055059).abs() < 1e-5);
        // A payment failure (+1.0) puts the customer in `medium` at once; the
        // closed form's week 7.37 lies before the last purchase.
        let failed = m.next_band_change(&h, 1.0, Band::Low, h.last).unwrap();
        assert_eq!(failed, h.last.plus_ms(1));
        let failed_high = m.next_band_change(&h, 1.0, Band::Medium, failed).unwrap();
        assert!((in_weeks(failed_high) - 16.082690).abs() < 1e-5);
    }

    #[test]
    fn bgnbd_one_time_buyer_never_changes_band() {
        let m = model(ChurnModelKind::Bgnbd);
        let h = PurchaseHistory::first_purchase(T0);
        let a = m.assess(&h, 3.0, false, weeks(1e4));
        assert_eq!((a.p_alive, a.risk), (1.0, 0.0));
        assert_eq!(m.next_band_change(&h, 3.0, Band::Low, T0), None);
    }

    #[test]
    fn a_stale_band_changes_right_away() {
        let m = model(ChurnModelKind::Mbgnbd);
        let h = regular();
        let after = h.last;
        assert_eq!(
            m.next_band_change(&h, 0.0, Band::High, after),
            Some(after.plus_ms(1))
        );
        let late = weeks(40.0);
        assert_eq!(
            m.next_band_change(&h, 0.0, Band::Low, late),
            Some(late.plus_ms(1))
        );
    }

    #[test]
    fn far_or_undefined_crossings_are_none_and_never_panic() {
        let m = model(ChurnModelKind::Mbgnbd);
        let h = regular();
        assert_eq!(m.next_band_change(&h, -1e3, Band::Low, h.last), None);
        assert_eq!(m.next_band_change(&h, 0.0, Band::Low, EventTime::MAX), None);
        assert_eq!(
            m.next_band_change(&h, f64::NEG_INFINITY, Band::Low, h.last),
            None
        );
        let t = m.next_band_change(&h, f64::NAN, Band::Low, h.last);
        assert!(t.is_none_or(|t| t > h.last));
        let t = m.next_band_change(&h, f64::INFINITY, Band::Low, h.last);
        assert_eq!(t, Some(h.last.plus_ms(1)));
        let broken = ChurnModel::new(&ChurnConfig {
            params: Some(ChurnParams {
                r: -1.0,
                alpha: -5.0,
                a: 1.0,
                b: -3.0,
            }),
            time_unit: Duration::ZERO,
            ..ChurnConfig::default()
        });
        let a = broken.assess(&h, 0.0, false, weeks(3.0));
        assert!((0.0..=1.0).contains(&a.risk) && (0.0..=1.0).contains(&a.p_alive));
        let t = broken.next_band_change(&h, 0.0, Band::Low, EventTime::MIN);
        assert!(t.is_none_or(|t| t > EventTime::MIN));
    }

    #[test]
    fn a_purchase_history_far_in_the_past_saturates() {
        let m = model(ChurnModelKind::Mbgnbd);
        let h = PurchaseHistory::first_purchase(EventTime::MIN);
        let t = m
            .next_band_change(&h, 0.0, Band::Medium, EventTime::MIN)
            .unwrap();
        assert!(t > EventTime::MIN);
        assert!(m.assess(&h, 0.0, false, EventTime::MAX).risk > 0.9999);
    }

    #[test]
    fn earliest_change_corrects_a_guess_cheaply() {
        use std::cell::Cell;
        let boundary = 1_000_000_i64;
        for (guess, max_calls) in [
            (Some(boundary), 2),
            (Some(boundary - 2), 4),
            (Some(boundary + 3), 6),
            (None, 70),
            (Some(i64::MAX), 85),
        ] {
            let calls = Cell::new(0);
            let changed = |t: i64| {
                calls.set(calls.get() + 1);
                t >= boundary
            };
            assert_eq!(
                earliest_change(changed, 0, guess),
                Some(boundary),
                "{guess:?}"
            );
            assert!(calls.get() <= max_calls, "{guess:?}: {} calls", calls.get());
        }
        assert_eq!(earliest_change(|_| false, 0, Some(5)), None);
        assert_eq!(earliest_change(|t| t == i64::MAX, 0, None), None);
        assert_eq!(earliest_change(|_| true, i64::MAX, None), None);
        assert_eq!(earliest_change(|t| t >= 0, i64::MIN, None), Some(0));
        assert_eq!(
            earliest_change(|t| t >= -7, i64::MIN, Some(i64::MAX - 1)),
            Some(-7)
        );
    }

    fn any_band() -> impl Strategy<Value = Band> {
        prop_oneof![Just(Band::Low), Just(Band::Medium), Just(Band::High)]
    }

    proptest! {
        #[test]
        fn next_band_change_is_the_earliest_change(
            bgnbd in any::<bool>(),
            purchases in 1u32..40,
            span_ms in 0i64..(200 * WEEK_MS),
            gap_ms in -WEEK_MS..(300 * WEEK_MS),
            signal in -3.0f64..3.0,
            current in any_band(),
        ) {
            let m = model(if bgnbd { ChurnModelKind::Bgnbd } else { ChurnModelKind::Mbgnbd });
            let h = PurchaseHistory { purchases, first: T0, last: T0.plus_ms(span_ms) };
            let after = h.last.plus_ms(gap_ms);
            let band_at = |t: EventTime| {
                m.band(m.assess(&h, signal, false, t).risk, Some(current))
            };
            match m.next_band_change(&h, signal, current, after) {
                Some(t) => {
                    prop_assert!(t > after);
                    prop_assert_ne!(band_at(t), current);
                    let before = t.minus_ms(1);
                    prop_assert!(before == after || band_at(before) == current);
                    if let (Some(next), true) = (upper_band(current), before > after) {
                        // The closed form alone is within a millisecond or two.
                        let guess = m.crossing_guess(&h, signal, m.lower_bound(next)).unwrap();
                        prop_assert!((guess - t.millis()).abs() <= 2, "{guess} vs {t:?}");
                    }
                }
                None => {
                    prop_assert_eq!(band_at(after.plus_ms(1)), current);
                    prop_assert_eq!(band_at(EventTime::MAX.minus_ms(1)), current);
                }
            }
        }

        #[test]
        fn next_band_change_never_panics_nor_goes_back(
            bgnbd in any::<bool>(),
            purchases in any::<u32>(),
            first in any::<i64>(),
            last in any::<i64>(),
            after in any::<i64>(),
            signal in prop_oneof![any::<f64>(), -50.0f64..50.0],
            current in any_band(),
        ) {
            let m = model(if bgnbd { ChurnModelKind::Bgnbd } else { ChurnModelKind::Mbgnbd });
            let h = PurchaseHistory { purchases, first: EventTime(first), last: EventTime(last) };
            let a = m.assess(&h, signal, false, EventTime(after));
            prop_assert!((0.0..=1.0).contains(&a.risk) && (0.0..=1.0).contains(&a.p_alive));
            if let Some(t) = m.next_band_change(&h, signal, current, EventTime(after)) {
                prop_assert!(t.millis() > after);
                let band_at = |t: EventTime| {
                    m.band(m.assess(&h, signal, false, t).risk, Some(current))
                };
                prop_assert_ne!(band_at(t), current);
                prop_assert!(t.millis() - 1 == after || band_at(t.minus_ms(1)) == current);
            }
        }
    }
}
