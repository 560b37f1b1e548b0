//! The funnel metrics: drop-off ratio, conversions and drop-offs per stage
//! pair.
//!
//! Two views of the same numbers: gauges that show the last closed
//! tumbling window as published on `journey.funnel` (what dashboards plot),
//! and `_total` counters that grow as conversions and drop-offs happen
//! (what alert rules take rates of). The counters are fed from engine
//! snapshots ([`super::Metrics::observe_engine`]), the gauges from each
//! closed window ([`Metrics::observe_funnel_window`]).

use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGaugeVec};

use super::Metrics;
use super::convert_time::ConvertTimes;
use super::metrics::gauge_value;
use super::registry::{Made, Reg};
use crate::engine::funnel::CHANNELS;
use crate::model::{Channel, FunnelWindow};

/// The `journeyd_funnel_*` families, labelled `{from, to}`.
pub(super) struct FunnelMetrics {
    pub dropoff_ratio: GaugeVec,
    pub window_conversions: IntGaugeVec,
    pub window_dropoffs: IntGaugeVec,
    pub conversions_total: IntCounterVec,
    pub dropoffs_total: IntCounterVec,
    /// `journeyd_funnel_in_flight{from,to}`.
    pub in_flight: IntGaugeVec,
    pub last_window_end: Gauge,
    /// `journeyd_touchpoints_by_channel_total{channel}`, by [`Channel`]
    /// index.
    pub channel_touchpoints: [IntCounter; CHANNELS],
    /// `journeyd_score{score}`: the last closed window's NPS, CSAT, CES
    /// (NaN before the first window with responses).
    pub score: [Gauge; 3],
    /// `journeyd_score_responses_total{score}`.
    pub score_responses: [IntCounter; 3],
    /// `journeyd_time_to_convert_seconds{from,to}`.
    pub convert_times: ConvertTimes,
    /// `journeyd_moment_duration_seconds{moment}`.
    pub moment_times: ConvertTimes,
}

/// The `score` label values, in [`FunnelMetrics::score`] order.
const SCORES: [&str; 3] = ["nps", "csat", "ces"];

impl FunnelMetrics {
    pub fn new(r: &Reg<'_>) -> Made<Self> {
        let pair = &["from", "to"];
        Ok(FunnelMetrics {
            dropoff_ratio: r.float_gauge_vec(
                "journeyd_funnel_dropoff_ratio",
                "dropoffs / (dropoffs + conversions) in the last closed funnel window (NaN: neither).",
                pair,
            )?,
            window_conversions: r.gauge_vec(
                "journeyd_funnel_conversions",
                "Conversions per stage pair in the last closed funnel window.",
                pair,
            )?,
            window_dropoffs: r.gauge_vec(
                "journeyd_funnel_dropoffs",
                "Drop-offs per stage pair in the last closed funnel window.",
                pair,
            )?,
            conversions_total: r.counter_vec(
                "journeyd_funnel_conversions_total",
                "Conversions per stage pair, counted as they happen.",
                pair,
            )?,
            dropoffs_total: r.counter_vec(
                "journeyd_funnel_dropoffs_total",
                "Drop-offs per stage pair, counted as their deadline passes.",
                pair,
            )?,
            in_flight: r.gauge_vec(
                "journeyd_funnel_in_flight",
                "Customers whose deadline for the stage pair is running now: neither converted \
                 nor dropped off yet.",
                pair,
            )?,
            last_window_end: r.float_gauge(
                "journeyd_funnel_last_window_end_timestamp_seconds",
                "End (event time, Unix seconds) of the last closed funnel window.",
            )?,
            channel_touchpoints: {
                let vec = r.counter_vec(
                    "journeyd_touchpoints_by_channel_total",
                    "Touchpoints counted in the funnel windows, by channel, as windows close.",
                    &["channel"],
                )?;
                Channel::ALL.map(|c| vec.with_label_values(&[c.as_str()]))
            },
            score: {
                let vec = r.float_gauge_vec(
                    "journeyd_score",
                    "Experience score in the last closed funnel window with responses: nps (-100 to \
                     100), csat (% satisfied), ces (mean effort); NaN before the first.",
                    &["score"],
                )?;
                SCORES.map(|name| {
                    let gauge = vec.with_label_values(&[name]);
                    gauge.set(f64::NAN);
                    gauge
                })
            },
            score_responses: {
                let vec = r.counter_vec(
                    "journeyd_score_responses_total",
                    "Experience-score responses counted in the funnel windows, as windows close.",
                    &["score"],
                )?;
                SCORES.map(|name| vec.with_label_values(&[name]))
            },
            convert_times: r.collector(ConvertTimes::new()?)?,
            moment_times: r.collector(ConvertTimes::moments()?)?,
        })
    }
}

impl Metrics {
    /// Publishes a closed funnel window: the `journeyd_funnel_*` gauges
    /// show the last closed window. Called once per window, off the hot path.
    pub fn observe_funnel_window(&self, window: &FunnelWindow) {
        let f = &self.funnel;
        for pair in &window.pairs {
            let labels = [pair.from_stage.as_str(), pair.to_stage.as_str()];
            let ratio = pair.dropoff_ratio.unwrap_or(f64::NAN);
            f.dropoff_ratio.with_label_values(&labels).set(ratio);
            f.window_conversions
                .with_label_values(&labels)
                .set(gauge_value(pair.conversions));
            f.window_dropoffs
                .with_label_values(&labels)
                .set(gauge_value(pair.dropoffs));
        }
        f.last_window_end.set(window.window_end as f64 / 1000.0);
        for c in &window.channels {
            let i = Channel::parse(c.channel) as usize;
            f.channel_touchpoints[i].inc_by(c.touchpoints);
        }
        let s = &window.scores;
        let read = [
            (s.nps.responses, s.nps.score),
            (s.csat.responses, s.csat.score),
            (s.ces.responses, s.ces.score),
        ];
        for (i, (responses, score)) in read.into_iter().enumerate() {
            if let Some(score) = score {
                f.score[i].set(score);
                f.score_responses[i].inc_by(responses);
            }
        }
    }
}
