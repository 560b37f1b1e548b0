//! The Prometheus registry and every journeyd metric (docs/operations.md#alerts-dashboard-runbook).
//!
//! [`Metrics`] owns its own [`Registry`] (not the process-global one), so
//! tests can build as many as they like. All names start with `journeyd_`
//! and every label is drawn from a small closed set: topics and stages from
//! the config, reasons from [`InvalidReason::ALL`], actions the rules know
//! (anything else is `other`). Customer ids and error texts never become
//! labels.
//!
//! Updating is cheap and never on the engine's hot path: engine counters are
//! published from periodic snapshots ([`Metrics::observe_engine`]), labelled
//! handles are resolved once ([`super::ConsumedCounters`],
//! [`super::OutputCounters`]), and the rest are single atomic operations.
//! The families live beside their update helpers: [`super::funnel`] and
//! [`super::kafka`] (Kafka and outputs), [`super::readiness`] and
//! [`super::schema_registry`].

use std::sync::{Mutex, PoisonError};

use prometheus::{
    Gauge, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};

use super::changelog::ChangelogMetrics;
use super::engine::EngineObserver;
use super::funnel::FunnelMetrics;
use super::kafka::KafkaMetrics;
use super::readiness::ReadinessMetrics;
use super::registry::{Made, Reg};
use super::schema_registry::SchemaRegistryMetrics;
use crate::codec::InvalidReason;
use crate::engine::dedupe::Reason;
use crate::model::{Band, ErasureSource};

/// Metrics could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot register metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Buckets of the end-to-end latency (event time -> output acknowledged):
/// from well under a second to an hour, since outputs wait for the
/// watermark (`allowed_lateness`, 30 s by default) and timers fire late in
/// wall time when traffic is sparse.
const END_TO_END_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0,
];

/// Buckets of the processing latency (poll -> output acknowledged): a
/// millisecond to a minute.
const PROCESSING_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Metrics about input records.
pub(super) struct InputMetrics {
    /// `journeyd_events_consumed_total{topic,action}`.
    pub consumed: IntCounterVec,
    /// `journeyd_events_invalid_total{reason}`, one per [`InvalidReason::ALL`].
    pub invalid: Vec<IntCounter>,
    pub late: IntCounter,
    pub ahead: IntCounter,
    pub duplicate: IntCounter,
    /// `journeyd_events_unverified_total{reason}`, indexed like [`Reason::ALL`].
    pub unverified: [IntCounter; 2],
    pub processed: IntCounter,
    pub forced_early: IntCounter,
    pub scores_off_scale: IntCounter,
    /// `journeyd_touchpoints_without_consent_total`.
    pub without_consent: IntCounter,
}

impl InputMetrics {
    fn new(r: &Reg<'_>) -> Made<Self> {
        let invalid_vec = r.counter_vec(
            "journeyd_events_invalid_total",
            "Input records rejected to the dead-letter topic, by reason.",
            &["reason"],
        )?;
        let unverified = r.counter_vec(
            "journeyd_events_unverified_total",
            "Touchpoints whose event_id the customer's de-duplication memory could not check: \
             older than the customer's newest minus time.dedupe_horizon (reason=\"horizon\", \
             applied) or late after the memory overflowed (reason=\"memory\", refused).",
            &["reason"],
        )?;
        Ok(InputMetrics {
            consumed: r.counter_vec(
                "journeyd_events_consumed_total",
                "Touchpoints consumed, by topic and action (actions no rule knows are \"other\").",
                &["topic", "action"],
            )?,
            invalid: InvalidReason::ALL
                .iter()
                .map(|reason| invalid_vec.with_label_values(&[reason.as_str()]))
                .collect(),
            late: r.counter(
                "journeyd_events_late_total",
                "Touchpoints older than their partition's event time on arrival, and timer \
                 drop-offs and lapses that fell into a funnel window already emitted.",
            )?,
            ahead: r.counter(
                "journeyd_events_ahead_total",
                "Touchpoints stamped ahead of the wall clock when read (hybrid time mode): \
                 their partition's event time went only up to the wall clock.",
            )?,
            duplicate: r.counter(
                "journeyd_events_duplicate_total",
                "Touchpoints ignored as redeliveries of an event_id already applied.",
            )?,
            unverified: Reason::ALL.map(|reason| unverified.with_label_values(&[reason.label()])),
            scores_off_scale: r.counter(
                "journeyd_score_responses_off_scale_total",
                "Experience-score responses (journey.scores) whose value is missing, not a whole \
                 number or off the scale: not counted in the scores; the touchpoint is applied.",
            )?,
            processed: r.counter(
                "journeyd_events_processed_total",
                "Touchpoints applied to customer state.",
            )?,
            forced_early: r.counter(
                "journeyd_events_forced_early_total",
                "Touchpoints processed before the watermark because the reorder buffer was full.",
            )?,
            without_consent: r.counter(
                "journeyd_touchpoints_without_consent_total",
                "Touchpoints neither kept nor derived from because their customer had no consent \
                 for consent.purpose (consent.mode), and consent touchpoints superseded by a \
                 later change of the same customer's consent.",
            )?,
        })
    }
}

/// Metrics about journeys: stages and churn bands.
pub(super) struct JourneyMetrics {
    pub transitions: IntCounterVec,
    pub customers: IntGaugeVec,
    /// `journeyd_customers_churn_band{band}`, indexed like [`Band::ALL`].
    pub bands: Vec<IntGauge>,
    /// `journeyd_churn_band_changes_total{band}`, by the band entered,
    /// indexed like [`Band::ALL`].
    pub band_changes: Vec<IntCounter>,
    pub evicted: IntCounter,
    /// `journeyd_moments_total{moment,outcome}`: journey moments started,
    /// completed, abandoned (labelled by the observer, which knows the
    /// moments' names).
    pub moments: IntCounterVec,
    /// `journeyd_erasures_total{source,state}`: per [`ErasureSource::ALL`],
    /// `[erased, unknown]`.
    pub erasures: Vec<[IntCounter; 2]>,
}

impl JourneyMetrics {
    fn new(r: &Reg<'_>) -> Made<Self> {
        let bands = r.gauge_vec(
            "journeyd_customers_churn_band",
            "Customers held in each churn-risk band.",
            &["band"],
        )?;
        let band_changes = r.counter_vec(
            "journeyd_churn_band_changes_total",
            "Churn-risk band changes emitted, by the band entered.",
            &["band"],
        )?;
        let erasures = r.counter_vec(
            "journeyd_erasures_total",
            "Erasure requests carried out, by how they arrived and whether this instance held \
             the customer (state=\"erased\") or not (state=\"unknown\").",
            &["source", "state"],
        )?;
        Ok(JourneyMetrics {
            transitions: r.counter_vec(
                "journeyd_stage_transitions_total",
                "Stage changes, by from and to stage (from=\"none\": entering the journey).",
                &["from", "to"],
            )?,
            customers: r.gauge_vec(
                "journeyd_customers",
                "Customers held in each stage.",
                &["stage"],
            )?,
            bands: Band::ALL
                .iter()
                .map(|b| bands.with_label_values(&[b.as_str()]))
                .collect(),
            band_changes: Band::ALL
                .iter()
                .map(|b| band_changes.with_label_values(&[b.as_str()]))
                .collect(),
            evicted: r.counter(
                "journeyd_customers_evicted_total",
                "Customers evicted from memory after state_ttl.",
            )?,
            moments: r.counter_vec(
                "journeyd_moments_total",
                "Journey moments, by moment and outcome: started, completed (before the \
                 deadline), abandoned (the deadline passed first).",
                &["moment", "outcome"],
            )?,
            erasures: ErasureSource::ALL
                .iter()
                .map(|source| {
                    ["erased", "unknown"]
                        .map(|state| erasures.with_label_values(&[source.as_str(), state]))
                })
                .collect(),
        })
    }
}

/// Metrics about the process's own state and latency.
pub(super) struct StateMetrics {
    pub end_to_end: Histogram,
    pub processing: Histogram,
    pub watermark_lag: Gauge,
    pub tracked_customers: IntGauge,
    pub state_bytes: IntGauge,
    pub buffered: IntGauge,
}

impl StateMetrics {
    fn new(r: &Reg<'_>) -> Made<Self> {
        Ok(StateMetrics {
            end_to_end: r.histogram(
                "journeyd_end_to_end_latency_seconds",
                "From a derived event's event time to its acknowledgement by Kafka.",
                &END_TO_END_BUCKETS,
            )?,
            processing: r.histogram(
                "journeyd_processing_latency_seconds",
                "From polling a touchpoint to the acknowledgement of the outputs it caused.",
                &PROCESSING_BUCKETS,
            )?,
            watermark_lag: r.float_gauge(
                "journeyd_watermark_lag_seconds",
                "Wall clock minus the processor's watermark (0 before the first event).",
            )?,
            tracked_customers: r.gauge(
                "journeyd_tracked_customers",
                "Customers whose journey state is held in memory.",
            )?,
            state_bytes: r.gauge(
                "journeyd_state_memory_bytes",
                "Approximate bytes of journey state held in memory.",
            )?,
            buffered: r.gauge(
                "journeyd_buffered_events",
                "Touchpoints waiting in the reorder buffer for the watermark.",
            )?,
        })
    }
}

/// Every journeyd metric and the registry that exports them.
pub struct Metrics {
    registry: Registry,
    pub(super) input: InputMetrics,
    pub(super) journey: JourneyMetrics,
    pub(super) funnel: FunnelMetrics,
    pub(super) state: StateMetrics,
    pub(super) kafka: KafkaMetrics,
    pub(super) readiness: ReadinessMetrics,
    pub(super) schema_registry: SchemaRegistryMetrics,
    pub(super) changelog: ChangelogMetrics,
    /// Rule-dependent handles and the previous engine snapshot, created on
    /// the first [`Metrics::observe_engine`].
    pub(super) observer: Mutex<Option<EngineObserver>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let r = Reg(&registry);
        let build_info = r.gauge_vec(
            "journeyd_build_info",
            "Always 1; the version label says which journeyd is running.",
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Ok(Metrics {
            input: InputMetrics::new(&r)?,
            journey: JourneyMetrics::new(&r)?,
            funnel: FunnelMetrics::new(&r)?,
            state: StateMetrics::new(&r)?,
            kafka: KafkaMetrics::new(&r)?,
            readiness: ReadinessMetrics::new(&r)?,
            schema_registry: SchemaRegistryMetrics::new(&r)?,
            changelog: ChangelogMetrics::new(&r)?,
            observer: Mutex::new(None),
            registry,
        })
    }

    /// The registry, to add process-level collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode_text(&self) -> String {
        let mut text = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(error = %e, "Encoding metrics failed.");
        }
        text
    }

    /// The counter of records rejected for `reason`.
    pub fn invalid(&self, reason: InvalidReason) -> &IntCounter {
        let i = InvalidReason::ALL.iter().position(|r| *r == reason);
        &self.input.invalid[i.unwrap_or_default()]
    }

    /// The counter of erasures from `source` that found state (or not).
    pub fn erasures(&self, source: ErasureSource, state_found: bool) -> &IntCounter {
        let i = ErasureSource::ALL.iter().position(|s| *s == source);
        &self.journey.erasures[i.unwrap_or_default()][usize::from(!state_found)]
    }

    /// Records an end-to-end latency (event time -> output acknowledged).
    pub fn observe_end_to_end_latency(&self, seconds: f64) {
        self.state.end_to_end.observe(seconds.max(0.0));
    }

    /// Records a processing latency (poll -> output acknowledged).
    pub fn observe_processing_latency(&self, seconds: f64) {
        self.state.processing.observe(seconds.max(0.0));
    }

    /// Sets `journeyd_schema_held_records`: records waiting for schema
    /// look-ups.
    pub fn observe_held_records(&self, records: usize) {
        self.schema_registry.set_held(records);
    }

    /// The engine-snapshot observer, locked.
    pub(super) fn lock_observer(&self) -> std::sync::MutexGuard<'_, Option<EngineObserver>> {
        self.observer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A count as a gauge value, saturating.
pub(super) fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
