//! The funnel parts in the changelog: what a drain writes of each
//! partition's windows, and how restored parts take up where they were.
//!
//! Each drain writes, after a partition's customers, one record of the
//! partition's part ([`FunnelState`]): its open windows, and its floor, up
//! to which it had emitted its windows. The service sends a drain's records
//! in order, so the part record is the last of its partition in the drain,
//! and a changelog read up to it holds every customer of that drain
//! ([`crate::engine::changelog`] has the restore side). Restored customers
//! skip the touchpoints they had applied when they were written; the part
//! record of the same drain holds exactly what those touchpoints added to
//! the windows still open, and touchpoints applied again add the rest.
//!
//! # Floors after a crash
//!
//! In at-least-once mode a drain is sent once every output before it is
//! acknowledged, and the next one only once this one is; a crash may leave
//! the last drain partly written. Partitions can therefore restore from
//! two consecutive drains, n and n + 1, and the windows closed between
//! them were emitted with everything every partition had counted in them.
//! A partition restored from drain n applies again what it applied between
//! n and n + 1, and some of that falls into those windows. So the floors
//! of one writer's records are settled to the highest of them
//! ([`Funnel::settle_restored`]): no window it had emitted is emitted
//! again, and what a touchpoint applied again adds to one of them is
//! dropped without a trace if the touchpoint is in time (not behind its
//! partition's time: it was applied before the window closed, and counted
//! in it), and counted as late as usual otherwise
//! ([`super::Funnel::late`]).
//!
//! ```text
//! drain n    p0: {w1, w2} floor f            p1: {w1, w2} floor f
//!            w1 closes: emitted with p0's and p1's counts
//! drain n+1  p0: {w2} floor f' (past w1)     p1: lost in the crash
//! restore    both at floor f': w1 stays emitted; p1 reads again what it
//!            read after drain n, and its counts in w1 are dropped; w2 is
//!            p0's of n+1 + p1's of n + what p1 reads again
//! ```
//!
//! # Claims
//!
//! A crash can also lose every record a drain had for a partition, and
//! the partition may have no older one: its first drain. Its windows that
//! closed before the crash were emitted with its counts all the same. So
//! each record also names the writer's other parts with their floors, its
//! *claims*, and a partition assigned in the same restore takes the
//! highest floor any restored record claims for it, whether or not it has
//! a record of its own:
//!
//! ```text
//! first drain  p0: lost in the crash       p1: {w2} floor f', claims p0 at f'
//! restore      p0 starts at floor f': what it reads again into w1 is
//!              dropped as above, instead of w1 being emitted again with
//!              p0's counts only
//! ```
//!
//! A partition's floor only rises, from one owner to the next, so the
//! highest claim is never one its windows have not reached. Records of
//! version 1 claim nothing; the writer rule above covers them.
//!
//! A partition whose changelog holds no part record yet (a new one, or
//! one written by a version without them) gets one more in its first
//! drain, before its customers: an empty part. Its customers already in
//! the changelog reflect no funnel counts, and an unfinished first drain
//! is then held back like any other.
//!
//! Each writer by itself: a partition taken over from an instance that
//! had emitted fewer windows than another keeps its own writer's floor
//! (and may be lagging, see [`super`]).

use super::{Accumulator, Funnel, Part, add_counts};
use crate::engine::rules::Rules;
use crate::engine::snapshot::FunnelState;

/// What the funnel does for the changelog.
#[derive(Clone, Debug, Default)]
pub(super) struct Durability {
    /// Changes are tracked for the changelog (off for replays).
    pub tracking: bool,
    /// Identifies this engine's part records ([`Funnel::set_writer`]).
    pub writer: u64,
    /// Parts restored since the last settlement.
    restored: Vec<Restored>,
    /// Partitions assigned since the last settlement.
    assigned: Vec<u32>,
    /// The claims of the records restored since the last settlement.
    claims: Vec<(u32, i64)>,
}

impl Durability {
    /// `partition` was assigned: its floor is settled with the restore.
    pub(super) fn assigned(&mut self, partition: u32) {
        if !self.assigned.contains(&partition) {
            self.assigned.push(partition);
        }
    }
}

/// A part record restored, waiting for [`Funnel::settle_restored`].
#[derive(Clone, Copy, Debug)]
struct Restored {
    partition: u32,
    writer: u64,
    floor: i64,
}

impl Funnel {
    /// Tracks changes for the changelog (or stops).
    pub fn track_changes(&mut self, on: bool) {
        self.durability.tracking = on;
        if !on {
            for part in &mut self.parts {
                part.changed = false;
            }
        }
    }

    /// Sets the id stamped on this engine's part records.
    pub fn set_writer(&mut self, writer: u64) {
        self.durability.writer = writer;
    }

    /// Whether `partition`'s part changed since the last drain.
    pub fn changed(&self, partition: u32) -> bool {
        self.parts
            .get(partition as usize)
            .is_some_and(|p| p.changed)
    }

    /// Number of partitions with a part.
    pub fn parts(&self) -> u32 {
        u32::try_from(self.parts.len()).unwrap_or(u32::MAX)
    }

    /// Fills `state` with `partition`'s part as the drain writes it.
    pub fn capture(&self, partition: u32, rules: &Rules, state: &mut FunnelState) {
        let empty = Part::new(self.closed_until);
        let part = self.parts.get(partition as usize).unwrap_or(&empty);
        state.writer = self.durability.writer;
        state.window_ms = self.size_ms;
        state.floor = (part.floor != i64::MIN).then_some(part.floor);
        state.stages.clear();
        state.stages.extend(rules.stages.iter().map(|s| s.ordinal));
        state.pairs.clear();
        let ordinal = |i| rules.stages[usize::from(i)].ordinal;
        (state.pairs).extend(
            rules
                .conversions
                .iter()
                .map(|c| (ordinal(c.from), ordinal(c.to))),
        );
        state.windows.clear();
        (state.windows).extend(part.open.iter().map(|(s, c)| (*s, c.clone())));
        state.claims.clear();
        (state.claims).extend(
            (0u32..)
                .zip(&self.parts)
                .filter(|&(i, p)| p.held && i != partition)
                .map(|(i, p)| (i, p.floor)),
        );
    }

    /// Whether the changelog holds a record of `partition`'s part.
    pub fn on_record(&self, partition: u32) -> bool {
        (self.parts.get(partition as usize)).is_some_and(|p| p.on_record)
    }

    /// Fills `state` with the record that opens `partition`'s first drain
    /// when the changelog holds none of its part yet: no windows, what the
    /// customers already there reflect (see the module docs).
    pub fn capture_opening(&self, rules: &Rules, state: &mut FunnelState) {
        self.capture(u32::MAX, rules, state);
        state.floor = None;
    }

    /// The drain has taken every changed part; `written` says which parts
    /// it wrote a record of.
    pub fn drained(&mut self, written: impl Fn(u32) -> bool) {
        for (i, part) in (0u32..).zip(&mut self.parts) {
            part.changed = false;
            part.on_record |= written(i);
        }
    }

    /// Installs a part record of `partition`, replacing its part; its
    /// floor is settled with the others restored by
    /// [`Funnel::settle_restored`]. Columns of stages or pairs the current
    /// model lacks are dropped, and so are the windows when the window
    /// size changed.
    pub fn install(&mut self, partition: u32, state: &FunnelState, rules: &Rules) {
        let floor = state.floor.unwrap_or(i64::MIN);
        let (stages, pairs, size) = (self.stages, self.pairs, self.size_ms);
        let part = self.part_mut(partition);
        part.reset(floor);
        part.on_record = true;
        if state.window_ms == size {
            let columns = Columns::new(state, rules);
            for (start, counts) in &state.windows {
                let mut acc = Accumulator::new(stages, pairs);
                columns.fit(counts, &mut acc);
                part.insert(*start, acc);
            }
        }
        let durability = &mut self.durability;
        durability.restored.retain(|r| r.partition != partition);
        durability.restored.push(Restored {
            partition,
            writer: state.writer,
            floor,
        });
        durability.claims.extend_from_slice(&state.claims);
    }

    /// The restored parts take up where they were: each writer's parts get
    /// the highest floor among them, every partition assigned meanwhile
    /// the highest floor claimed for it (see the module docs), and every
    /// restored part is written with the next drain, under this engine's
    /// writer id.
    pub fn settle_restored(&mut self) {
        let restored = std::mem::take(&mut self.durability.restored);
        let assigned = std::mem::take(&mut self.durability.assigned);
        let claims = std::mem::take(&mut self.durability.claims);
        let (size, tracking) = (self.size_ms, self.durability.tracking);
        for r in &restored {
            let writer = restored.iter().filter(|o| o.writer == r.writer);
            let floor = writer.map(|o| o.floor).max().unwrap_or(i64::MIN);
            let part = self.part_mut(r.partition);
            part.raise_floor(floor, size);
            part.changed = tracking;
        }
        for partition in assigned {
            let claimed = claims.iter().filter(|c| c.0 == partition);
            if let Some(floor) = claimed.map(|c| c.1).max() {
                let part = self.part_mut(partition);
                part.raise_floor(floor, size);
                part.changed = tracking;
            }
        }
        self.update_lagging();
    }

    /// Forgets a part restored but not yet settled (its partition was
    /// revoked meanwhile).
    pub fn forget_restored(&mut self, partition: u32) {
        let durability = &mut self.durability;
        durability.restored.retain(|r| r.partition != partition);
        durability.assigned.retain(|&p| p != partition);
    }
}

/// Where each column of a record goes in the current model.
struct Columns {
    /// Per record stage column, the stage index.
    stages: Vec<Option<usize>>,
    /// Per record pair column, the conversion index.
    pairs: Vec<Option<usize>>,
    /// Journey moments configured now.
    moments: usize,
}

impl Columns {
    fn new(state: &FunnelState, rules: &Rules) -> Columns {
        let stage = |ordinal| rules.stage_by_ordinal(ordinal).map(usize::from);
        let pair = |&(from, to): &(u8, u8)| {
            let (from, to) = (rules.stage_by_ordinal(from)?, rules.stage_by_ordinal(to)?);
            (rules.conversions.iter())
                .find(|c| c.from == from && c.to == to)
                .map(|c| c.index)
        };
        Columns {
            stages: state.stages.iter().map(|&o| stage(o)).collect(),
            pairs: state.pairs.iter().map(pair).collect(),
            moments: rules.moments.len(),
        }
    }

    /// Adds `from`'s counts, in the record's columns, to `into`.
    fn fit(&self, from: &Accumulator, into: &mut Accumulator) {
        for (n, to) in from.entries.iter().zip(&self.stages) {
            if let Some(i) = *to {
                into.entries[i] += n;
            }
        }
        for ((c, d), to) in (from.conversions.iter().zip(&from.dropoffs)).zip(&self.pairs) {
            if let Some(i) = *to {
                into.conversions[i] += c;
                into.dropoffs[i] += d;
            }
        }
        for (n, to) in from.in_flight.iter().zip(&self.pairs) {
            if let Some(i) = *to {
                into.in_flight[i] += n;
            }
        }
        into.active_customers += from.active_customers;
        into.revenue = into.revenue.saturating_add(from.revenue);
        into.late_events += from.late_events;
        add_counts(&mut into.channels, &from.channels);
        // Rows by stage column, then the row of customers in no stage;
        // a stage the model no longer has goes with the latter.
        for (i, buckets) in from.convert_times.iter().enumerate() {
            if let Some(&Some(to)) = self.pairs.get(i) {
                add_counts(into.convert_times(to), buckets);
            }
        }
        let no_stage = into.entries.len();
        for (i, row) in from.scores.iter().enumerate() {
            let to = self.stages.get(i).copied().flatten().unwrap_or(no_stage);
            add_counts(into.score_row(to), row);
        }
        // Moments by position, as in the customer state; rows past the
        // moments configured are dropped.
        for (i, row) in from.moments.iter().enumerate().take(self.moments) {
            if row.iter().any(|&n| n > 0) {
                add_counts(into.moment_row(i, self.moments), row);
            }
        }
    }
}
