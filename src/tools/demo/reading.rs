//! The numbers the demo shows, read from the service's Prometheus registry
//! exactly as a scrape of `/metrics` would see them: nothing here looks
//! inside the engine.

use prometheus::Registry;
use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

use crate::config::Config;
use crate::model::{Band, OutputKind};

/// Output topics shown: the derived outputs, then the dead letters.
pub const OUTPUTS: usize = OutputKind::ALL.len() + 1;

/// What to read, in the order to show it; from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Stage names by ordinal, the lapse stage last.
    pub stages: Vec<String>,
    /// Conversion pairs `(from, to)`, in config order.
    pub pairs: Vec<(String, String)>,
    /// The output topics: the derived outputs ([`OutputKind::ALL`]), then
    /// the dead letters.
    pub outputs: [String; OUTPUTS],
    /// Journey moment names, in config order.
    pub moments: Vec<String>,
}

impl Layout {
    /// The layout of `config`'s journey model and topics.
    pub fn of(config: &Config) -> Layout {
        let journey = &config.journey;
        let mut stages: Vec<_> = journey.stages.iter().collect();
        stages.sort_by_key(|s| (s.name == journey.lapse.stage, s.ordinal));
        let outputs = &config.outputs;
        Layout {
            stages: stages.iter().map(|s| s.name.clone()).collect(),
            pairs: journey
                .conversions
                .iter()
                .map(|c| (c.from.clone(), c.to.clone()))
                .collect(),
            outputs: std::array::from_fn(|i| match OutputKind::ALL.get(i) {
                Some(&kind) => outputs.topic(kind).to_owned(),
                None => outputs.dlq.clone(),
            }),
            moments: journey.moments.iter().map(|m| m.name.clone()).collect(),
        }
    }
}

/// One stage pair in the last closed funnel window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairReading {
    /// Customers who reached the next stage in time.
    pub conversions: u64,
    /// Customers whose conversion deadline passed.
    pub dropoffs: u64,
    /// `dropoffs / (dropoffs + conversions)`; `None` before the first
    /// window or when both are zero.
    pub ratio: Option<f64>,
}

/// One reading of the registry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// Touchpoints consumed (all topics and actions).
    pub consumed: u64,
    /// Records rejected to the dead-letter topic (all reasons).
    pub invalid: u64,
    /// Redeliveries ignored.
    pub duplicates: u64,
    /// Touchpoints older than the watermark on arrival.
    pub late: u64,
    /// Customers held in memory.
    pub tracked: u64,
    /// Customers per stage, in [`Layout::stages`] order.
    pub stages: Vec<u64>,
    /// Customers per churn band, low to high.
    pub bands: [u64; 3],
    /// The last closed funnel window, in [`Layout::pairs`] order.
    pub pairs: Vec<PairReading>,
    /// Consumer lag over all input partitions.
    pub lag: u64,
    /// Records acknowledged per output topic, in [`Layout::outputs`] order.
    pub published: [u64; OUTPUTS],
    /// Wall clock minus watermark, in seconds.
    pub watermark_lag: f64,
    /// NPS, CSAT and CES of the last closed window with responses, and the
    /// responses counted so far; `None` before the first.
    pub scores: [Option<ScoreReading>; 3],
    /// Per journey moment, in [`Layout::moments`] order: started,
    /// completed, abandoned.
    pub moments: Vec<[u64; 3]>,
}

/// One experience score ([`Reading::scores`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoreReading {
    /// The score in the last closed window with responses.
    pub score: f64,
    /// Responses counted in every closed window.
    pub responses: u64,
}

/// The `score` label of each of [`Reading::scores`].
pub const SCORES: [&str; 3] = ["nps", "csat", "ces"];

impl Reading {
    /// Reads `registry` for `layout`.
    pub fn of(registry: &Registry, layout: &Layout) -> Reading {
        Reading::from_families(&registry.gather(), layout)
    }

    /// Reads gathered metric families for `layout`.
    pub fn from_families(families: &[MetricFamily], layout: &Layout) -> Reading {
        let m = Families(families);
        let count = |v: f64| {
            if v.is_finite() && v > 0.0 {
                v as u64
            } else {
                0
            }
        };
        let labelled = |name, label, value: &str| count(m.sum_where(name, &[(label, value)]));
        Reading {
            consumed: count(m.sum("journeyd_events_consumed_total")),
            invalid: count(m.sum("journeyd_events_invalid_total")),
            duplicates: count(m.sum("journeyd_events_duplicate_total")),
            late: count(m.sum("journeyd_events_late_total")),
            tracked: count(m.sum("journeyd_tracked_customers")),
            stages: (layout.stages.iter())
                .map(|stage| labelled("journeyd_customers", "stage", stage))
                .collect(),
            bands: Band::ALL.map(|b| labelled("journeyd_customers_churn_band", "band", b.as_str())),
            pairs: (layout.pairs.iter())
                .map(|(from, to)| m.pair(from, to))
                .collect(),
            lag: count(m.sum("journeyd_consumer_lag")),
            published: (layout.outputs.each_ref())
                .map(|topic| labelled("journeyd_outputs_total", "topic", topic)),
            watermark_lag: m.sum("journeyd_watermark_lag_seconds"),
            // NaN (or no series) before the first window with responses.
            scores: SCORES.map(|name| {
                let labels = [("score", name)];
                let score = m.sum_where("journeyd_score", &labels);
                let responses = count(m.sum_where("journeyd_score_responses_total", &labels));
                (score.is_finite() && responses > 0).then_some(ScoreReading { score, responses })
            }),
            moments: (layout.moments.iter())
                .map(|moment| {
                    ["started", "completed", "abandoned"].map(|outcome| {
                        let labels = [("moment", moment.as_str()), ("outcome", outcome)];
                        count(m.sum_where("journeyd_moments_total", &labels))
                    })
                })
                .collect(),
        }
    }
}

/// Gathered families, searched by name and labels.
struct Families<'a>(&'a [MetricFamily]);

impl Families<'_> {
    /// The metrics of family `name`, with the family's type.
    fn metrics(&self, name: &str) -> impl Iterator<Item = (MetricType, &Metric)> {
        (self.0.iter())
            .filter(move |f| f.name() == name)
            .flat_map(|f| f.get_metric().iter().map(move |m| (f.get_field_type(), m)))
    }

    /// The sum over every series of `name`.
    fn sum(&self, name: &str) -> f64 {
        self.sum_where(name, &[])
    }

    /// The sum over the series of `name` that carry every label of `labels`.
    fn sum_where(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        (self.metrics(name))
            .filter(|(_, m)| labels.iter().all(|(k, v)| has_label(m.get_label(), k, v)))
            .map(|(kind, m)| value(kind, m))
            .sum()
    }

    /// The funnel gauges of one stage pair.
    fn pair(&self, from: &str, to: &str) -> PairReading {
        let labels = [("from", from), ("to", to)];
        let gauge = |name| self.sum_where(name, &labels);
        let ratio = gauge("journeyd_funnel_dropoff_ratio");
        PairReading {
            conversions: gauge("journeyd_funnel_conversions").max(0.0) as u64,
            dropoffs: gauge("journeyd_funnel_dropoffs").max(0.0) as u64,
            ratio: ratio.is_finite().then_some(ratio),
        }
        .checked()
    }
}

impl PairReading {
    /// No ratio when the window saw neither conversions nor drop-offs
    /// (including before the first window closed).
    fn checked(self) -> PairReading {
        let seen = self.conversions + self.dropoffs > 0;
        PairReading {
            ratio: self.ratio.filter(|_| seen),
            ..self
        }
    }
}

fn has_label(labels: &[LabelPair], name: &str, value: &str) -> bool {
    labels
        .iter()
        .any(|l| l.name() == name && l.value() == value)
}

/// The value of a counter or gauge series; 0 for other kinds.
fn value(kind: MetricType, metric: &Metric) -> f64 {
    match kind {
        MetricType::COUNTER => metric.get_counter().get_value(),
        MetricType::GAUGE => metric.get_gauge().get_value(),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

    use super::*;

    fn registry() -> Registry {
        let registry = Registry::new();
        let consumed = IntCounterVec::new(
            Opts::new("journeyd_events_consumed_total", "c"),
            &["topic", "action"],
        )
        .unwrap();
        consumed
            .with_label_values(&["touchpoints", "purchase"])
            .inc_by(3);
        consumed
            .with_label_values(&["touchpoints", "other"])
            .inc_by(4);
        let stages = IntGaugeVec::new(Opts::new("journeyd_customers", "s"), &["stage"]).unwrap();
        stages.with_label_values(&["lapsed"]).set(2);
        stages.with_label_values(&["awareness"]).set(9);
        let ratio = GaugeVec::new(
            Opts::new("journeyd_funnel_dropoff_ratio", "r"),
            &["from", "to"],
        )
        .unwrap();
        ratio
            .with_label_values(&["consideration", "purchase"])
            .set(0.25);
        ratio
            .with_label_values(&["awareness", "consideration"])
            .set(f64::NAN);
        let dropoffs =
            IntGaugeVec::new(Opts::new("journeyd_funnel_dropoffs", "d"), &["from", "to"]).unwrap();
        dropoffs
            .with_label_values(&["consideration", "purchase"])
            .set(1);
        for collector in [
            Box::new(consumed) as Box<dyn prometheus::core::Collector>,
            Box::new(stages),
            Box::new(ratio),
            Box::new(dropoffs),
        ] {
            registry.register(collector).unwrap();
        }
        registry
    }

    #[test]
    fn the_layout_puts_the_lapse_stage_last() {
        let layout = Layout::of(&Config::default());
        assert_eq!(
            layout.stages,
            [
                "awareness",
                "consideration",
                "purchase",
                "retention",
                "advocacy",
                "lapsed"
            ]
        );
        assert_eq!(layout.pairs.len(), 4);
        assert_eq!(layout.outputs[0], "journey.stage-changes");
    }

    #[test]
    fn counters_and_gauges_are_summed_by_label() {
        let layout = Layout::of(&Config::default());
        let reading = Reading::of(&registry(), &layout);
        assert_eq!(reading.consumed, 7);
        assert_eq!(reading.stages, [9, 0, 0, 0, 0, 2]);
        assert_eq!(reading.pairs[0], PairReading::default());
        assert_eq!(
            reading.pairs[1],
            PairReading {
                conversions: 0,
                dropoffs: 1,
                ratio: Some(0.25)
            }
        );
        assert_eq!(reading.invalid, 0);
    }
}
