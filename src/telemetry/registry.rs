//! Creating metrics and registering them in one step.
//!
//! Every journeyd metric is made through [`Reg`], so a name collision or an
//! invalid name fails [`super::Metrics::new`] at start-up instead of
//! silently producing a metric nobody scrapes.

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

/// The result of creating a metric.
pub(super) type Made<T> = Result<T, prometheus::Error>;

/// A registry to add metrics to.
pub(super) struct Reg<'a>(pub &'a Registry);

impl Reg<'_> {
    fn add<C: Collector + Clone + 'static>(&self, collector: C) -> Made<C> {
        self.0.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    /// A collector of journeyd's own making.
    pub fn collector<C: Collector + Clone + 'static>(&self, collector: C) -> Made<C> {
        self.add(collector)
    }

    /// An integer counter without labels.
    pub fn counter(&self, name: &str, help: &str) -> Made<IntCounter> {
        self.add(IntCounter::new(name, help)?)
    }

    /// An integer counter with labels.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> Made<IntCounterVec> {
        self.add(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    /// An integer gauge without labels.
    pub fn gauge(&self, name: &str, help: &str) -> Made<IntGauge> {
        self.add(IntGauge::new(name, help)?)
    }

    /// An integer gauge with labels.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> Made<IntGaugeVec> {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels)?)
    }

    /// A floating-point gauge without labels.
    pub fn float_gauge(&self, name: &str, help: &str) -> Made<Gauge> {
        self.add(Gauge::new(name, help)?)
    }

    /// A floating-point gauge with labels.
    pub fn float_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> Made<GaugeVec> {
        self.add(GaugeVec::new(Opts::new(name, help), labels)?)
    }

    /// A histogram with explicit buckets.
    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Made<Histogram> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(Histogram::with_opts(opts)?)
    }
}
