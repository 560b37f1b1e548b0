//! Counters and gauges the engine keeps about itself.
//!
//! Plain integers updated inline; the service layer turns them into metrics.
//! Nothing here has a label that grows with the data (no customer ids).

use super::customer::NO_STAGE;
use super::funnel::convert_time::Buckets;
use super::rules::StageIdx;
use crate::model::Band;

/// What the engine has done so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    /// Touchpoints applied to customer state.
    pub events: u64,
    /// Touchpoints dropped as redeliveries of an applied `event_id` (or
    /// input read again after a restore).
    pub duplicates: u64,
    /// Touchpoints applied although their `event_id` could not be checked:
    /// older than their customer's newest minus `time.dedupe_horizon`.
    pub unverified_horizon: u64,
    /// Late touchpoints refused because the customer's de-duplication
    /// memory had overflowed since their time, within the horizon.
    pub unverified_memory: u64,
    /// Touchpoints older than their partition's time on arrival, and
    /// timer firings whose drop-off or lapse fell into a funnel window
    /// already emitted (each excluded from it, and counted late there).
    pub late: u64,
    /// Touchpoints stamped ahead of the wall clock they were read at
    /// (`hybrid` mode): their partition's time went only up to the wall
    /// clock.
    pub ahead: u64,
    /// Experience-score responses off their scale (not counted in the
    /// windows' scores).
    pub scores_off_scale: u64,
    /// Touchpoints processed before their partition's time passed them
    /// because the reorder buffers were full.
    pub forced_early: u64,
    pub stage_changes: u64,
    pub churn_changes: u64,
    /// Churn-band changes by the band entered (low, medium, high).
    pub band_entries: [u64; 3],
    pub conversions: u64,
    pub dropoffs: u64,
    /// Per journey moment (config order): started, completed, abandoned.
    pub moments: Vec<[u64; 3]>,
    /// Per journey moment, completed moments per duration bucket (the
    /// time-to-convert buckets) and the sum of their durations, ms.
    pub moment_times: Vec<Buckets>,
    pub moment_ms: Vec<i64>,
    /// Timer index entries that fired (some find nothing due and re-file).
    pub timers_fired: u64,
    /// Customers evicted after `state_ttl`.
    pub evicted: u64,
    /// Touchpoints of new customers refused at `limits.max_customers`.
    pub refused: u64,
    /// Customers loaded from the changelog.
    pub restored: u64,
    /// Customers erased on request.
    pub erased: u64,
    /// Consent withdrawals carried out (each erases the customer but for
    /// their consent): `[held before, not held]`.
    pub consent_erasures: [u64; 2],
    /// Touchpoints not processed for lack of consent (`consent.mode`), and
    /// consent touchpoints older than the customer's latest consent change.
    pub without_consent: u64,
    /// Touchpoints a restored customer had buffered that were not read
    /// again (the input resumed past them): their effect is lost.
    pub replay_missed: u64,
    /// Customers currently in each stage (by stage index).
    pub customers_per_stage: Vec<u64>,
    /// Customers currently in each churn band (low, medium, high).
    pub customers_per_band: [u64; 3],
    /// Transitions by `from * (stages + 1) + to`, `from = stages` meaning "entered".
    pub transitions: Vec<u64>,
}

impl EngineStats {
    /// Zeroed stats for `stages` stages and `moments` journey moments.
    pub fn new(stages: usize, moments: usize) -> Self {
        EngineStats {
            moments: vec![[0; 3]; moments],
            moment_times: vec![Buckets::default(); moments],
            moment_ms: vec![0; moments],
            customers_per_stage: vec![0; stages],
            transitions: vec![0; (stages + 1) * (stages + 1)],
            ..EngineStats::default()
        }
    }

    fn stages(&self) -> usize {
        self.customers_per_stage.len()
    }

    /// A customer moved from `from` (maybe [`NO_STAGE`]) to `to`.
    pub fn record_transition(&mut self, from: StageIdx, to: StageIdx) {
        let n = self.stages();
        let from_row = if from == NO_STAGE {
            n
        } else {
            self.customers_per_stage[usize::from(from)] -= 1;
            usize::from(from)
        };
        self.customers_per_stage[usize::from(to)] += 1;
        self.transitions[from_row * (n + 1) + usize::from(to)] += 1;
        self.stage_changes += 1;
    }

    /// A customer's band changed (or they were removed: `to` is `None`).
    pub fn record_band(&mut self, from: Option<Band>, to: Option<Band>) {
        if let Some(b) = from {
            self.customers_per_band[b as usize] -= 1;
        }
        if let Some(b) = to {
            self.customers_per_band[b as usize] += 1;
            self.band_entries[b as usize] += 1;
            self.churn_changes += 1;
        }
    }

    /// A customer left memory while in `stage` and `band`.
    pub fn record_removal(&mut self, stage: StageIdx, band: Option<Band>) {
        if stage != NO_STAGE {
            self.customers_per_stage[usize::from(stage)] -= 1;
        }
        if let Some(b) = band {
            self.customers_per_band[b as usize] -= 1;
        }
    }

    /// A customer was loaded in `stage` and `band`.
    pub fn record_restored(&mut self, stage: StageIdx, band: Option<Band>) {
        if stage != NO_STAGE {
            self.customers_per_stage[usize::from(stage)] += 1;
        }
        if let Some(b) = band {
            self.customers_per_band[b as usize] += 1;
        }
    }

    /// Transitions from `from` (`None`: entering) to `to`.
    pub fn transitions_between(&self, from: Option<StageIdx>, to: StageIdx) -> u64 {
        let n = self.stages();
        let row = from.map_or(n, usize::from);
        self.transitions[row * (n + 1) + usize::from(to)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_changes_count_the_band_entered_and_restores_count_none() {
        let mut stats = EngineStats::new(3, 0);
        stats.record_band(None, Some(Band::Low));
        stats.record_band(Some(Band::Low), Some(Band::High));
        stats.record_band(Some(Band::High), Some(Band::Medium));
        stats.record_restored(NO_STAGE, Some(Band::High));
        stats.record_band(Some(Band::Medium), None);
        assert_eq!(stats.band_entries, [1, 1, 1]);
        assert_eq!(stats.churn_changes, 3);
        assert_eq!(stats.customers_per_band, [0, 0, 1]);
    }
}
