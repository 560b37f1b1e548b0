//! Publishing the engine's own counters as metrics.
//!
//! The engine keeps plain integers ([`EngineStats`]); it never touches
//! Prometheus. The driver periodically (every 100 ms or so) hands a
//! [`EngineSnapshot`] to [`Metrics::observe_engine`], which adds the
//! difference since the previous snapshot to each counter and sets the
//! gauges. Labelled handles are resolved once from the compiled [`Rules`],
//! in vectors indexed exactly like the engine's arrays
//! ([`EngineStats::transitions`], the conversion pairs), so an observation
//! is a walk over a few small vectors. The tracked customers and state
//! bytes are figures the engine keeps as customers come and go: reading
//! them costs O(partitions), never a walk over the customers.
//!
//! A counter that went down (an engine rebuilt from scratch) is taken as a
//! restart from zero: its whole new value is added.

use prometheus::IntCounter;

use super::funnel::FunnelMetrics;
use super::metrics::{InputMetrics, JourneyMetrics, Metrics, gauge_value};
use crate::engine::funnel::FunnelTotals;
use crate::engine::{Engine, EngineStats, Rules};
use crate::model::{ErasureSource, EventTime};

/// Label of the `from` stage when a customer enters the journey.
pub const ENTRY_LABEL: &str = "none";

/// What the driver reads from the engine for one observation.
#[derive(Clone, Copy, Debug)]
pub struct EngineSnapshot<'a> {
    /// The engine's counters and per-stage/band gauges.
    pub stats: &'a EngineStats,
    /// The compiled model: stage names and conversion pairs for labels.
    pub rules: &'a Rules,
    /// Conversions and drop-offs per pair over all windows.
    pub funnel: &'a FunnelTotals,
    /// Customers held in memory.
    pub tracked_customers: usize,
    /// Approximate bytes of journey state.
    pub state_bytes: usize,
    /// Touchpoints waiting for the watermark.
    pub buffered: usize,
    /// The engine's watermark.
    pub watermark: EventTime,
    /// The wall clock at the observation, for the watermark lag.
    pub wall: EventTime,
}

impl<'a> EngineSnapshot<'a> {
    /// Reads everything from `engine`; `wall` is the driver's clock.
    pub fn of(engine: &'a Engine, wall: EventTime) -> Self {
        EngineSnapshot {
            stats: engine.stats(),
            rules: engine.rules(),
            funnel: engine.funnel_totals(),
            tracked_customers: engine.tracked_customers(),
            state_bytes: engine.state_bytes(),
            buffered: engine.buffered(),
            watermark: engine.watermark(),
            wall,
        }
    }
}

/// One conversion pair's counters.
#[derive(Debug)]
struct PairCounters {
    conversions: IntCounter,
    dropoffs: IntCounter,
    in_flight: prometheus::IntGauge,
}

/// Rule-dependent handles plus the previous snapshot's values.
#[derive(Debug)]
pub(crate) struct EngineObserver {
    stages: usize,
    /// Indexed like [`EngineStats::transitions`]; `None` where from == to.
    transitions: Vec<Option<IntCounter>>,
    customers: Vec<prometheus::IntGauge>,
    pairs: Vec<PairCounters>,
    /// Per journey moment, `journeyd_moments_total` by outcome: started,
    /// completed, abandoned (like [`EngineStats::moments`]).
    moments: Vec<[IntCounter; 3]>,
    prev: EngineStats,
    prev_funnel: FunnelTotals,
}

impl EngineObserver {
    fn new(metrics: &Metrics, rules: &Rules) -> Self {
        let names: Vec<&str> = rules.stages.iter().map(|s| s.name.as_str()).collect();
        let customers = names
            .iter()
            .map(|s| metrics.journey.customers.with_label_values(&[s]))
            .collect();
        let pair_names: Vec<(&str, &str)> = (rules.conversions.iter())
            .map(|c| (names[usize::from(c.from)], names[usize::from(c.to)]))
            .collect();
        let pairs = (pair_names.iter())
            .map(|(from, to)| pair_counters(&metrics.funnel, from, to))
            .collect();
        metrics.funnel.convert_times.set_pairs(&pair_names);
        let moment_names: Vec<&str> = rules.moments.iter().map(|m| m.name.as_str()).collect();
        metrics.funnel.moment_times.set_moments(&moment_names);
        let moments = (moment_names.iter())
            .map(|m| {
                ["started", "completed", "abandoned"]
                    .map(|outcome| metrics.journey.moments.with_label_values(&[m, outcome]))
            })
            .collect();
        EngineObserver {
            stages: names.len(),
            transitions: transition_counters(&metrics.journey, &names),
            customers,
            pairs,
            moments,
            prev: EngineStats::new(names.len(), moment_names.len()),
            prev_funnel: FunnelTotals::default(),
        }
    }

    /// Whether these handles were made for the snapshot's model.
    fn fits(&self, snap: &EngineSnapshot<'_>) -> bool {
        self.stages == snap.rules.stages.len()
            && self.pairs.len() == snap.rules.conversions.len()
            && self.moments.len() == snap.rules.moments.len()
    }

    fn observe(&mut self, input: &InputMetrics, journey: &JourneyMetrics, s: &EngineStats) {
        let p = &self.prev;
        bump(&input.processed, p.events, s.events);
        bump(&input.late, p.late, s.late);
        bump(&input.ahead, p.ahead, s.ahead);
        bump(
            &input.scores_off_scale,
            p.scores_off_scale,
            s.scores_off_scale,
        );
        bump(&input.duplicate, p.duplicates, s.duplicates);
        bump(
            &input.unverified[0],
            p.unverified_horizon,
            s.unverified_horizon,
        );
        bump(
            &input.unverified[1],
            p.unverified_memory,
            s.unverified_memory,
        );
        bump(&input.forced_early, p.forced_early, s.forced_early);
        bump(&input.without_consent, p.without_consent, s.without_consent);
        for (i, counter) in journey.band_changes.iter().enumerate() {
            bump(counter, p.band_entries[i], s.band_entries[i]);
        }
        bump(&journey.evicted, p.evicted, s.evicted);
        let consent = ErasureSource::ALL
            .iter()
            .position(|&s| s == ErasureSource::Consent);
        if let Some(counters) = consent.and_then(|i| journey.erasures.get(i)) {
            for (i, counter) in counters.iter().enumerate() {
                bump(counter, p.consent_erasures[i], s.consent_erasures[i]);
            }
        }
        for (i, counters) in self.moments.iter().enumerate() {
            let at = |v: &[[u64; 3]], k: usize| v.get(i).map_or(0, |n| n[k]);
            for (k, counter) in counters.iter().enumerate() {
                bump(counter, at(&p.moments, k), at(&s.moments, k));
            }
        }
        bump_all(&self.transitions, &p.transitions, &s.transitions);
        for (gauge, &n) in self.customers.iter().zip(&s.customers_per_stage) {
            gauge.set(gauge_value(n));
        }
        for (gauge, &n) in journey.bands.iter().zip(&s.customers_per_band) {
            gauge.set(gauge_value(n));
        }
        self.prev.clone_from(s);
    }

    fn observe_funnel(&mut self, totals: &FunnelTotals) {
        let prev = &self.prev_funnel;
        for (i, pair) in self.pairs.iter().enumerate() {
            let at = |v: &[u64]| v.get(i).copied().unwrap_or(0);
            bump(
                &pair.conversions,
                at(&prev.conversions),
                at(&totals.conversions),
            );
            bump(&pair.dropoffs, at(&prev.dropoffs), at(&totals.dropoffs));
            let in_flight = totals.in_flight.get(i).copied().unwrap_or(0);
            pair.in_flight.set(in_flight.max(0));
        }
        self.prev_funnel.clone_from(totals);
    }
}

/// Handles laid out like [`EngineStats::transitions`]: row `from` (the last
/// row is "entered"), column `to`, plus an unused last column.
fn transition_counters(journey: &JourneyMetrics, names: &[&str]) -> Vec<Option<IntCounter>> {
    let n = names.len();
    let mut handles = Vec::with_capacity((n + 1) * (n + 1));
    for from in 0..=n {
        let from_label = names.get(from).copied().unwrap_or(ENTRY_LABEL);
        for (to, to_label) in names.iter().enumerate() {
            let labels = [from_label, *to_label];
            handles.push((from != to).then(|| journey.transitions.with_label_values(&labels)));
        }
        handles.push(None);
    }
    handles
}

fn pair_counters(funnel: &FunnelMetrics, from: &str, to: &str) -> PairCounters {
    let labels = [from, to];
    let ratio = funnel.dropoff_ratio.with_label_values(&labels);
    if ratio.get() == 0.0 {
        // No window closed yet: the ratio is undefined, not 0.
        ratio.set(f64::NAN);
    }
    funnel.window_conversions.with_label_values(&labels);
    funnel.window_dropoffs.with_label_values(&labels);
    PairCounters {
        conversions: funnel.conversions_total.with_label_values(&labels),
        dropoffs: funnel.dropoffs_total.with_label_values(&labels),
        in_flight: funnel.in_flight.with_label_values(&labels),
    }
}

/// Adds the growth from `prev` to `now`; a drop means a restart from zero.
fn bump(counter: &IntCounter, prev: u64, now: u64) {
    let delta = if now >= prev { now - prev } else { now };
    if delta > 0 {
        counter.inc_by(delta);
    }
}

/// [`bump`] element-wise; a missing previous value counts as zero.
fn bump_all(counters: &[Option<IntCounter>], prev: &[u64], now: &[u64]) {
    for (i, (counter, &n)) in counters.iter().zip(now).enumerate() {
        if let Some(c) = counter {
            bump(c, prev.get(i).copied().unwrap_or(0), n);
        }
    }
}

impl Metrics {
    /// Publishes an engine snapshot: counter deltas since the previous one,
    /// and the stage, band, memory and watermark gauges. Call it
    /// periodically from the thread that owns the engine; the first call
    /// resolves the labelled handles from the snapshot's rules.
    pub fn observe_engine(&self, snap: &EngineSnapshot<'_>) {
        {
            let mut guard = self.lock_observer();
            if !guard.as_ref().is_some_and(|o| o.fits(snap)) {
                *guard = Some(EngineObserver::new(self, snap.rules));
            }
            if let Some(observer) = guard.as_mut() {
                observer.observe(&self.input, &self.journey, snap.stats);
                observer.observe_funnel(snap.funnel);
                self.funnel.convert_times.observe(snap.funnel);
                let stats = snap.stats;
                (self.funnel.moment_times).observe_series(&stats.moment_times, &stats.moment_ms);
            }
        }
        let s = &self.state;
        s.tracked_customers
            .set(gauge_value(snap.tracked_customers as u64));
        s.state_bytes.set(gauge_value(snap.state_bytes as u64));
        s.buffered.set(gauge_value(snap.buffered as u64));
        s.watermark_lag
            .set(watermark_lag_seconds(snap.watermark, snap.wall));
    }
}

/// Wall clock minus watermark in seconds; 0 before the first event.
fn watermark_lag_seconds(watermark: EventTime, wall: EventTime) -> f64 {
    if watermark == EventTime::MIN || wall == EventTime::MIN {
        return 0.0;
    }
    wall.since(watermark).max(0) as f64 / 1000.0
}
