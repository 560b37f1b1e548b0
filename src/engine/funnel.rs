//! Tumbling event-time funnel windows, closed by the watermark.
//!
//! Each window `[start, start + size)` accumulates stage entries,
//! conversions and drop-offs per stage pair, active customers, revenue and
//! late arrivals, keyed by the event time they happened at (a drop-off at
//! its deadline). Windows aggregate every partition, so they follow the
//! instance watermark, not a partition's time: when it passes a window's
//! end (and the engine has processed everything before it in the
//! partitions that hold it back) the window is emitted as a
//! [`FunnelWindow`] and closed for good; anything that later falls into a
//! closed window (a late touchpoint, or one of a partition resumed behind
//! the instance) is excluded and counted as late in the oldest open
//! window instead. Windows in which nothing happened are not emitted.

use std::collections::BTreeMap;

use super::rules::{Rules, StageIdx};
use crate::model::{EventTime, FunnelWindow, PairCount, StageCount};

/// Counts of one open window.
#[derive(Clone, Debug)]
struct Accumulator {
    entries: Vec<u64>,
    conversions: Vec<u64>,
    dropoffs: Vec<u64>,
    active_customers: u64,
    revenue: f64,
    late_events: u64,
}

impl Accumulator {
    fn new(stages: usize, pairs: usize) -> Self {
        Accumulator {
            entries: vec![0; stages],
            conversions: vec![0; pairs],
            dropoffs: vec![0; pairs],
            active_customers: 0,
            revenue: 0.0,
            late_events: 0,
        }
    }
}

/// Totals over every window, closed or not, for summaries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunnelTotals {
    pub entries: Vec<u64>,
    pub conversions: Vec<u64>,
    pub dropoffs: Vec<u64>,
    pub revenue: f64,
}

/// The open windows.
#[derive(Clone, Debug)]
pub struct Funnel {
    size_ms: i64,
    open: BTreeMap<i64, Accumulator>,
    /// Every window ending at or before this is closed.
    closed_until: i64,
    sequence: u64,
    stages: usize,
    pairs: usize,
    totals: FunnelTotals,
}

impl Funnel {
    /// Windows of `size_ms` for the stages and pairs of `rules`.
    pub fn new(size_ms: i64, rules: &Rules) -> Self {
        let (stages, pairs) = (rules.stages.len(), rules.conversions.len());
        Funnel {
            size_ms: size_ms.max(1),
            open: BTreeMap::new(),
            closed_until: i64::MIN,
            sequence: 0,
            stages,
            pairs,
            totals: FunnelTotals {
                entries: vec![0; stages],
                conversions: vec![0; pairs],
                dropoffs: vec![0; pairs],
                revenue: 0.0,
            },
        }
    }

    /// Start of the window containing `t` (saturating: `MIN` for the
    /// beginning of time, which ends no window).
    pub fn window_start(&self, t: EventTime) -> i64 {
        t.0.div_euclid(self.size_ms).saturating_mul(self.size_ms)
    }

    /// The window index of `t`, truncated: a cheap per-customer marker.
    pub fn window_marker(&self, t: EventTime) -> u32 {
        t.0.div_euclid(self.size_ms) as u32
    }

    /// Whether the window containing `t` was already emitted.
    pub fn is_closed(&self, t: EventTime) -> bool {
        self.window_start(t).saturating_add(self.size_ms) <= self.closed_until
    }

    fn open_window(&mut self, t: EventTime) -> Option<&mut Accumulator> {
        if self.is_closed(t) {
            return None;
        }
        let (stages, pairs) = (self.stages, self.pairs);
        let start = self.window_start(t);
        Some(
            self.open
                .entry(start)
                .or_insert_with(|| Accumulator::new(stages, pairs)),
        )
    }

    /// A customer entered `stage` at `t`. Returns `false` if excluded (closed window).
    pub fn entry(&mut self, t: EventTime, stage: StageIdx) -> bool {
        self.totals.entries[usize::from(stage)] += 1;
        self.open_window(t)
            .map(|w| w.entries[usize::from(stage)] += 1)
            .is_some()
    }

    /// A customer converted on conversion pair `pair` at `t`.
    pub fn conversion(&mut self, t: EventTime, pair: usize) {
        self.totals.conversions[pair] += 1;
        if let Some(w) = self.open_window(t) {
            w.conversions[pair] += 1;
        }
    }

    /// A customer dropped off pair `pair`, its deadline being `t`.
    pub fn dropoff(&mut self, t: EventTime, pair: usize) {
        self.totals.dropoffs[pair] += 1;
        if let Some(w) = self.open_window(t) {
            w.dropoffs[pair] += 1;
        }
    }

    /// A customer was active at `t` (counted once per window by the caller).
    pub fn active(&mut self, t: EventTime) {
        if let Some(w) = self.open_window(t) {
            w.active_customers += 1;
        }
    }

    /// Revenue at `t`.
    pub fn revenue(&mut self, t: EventTime, value: f64) {
        self.totals.revenue += value;
        if let Some(w) = self.open_window(t) {
            w.revenue += value;
        }
    }

    /// A late event fell into a closed window: count it in the oldest open one.
    pub fn late(&mut self) {
        let t = EventTime(self.closed_until);
        if let Some(w) = self.open_window(t) {
            w.late_events += 1;
        }
    }

    /// Emits, in order, every window that ends at or before `frontier`.
    pub fn close_until(
        &mut self,
        frontier: EventTime,
        rules: &Rules,
        out: &mut impl FnMut(FunnelWindow),
    ) {
        let closed_until = self.window_start(frontier).max(self.closed_until);
        while let Some(entry) = self.open.first_entry() {
            if entry.key().saturating_add(self.size_ms) > closed_until {
                break;
            }
            let (start, acc) = entry.remove_entry();
            self.sequence += 1;
            out(self.render(start, acc, rules));
        }
        self.closed_until = closed_until;
    }

    fn render(&self, start: i64, acc: Accumulator, rules: &Rules) -> FunnelWindow {
        let entries = rules
            .stages
            .iter()
            .zip(&acc.entries)
            .map(|(s, &count)| StageCount {
                stage: s.name.clone(),
                count,
            })
            .collect();
        let pairs = rules
            .conversions
            .iter()
            .map(|c| {
                pair_count(
                    rules,
                    c.from,
                    c.to,
                    acc.conversions[c.index],
                    acc.dropoffs[c.index],
                )
            })
            .collect();
        FunnelWindow {
            sequence: self.sequence,
            window_start: start,
            window_end: start.saturating_add(self.size_ms),
            entries,
            pairs,
            active_customers: acc.active_customers,
            revenue: acc.revenue,
            late_events: acc.late_events,
        }
    }

    /// Totals over all windows so far, including open ones.
    pub fn totals(&self) -> &FunnelTotals {
        &self.totals
    }

    /// Number of windows emitted.
    pub fn emitted(&self) -> u64 {
        self.sequence
    }
}

/// One stage-pair row with its drop-off ratio.
pub fn pair_count(
    rules: &Rules,
    from: StageIdx,
    to: StageIdx,
    conversions: u64,
    dropoffs: u64,
) -> PairCount {
    let total = conversions + dropoffs;
    PairCount {
        from_stage: rules.stage_name(from).clone(),
        to_stage: rules.stage_name(to).clone(),
        conversions,
        dropoffs,
        dropoff_ratio: (total > 0).then(|| dropoffs as f64 / total as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn windows_close_in_order_and_exclude_late_counts() {
        let rules = Rules::compile(&Config::default()).unwrap();
        let mut funnel = Funnel::new(60_000, &rules);
        assert!(funnel.entry(EventTime(10_000), 1));
        funnel.dropoff(EventTime(70_000), 1);
        funnel.conversion(EventTime(75_000), 1);
        let mut out = Vec::new();
        funnel.close_until(EventTime(65_000), &rules, &mut |w| out.push(w));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].window_start, out[0].entries[1].count), (0, 1));
        assert!(!funnel.entry(EventTime(20_000), 1), "window 0 is closed");
        funnel.late();
        funnel.close_until(EventTime(120_000), &rules, &mut |w| out.push(w));
        let second = &out[1];
        assert_eq!((second.window_start, second.late_events), (60_000, 1));
        assert_eq!(second.pairs[1].dropoff_ratio, Some(0.5));
        assert_eq!(funnel.totals().entries[1], 2, "totals include late entries");
    }
}
