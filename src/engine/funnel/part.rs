//! One input partition's share of the funnel windows.
//!
//! A [`Part`] holds what the customers of one partition have added to the
//! windows that are still open for it, and its *floor*: windows ending at
//! or before it are done for this partition (emitted, by this instance or
//! by the partition's previous owner), so what would still fall into them
//! is excluded. The instance sums the parts when it emits a window
//! ([`super::Funnel`]); the changelog keeps each part
//! ([`super::durable`]), so that a partition's counts survive a crash and
//! move with it.
//!
//! Revenue is kept in millionths, as an integer: the parts of a window are
//! summed in partition order, not in the order the touchpoints were
//! applied, and integer sums do not depend on the order (floating-point
//! ones do, in the last bits). A window's revenue is therefore the same
//! however its touchpoints were spread over partitions and instances.

use std::collections::BTreeMap;

use super::convert_time::Buckets;
use super::scores::ScoreRow;
use crate::model::Channel;

/// Revenue units per currency unit: revenue is summed in millionths.
pub const REVENUE_SCALE: f64 = 1_000_000.0;

/// `value` in millionths, rounded (saturating; NaN counts as 0).
pub fn revenue_units(value: f64) -> i64 {
    (value * REVENUE_SCALE).round() as i64
}

/// The counts of one window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accumulator {
    /// Entries per stage, by stage index.
    pub entries: Vec<u64>,
    /// Conversions per conversion pair, by pair index.
    pub conversions: Vec<u64>,
    /// Drop-offs per conversion pair, by pair index.
    pub dropoffs: Vec<u64>,
    /// Customers counted active (once per customer and window).
    pub active_customers: u64,
    /// Revenue in millionths ([`revenue_units`]).
    pub revenue: i64,
    /// Late touchpoints counted here (their own window was closed).
    pub late_events: u64,
    /// Touchpoints per channel, by [`Channel`] index.
    pub channels: [u64; CHANNELS],
    /// Experience-score responses per stage the customer was in, by stage
    /// index, and a last row for customers in none yet; empty until the
    /// window's first response ([`Accumulator::score_row`]).
    pub scores: Vec<ScoreRow>,
    /// Time to convert per conversion pair, by pair index; empty until the
    /// window's first conversion ([`Accumulator::convert_times`]).
    pub convert_times: Vec<Buckets>,
    /// Per conversion pair, the deadlines that started in the window less
    /// those that ended in it (converted, dropped off or left behind), by
    /// event time: what the window moved the number in flight by.
    pub in_flight: Vec<i64>,
    /// Per journey moment, by moment index: started, completed, abandoned,
    /// then the completed ones' durations in the time-to-convert buckets;
    /// empty until the window's first moment ([`Accumulator::moment_row`]).
    pub moments: Vec<MomentRow>,
}

/// The columns of a moment row: started, completed, abandoned, buckets.
pub const MOMENT_COLUMNS: usize = 3 + super::convert_time::BUCKETS;

/// One journey moment's counts in a window ([`Accumulator::moments`]).
pub type MomentRow = [u64; MOMENT_COLUMNS];

/// Adds `from` to `into`, count by count.
pub fn add_counts(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

/// Adds a table of rows to another, growing it to `from`'s length.
fn add_rows<const N: usize>(into: &mut Vec<[u64; N]>, from: &[[u64; N]]) {
    if into.len() < from.len() {
        into.resize(from.len(), [0; N]);
    }
    for (a, b) in into.iter_mut().zip(from) {
        add_counts(a, b);
    }
}

/// Row `i` of a table of `len` rows that is allocated on first use (an
/// index past the end is the last row).
fn row_mut<const N: usize>(rows: &mut Vec<[u64; N]>, len: usize, i: usize) -> &mut [u64; N] {
    if rows.len() < len {
        rows.resize(len, [0; N]);
    }
    &mut rows[i.min(len.saturating_sub(1))]
}

/// Number of channels counted per window.
pub const CHANNELS: usize = Channel::ALL.len();

impl Accumulator {
    /// Zero counts for `stages` stages and `pairs` pairs.
    pub fn new(stages: usize, pairs: usize) -> Self {
        Accumulator {
            entries: vec![0; stages],
            conversions: vec![0; pairs],
            dropoffs: vec![0; pairs],
            in_flight: vec![0; pairs],
            ..Accumulator::default()
        }
    }

    /// Adds `other`'s counts (of the same shape) to these.
    pub fn add(&mut self, other: &Accumulator) {
        add_counts(&mut self.entries, &other.entries);
        add_counts(&mut self.conversions, &other.conversions);
        add_counts(&mut self.dropoffs, &other.dropoffs);
        self.active_customers += other.active_customers;
        self.revenue = self.revenue.saturating_add(other.revenue);
        self.late_events += other.late_events;
        add_counts(&mut self.channels, &other.channels);
        add_rows(&mut self.convert_times, &other.convert_times);
        add_rows(&mut self.scores, &other.scores);
        for (a, b) in self.in_flight.iter_mut().zip(&other.in_flight) {
            *a += b;
        }
        add_rows(&mut self.moments, &other.moments);
    }

    /// The score row of stage index `row` (the number of stages: no stage
    /// yet), allocated with the first response.
    pub fn score_row(&mut self, row: usize) -> &mut ScoreRow {
        row_mut(&mut self.scores, self.entries.len() + 1, row)
    }

    /// The time-to-convert buckets of pair index `pair`, allocated with
    /// the first conversion.
    pub fn convert_times(&mut self, pair: usize) -> &mut Buckets {
        row_mut(&mut self.convert_times, self.conversions.len(), pair)
    }

    /// The row of moment `moment` of `moments`, allocated with the first.
    pub fn moment_row(&mut self, moment: usize, moments: usize) -> &mut MomentRow {
        row_mut(&mut self.moments, moments, moment)
    }

    /// Sets every count to zero, keeping the shape (and the allocation).
    pub fn clear(&mut self) {
        self.entries.fill(0);
        self.conversions.fill(0);
        self.dropoffs.fill(0);
        self.active_customers = 0;
        self.revenue = 0;
        self.late_events = 0;
        self.channels.fill(0);
        self.scores.fill(ScoreRow::default());
        self.convert_times.fill(Buckets::default());
        self.in_flight.fill(0);
        self.moments.fill([0; MOMENT_COLUMNS]);
    }
}

/// One partition's open windows; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Part {
    /// Open windows by start: what this partition added to them so far.
    pub open: BTreeMap<i64, Accumulator>,
    /// Windows ending at or before this are done for this partition.
    pub floor: i64,
    /// At most `floor`; below it only after a restore: the floor of the
    /// partition's own record. The windows in between were emitted by the
    /// same writer after that record, with everything in time for them:
    /// a touchpoint in time for them that is applied again was counted in
    /// them then (see [`super::durable`]).
    pub counted_until: i64,
    /// Something changed since the last drain: the changelog record is due.
    pub changed: bool,
    /// The changelog has a record of this part: one was restored or
    /// written (see [`super::durable`]).
    pub on_record: bool,
    /// The partition is this instance's: its part is claimed in the
    /// records of the others (see [`super::durable`]).
    pub held: bool,
    /// Per conversion pair, the partition's customers whose deadline is
    /// running now (empty until the first). Not persisted: a restore
    /// counts it again from the customers it restores.
    pub pending: Vec<i64>,
    /// Per conversion pair, what the open windows moved the number in
    /// flight by, summed ([`Accumulator::in_flight`]; empty: nothing).
    /// Kept with every change to `open`, so that the number in flight at
    /// the end of the window just emitted is one subtraction.
    pub(super) open_in_flight: Vec<i64>,
}

impl Part {
    /// An empty part, held, whose windows up to `floor` are done.
    pub fn new(floor: i64) -> Part {
        Part {
            floor,
            counted_until: floor,
            held: true,
            ..Part::default()
        }
    }

    /// Forgets every window; windows up to `floor` are done. The count
    /// of deadlines running stays: it follows the customers held.
    pub fn reset(&mut self, floor: i64) {
        let pending = std::mem::take(&mut self.pending);
        *self = Part {
            pending,
            ..Part::new(floor)
        };
    }

    /// Drops the open windows ending at or before `floor`, which becomes
    /// the floor if it is higher. Returns whether a window was dropped.
    pub fn raise_floor(&mut self, floor: i64, size_ms: i64) -> bool {
        self.floor = self.floor.max(floor);
        let floor = self.floor;
        let mut dropped = false;
        while let Some(entry) = self.open.first_entry() {
            if entry.key().saturating_add(size_ms) > floor {
                break;
            }
            let counts = entry.remove();
            self.moved_in_flight(&counts.in_flight, -1);
            dropped = true;
        }
        dropped
    }

    /// Opens the window starting at `start` with `counts` (replacing one
    /// open there).
    pub fn insert(&mut self, start: i64, counts: Accumulator) {
        self.moved_in_flight(&counts.in_flight, 1);
        if let Some(old) = self.open.insert(start, counts) {
            self.moved_in_flight(&old.in_flight, -1);
        }
    }

    /// Closes the window starting at `start`, returning its counts.
    pub fn remove(&mut self, start: i64) -> Option<Accumulator> {
        let counts = self.open.remove(&start)?;
        self.moved_in_flight(&counts.in_flight, -1);
        Some(counts)
    }

    /// Closes the earliest open window if it ends at or before `target`.
    pub fn remove_first_until(&mut self, target: i64, size_ms: i64) -> Option<(i64, Accumulator)> {
        let entry = self.open.first_entry()?;
        if entry.key().saturating_add(size_ms) > target {
            return None;
        }
        let (start, counts) = entry.remove_entry();
        self.moved_in_flight(&counts.in_flight, -1);
        Some((start, counts))
    }

    /// An open window's count in flight on `pair` moved by `delta`.
    pub fn moved_in_flight_on(&mut self, pair: usize, delta: i64, pairs: usize) {
        if self.open_in_flight.len() < pairs {
            self.open_in_flight.resize(pairs, 0);
        }
        self.open_in_flight[pair] += delta;
    }

    fn moved_in_flight(&mut self, by: &[i64], sign: i64) {
        if by.iter().all(|&n| n == 0) {
            return;
        }
        if self.open_in_flight.len() < by.len() {
            self.open_in_flight.resize(by.len(), 0);
        }
        for (sum, n) in self.open_in_flight.iter_mut().zip(by) {
            *sum += sign * n;
        }
    }

    /// Per pair, this part's customers in flight at the end of its last
    /// window closed, every open window being later: those running now,
    /// less what the open windows moved the count by. Added to `into`.
    pub fn add_in_flight(&self, into: &mut [i64]) {
        for (pair, total) in into.iter_mut().enumerate() {
            let now = self.pending.get(pair).copied().unwrap_or(0);
            let later = self.open_in_flight.get(pair).copied().unwrap_or(0);
            *total += now - later;
        }
    }

    /// Whether the sum kept of the open windows' moves is theirs.
    pub fn check_open_in_flight(&self) -> bool {
        let pairs = self.open_in_flight.len();
        let mut sums = vec![0; pairs];
        for counts in self.open.values() {
            for (sum, n) in sums.iter_mut().zip(&counts.in_flight) {
                *sum += n;
            }
            if counts.in_flight.len() > pairs && counts.in_flight[pairs..].iter().any(|&n| n != 0) {
                return false;
            }
        }
        sums == self.open_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revenue_sums_do_not_depend_on_the_order() {
        let values = [19.99, 0.1, 120.5, 0.2, 59.9, 1e-7, 3.333_333_3];
        let forward: i64 = values.iter().map(|&v| revenue_units(v)).sum();
        let backward: i64 = values.iter().rev().map(|&v| revenue_units(v)).sum();
        assert_eq!(forward, backward);
        assert_eq!(forward as f64 / REVENUE_SCALE, 204.023_333);
        assert_eq!(revenue_units(f64::NAN), 0);
    }

    #[test]
    fn accumulators_add_up_and_clear() {
        let mut a = Accumulator::new(2, 1);
        a.entries[1] = 2;
        a.revenue = 5;
        let mut b = Accumulator::new(2, 1);
        b.entries[1] = 1;
        b.dropoffs[0] = 3;
        b.late_events = 1;
        a.add(&b);
        assert_eq!(
            (a.entries[1], a.dropoffs[0], a.revenue, a.late_events),
            (3, 3, 5, 1)
        );
        a.clear();
        assert_eq!(a, Accumulator::new(2, 1));
    }

    #[test]
    fn raising_the_floor_drops_the_windows_below_it() {
        let mut part = Part::new(0);
        for start in [0, 60, 120] {
            part.insert(start, Accumulator::new(1, 1));
        }
        assert!(part.raise_floor(120, 60));
        assert_eq!(part.open.keys().copied().collect::<Vec<_>>(), [120]);
        assert!(!part.raise_floor(60, 60), "never lowered");
        assert_eq!(part.floor, 120);
    }
}
