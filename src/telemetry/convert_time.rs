//! `journeyd_time_to_convert_seconds{from,to}`: a Prometheus histogram of
//! how long conversions took, from the engine's own buckets
//! ([`crate::engine::funnel::convert_time`]) rather than observed one by
//! one: the engine counts, and each metrics observation copies its totals
//! here (a few hundred numbers, every `runtime.metrics_interval`). The
//! same collector, named otherwise, is
//! `journeyd_moment_duration_seconds{moment}`: how long completed journey
//! moments took, in the same buckets.

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair};

use crate::engine::funnel::FunnelTotals;
use crate::engine::funnel::convert_time::{BOUNDS_MS, BUCKETS, Buckets};

const NAME: &str = "journeyd_time_to_convert_seconds";
const HELP: &str = "Time from entering a stage to entering the next one of its conversion pair, \
                    for every conversion counted.";

const MOMENT_NAME: &str = "journeyd_moment_duration_seconds";
const MOMENT_HELP: &str = "Time from a journey moment's first start to its completion, for every \
                           completed moment.";

/// The histogram family; cheap to clone (shared state).
#[derive(Clone)]
pub(super) struct ConvertTimes {
    desc: Arc<Desc>,
    name: &'static str,
    help: &'static str,
    pairs: Arc<Mutex<Vec<PairTimes>>>,
}

/// One pair's cumulative counts.
#[derive(Clone, Debug, Default)]
struct PairTimes {
    labels: Vec<LabelPair>,
    buckets: Buckets,
    sum_ms: i64,
}

impl ConvertTimes {
    pub fn new() -> prometheus::Result<ConvertTimes> {
        ConvertTimes::named(NAME, HELP, &["from", "to"])
    }

    /// `journeyd_moment_duration_seconds{moment}`.
    pub fn moments() -> prometheus::Result<ConvertTimes> {
        ConvertTimes::named(MOMENT_NAME, MOMENT_HELP, &["moment"])
    }

    fn named(
        name: &'static str,
        help: &'static str,
        labels: &[&str],
    ) -> prometheus::Result<ConvertTimes> {
        let labels = labels.iter().map(|&l| l.to_owned()).collect();
        let desc = Desc::new(name.to_owned(), help.to_owned(), labels, Default::default())?;
        Ok(ConvertTimes {
            desc: Arc::new(desc),
            name,
            help,
            pairs: Arc::default(),
        })
    }

    /// The moments' names, in config order: their series start at zero.
    pub fn set_moments(&self, names: &[&str]) {
        *self.pairs() = (names.iter())
            .map(|moment| PairTimes {
                labels: vec![label_pair("moment", moment)],
                ..PairTimes::default()
            })
            .collect();
    }

    /// Takes per-series cumulative buckets and sums, in series order.
    pub fn observe_series(&self, buckets: &[Buckets], sums_ms: &[i64]) {
        let mut series = self.pairs();
        for ((s, b), &sum) in series.iter_mut().zip(buckets).zip(sums_ms) {
            s.buckets = *b;
            s.sum_ms = sum;
        }
    }

    fn pairs(&self) -> MutexGuard<'_, Vec<PairTimes>> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The model's pairs, `(from, to)`, in config order: their series
    /// start at zero.
    pub fn set_pairs(&self, names: &[(&str, &str)]) {
        let label = label_pair;
        *self.pairs() = (names.iter())
            .map(|(from, to)| PairTimes {
                labels: vec![label("from", from), label("to", to)],
                ..PairTimes::default()
            })
            .collect();
    }

    /// Takes the engine's totals (cumulative since it started; a restart
    /// of the engine starts them again, as counters do).
    pub fn observe(&self, totals: &FunnelTotals) {
        let mut pairs = self.pairs();
        for (i, pair) in pairs.iter_mut().enumerate() {
            if let (Some(buckets), Some(&sum)) =
                (totals.convert_times.get(i), totals.convert_ms.get(i))
            {
                pair.buckets = *buckets;
                pair.sum_ms = sum;
            }
        }
    }
}

impl Collector for ConvertTimes {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let metrics = (self.pairs().iter())
            .map(|pair| {
                let mut h = proto::Histogram::default();
                let mut cumulative = 0;
                let mut buckets = Vec::with_capacity(BUCKETS - 1);
                for (&n, &bound) in pair.buckets.iter().zip(&BOUNDS_MS) {
                    cumulative += n;
                    let mut b = proto::Bucket::default();
                    b.set_cumulative_count(cumulative);
                    b.set_upper_bound(bound as f64 / 1000.0);
                    buckets.push(b);
                }
                h.set_bucket(buckets);
                h.set_sample_count(pair.buckets.iter().sum());
                h.set_sample_sum(pair.sum_ms as f64 / 1000.0);
                let mut m = proto::Metric::from_label(pair.labels.clone());
                m.set_histogram(h);
                m
            })
            .collect();
        let mut family = proto::MetricFamily::default();
        family.set_name(self.name.to_owned());
        family.set_help(self.help.to_owned());
        family.set_field_type(proto::MetricType::HISTOGRAM);
        family.set_metric(metrics);
        vec![family]
    }
}

fn label_pair(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}
