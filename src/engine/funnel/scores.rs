//! Experience scores in the funnel windows: NPS, CSAT and CES responses,
//! counted per stage the customer was in when answering (README,
//! "Outputs"; the scales are `[journey.scores]`).
//!
//! A window keeps, per stage (and one more row for customers not yet in
//! any), seven counts ([`ScoreRow`]); everything shown is computed from
//! them when the window is emitted, so that the parts of a window add up
//! exactly whatever the order:
//! - NPS: % promoters minus % detractors, -100 to 100;
//! - CSAT: % of responses at or above `csat_satisfied_min`, 0 to 100;
//! - CES: the mean response, 1 to `ces_max`.

use crate::config::ScoresConfig;
use crate::model::{CesScore, CsatScore, ExperienceScores, NpsScore};

/// Which score an action's `value` answers; its number indexes a
/// customer's latest scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreKind {
    Nps = 0,
    Csat = 1,
    Ces = 2,
}

/// Columns of a [`ScoreRow`].
pub const NPS_DETRACTORS: usize = 0;
pub const NPS_PASSIVES: usize = 1;
pub const NPS_PROMOTERS: usize = 2;
pub const CSAT_RESPONSES: usize = 3;
pub const CSAT_SATISFIED: usize = 4;
pub const CES_RESPONSES: usize = 5;
pub const CES_SUM: usize = 6;

/// One stage's response counts in one window.
pub type ScoreRow = [u64; 7];

/// The scales, compiled from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Scales {
    nps_max: u8,
    promoter_min: u8,
    detractor_max: u8,
    csat_max: u8,
    satisfied_min: u8,
    ces_max: u8,
}

impl Scales {
    pub fn new(config: &ScoresConfig) -> Scales {
        Scales {
            nps_max: config.nps_max,
            promoter_min: config.nps_promoter_min,
            detractor_max: config.nps_detractor_max,
            csat_max: config.csat_max,
            satisfied_min: config.csat_satisfied_min,
            ces_max: config.ces_max,
        }
    }

    /// Adds one response of `kind` to `row`; `false` (and nothing added)
    /// when `value` is absent, not a whole number, or off the scale.
    pub fn count(&self, kind: ScoreKind, value: Option<f64>, row: &mut ScoreRow) -> bool {
        let Some(v) = self.response(kind, value) else {
            return false;
        };
        match kind {
            ScoreKind::Nps => {
                let column = if v >= self.promoter_min {
                    NPS_PROMOTERS
                } else if v <= self.detractor_max {
                    NPS_DETRACTORS
                } else {
                    NPS_PASSIVES
                };
                row[column] += 1;
            }
            ScoreKind::Csat => {
                row[CSAT_RESPONSES] += 1;
                row[CSAT_SATISFIED] += u64::from(v >= self.satisfied_min);
            }
            ScoreKind::Ces => {
                row[CES_RESPONSES] += 1;
                row[CES_SUM] += u64::from(v);
            }
        }
        true
    }

    /// The response `value` to a `kind` question, if it is a whole number
    /// on the scale.
    pub fn response(&self, kind: ScoreKind, value: Option<f64>) -> Option<u8> {
        let v = value.filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= 255.0)? as u8;
        let on_scale = match kind {
            ScoreKind::Nps => v <= self.nps_max,
            ScoreKind::Csat => (1..=self.csat_max).contains(&v),
            ScoreKind::Ces => (1..=self.ces_max).contains(&v),
        };
        on_scale.then_some(v)
    }
}

/// The scores of `row`.
pub fn render(row: &ScoreRow) -> ExperienceScores {
    let percent = |part: u64, whole: u64| (whole > 0).then(|| 100.0 * part as f64 / whole as f64);
    let [detractors, passives, promoters] =
        [row[NPS_DETRACTORS], row[NPS_PASSIVES], row[NPS_PROMOTERS]];
    let nps_responses = detractors + passives + promoters;
    ExperienceScores {
        nps: NpsScore {
            responses: nps_responses,
            promoters,
            passives,
            detractors,
            score: (nps_responses > 0)
                .then(|| 100.0 * (promoters as f64 - detractors as f64) / nps_responses as f64),
        },
        csat: CsatScore {
            responses: row[CSAT_RESPONSES],
            satisfied: row[CSAT_SATISFIED],
            score: percent(row[CSAT_SATISFIED], row[CSAT_RESPONSES]),
        },
        ces: CesScore {
            responses: row[CES_RESPONSES],
            score: (row[CES_RESPONSES] > 0)
                .then(|| row[CES_SUM] as f64 / row[CES_RESPONSES] as f64),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_counts_promoters_passives_and_detractors() {
        let scales = Scales::new(&ScoresConfig::default());
        let mut row = ScoreRow::default();
        for v in [10.0, 9.0, 8.0, 7.0, 6.0, 0.0, 10.0] {
            assert!(scales.count(ScoreKind::Nps, Some(v), &mut row));
        }
        for off in [None, Some(11.0), Some(8.5), Some(-1.0), Some(f64::NAN)] {
            assert!(!scales.count(ScoreKind::Nps, off, &mut row), "{off:?}");
        }
        let nps = render(&row).nps;
        assert_eq!((nps.promoters, nps.passives, nps.detractors), (3, 2, 2));
        // 3 promoters, 2 detractors of 7: (3 - 2) / 7 = 14.29 points.
        assert_eq!(nps.score, Some(100.0 / 7.0));
    }

    #[test]
    fn csat_is_the_share_satisfied_and_ces_the_mean() {
        let scales = Scales::new(&ScoresConfig::default());
        let mut row = ScoreRow::default();
        for v in [5.0, 4.0, 3.0, 1.0] {
            assert!(scales.count(ScoreKind::Csat, Some(v), &mut row));
        }
        assert!(!scales.count(ScoreKind::Csat, Some(0.0), &mut row));
        assert!(!scales.count(ScoreKind::Csat, Some(6.0), &mut row));
        for v in [2.0, 3.0, 7.0] {
            assert!(scales.count(ScoreKind::Ces, Some(v), &mut row));
        }
        assert!(!scales.count(ScoreKind::Ces, Some(8.0), &mut row));
        let scores = render(&row);
        assert_eq!((scores.csat.responses, scores.csat.satisfied), (4, 2));
        assert_eq!(scores.csat.score, Some(50.0));
        assert_eq!((scores.ces.responses, scores.ces.score), (3, Some(4.0)));
        assert_eq!(render(&ScoreRow::default()).nps.score, None);
    }
}
