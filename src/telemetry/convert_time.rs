//! `journeyd_time_to_convert_seconds{from,to}`: a Prometheus histogram of
//! how long conversions took, from the engine's own buckets
//! ([`crate::engine::funnel::convert_time`]) rather than observed one by
//! one: the engine counts, and each metrics observation copies its totals
//! here (a few hundred numbers, every `runtime.metrics_interval`).

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair};

use crate::engine::funnel::FunnelTotals;
use crate::engine::funnel::convert_time::{BOUNDS_MS, BUCKETS, Buckets};

const NAME: &str = "journeyd_time_to_convert_seconds";
const HELP: &str = "Time from entering a stage to entering the next one of its conversion pair, \
                    for every conversion counted.";

/// The histogram family; cheap to clone (shared state).
#[derive(Clone)]
pub(super) struct ConvertTimes {
    desc: Arc<Desc>,
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
        let labels = vec!["from".to_owned(), "to".to_owned()];
        let desc = Desc::new(NAME.to_owned(), HELP.to_owned(), labels, Default::default())?;
        Ok(ConvertTimes {
            desc: Arc::new(desc),
            pairs: Arc::default(),
        })
    }

    fn pairs(&self) -> MutexGuard<'_, Vec<PairTimes>> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The model's pairs, `(from, to)`, in config order: their series
    /// start at zero.
    pub fn set_pairs(&self, names: &[(&str, &str)]) {
        let label = |name: &str, value: &str| {
            let mut l = LabelPair::default();
            l.set_name(name.to_owned());
            l.set_value(value.to_owned());
            l
        };
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
        family.set_name(NAME.to_owned());
        family.set_help(HELP.to_owned());
        family.set_field_type(proto::MetricType::HISTOGRAM);
        family.set_metric(metrics);
        vec![family]
    }
}
