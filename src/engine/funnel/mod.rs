//! Tumbling event-time funnel windows, closed by the watermark.
//!
//! Each window `[start, start + size)` accumulates stage entries,
//! conversions and drop-offs per stage pair, active customers, revenue and
//! late arrivals, keyed by the event time they happened at (a drop-off at
//! its deadline). Windows aggregate every partition, so they follow the
//! instance watermark, not a partition's time: when it passes a window's
//! end (and the engine has processed everything before it in the
//! partitions that hold it back) the window is emitted as a
//! [`FunnelWindow`] and closed for good. Windows in which nothing happened
//! are not emitted.
//!
//! # Parts
//!
//! What a window holds is kept per input partition, in a [`Part`]: the
//! counts the partition's customers added, and the partition's *floor*,
//! the end up to which its windows are done. Emitting a window sums the
//! parts. Per partition, because a partition's counts are state like its
//! customers': they go to the changelog with them ([`durable`]), come back
//! with them after a crash, leave with the partition when it is revoked
//! and arrive with it at its next owner. Anything that falls into a window
//! at or below its partition's floor (a late touchpoint, or a drop-off or
//! lapse whose timer fires behind its partition's time) is excluded and
//! counted as late in the partition's oldest open window instead: once per
//! item, a touchpoint or a timer firing, whatever it adds (a late
//! touchpoint's stage entry and conversion are part of it).
//!
//! A part normally keeps step with the instance: its floor is the
//! instance's `closed_until`, raised whenever windows close. Two other
//! cases come from restores:
//! - *ahead*: restored after a restart with a floor above what this
//!   instance has closed so far (the windows below were emitted before the
//!   crash); it joins in as the instance's windows pass its floor;
//! - *lagging*: taken over from another instance that had closed fewer
//!   windows than this one. Its counts in windows this instance already
//!   emitted were never emitted by anyone: the partition keeps counting in
//!   them, and each is emitted on its own, with that partition's counts
//!   only, once the partition's own time has passed its end
//!   ([`Funnel::catch_up`]). Until then the partition holds the instance
//!   watermark back, as any partition behind it does.

pub mod convert_time;
pub mod durable;
mod part;
pub mod scores;

use super::rules::{Rules, StageIdx};
use crate::model::{
    Channel, ChannelCount, EventTime, ExperienceScores, FunnelWindow, MomentCounts, PairCount,
    StageCount, StageScores,
};
pub use part::{
    Accumulator, CHANNELS, MOMENT_COLUMNS, MomentRow, Part, REVENUE_SCALE, add_counts,
    revenue_units,
};
use scores::{Scales, ScoreKind, ScoreRow};

/// What a touchpoint adds to its funnel window ([`Funnel::touchpoint`]).
#[derive(Clone, Copy, Debug)]
pub struct Touch {
    /// The customer's first touchpoint in the window.
    pub active: bool,
    /// Its value, when its action counts as revenue.
    pub revenue: Option<f64>,
    pub channel: Channel,
    /// A score response: what it answers, the stage the customer was in
    /// (`None`: none yet), and the value.
    pub score: Option<(ScoreKind, Option<StageIdx>, Option<f64>)>,
}

/// Where a count of an item went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Into its window, still open.
    InWindow,
    /// Its window was done: the item is counted as late (now).
    Late,
    /// Its window was done, and the item was counted as late already
    /// (for another of its counts, or before a restore).
    Excluded,
}

/// Totals over every window, closed or not, for summaries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunnelTotals {
    pub entries: Vec<u64>,
    pub conversions: Vec<u64>,
    pub dropoffs: Vec<u64>,
    pub revenue: f64,
    /// Per pair, conversions per time-to-convert bucket, and the sum of
    /// their times, ms.
    pub convert_times: Vec<convert_time::Buckets>,
    pub convert_ms: Vec<i64>,
    /// Per pair, the customers held whose conversion deadline is running.
    pub in_flight: Vec<i64>,
}

/// The open windows of every partition; see the module docs.
#[derive(Clone, Debug)]
pub struct Funnel {
    size_ms: i64,
    /// Windows ending at or before this have been emitted for every part
    /// that keeps step with the instance.
    closed_until: i64,
    sequence: u64,
    stages: usize,
    pairs: usize,
    /// Journey moments configured.
    moments: usize,
    totals: FunnelTotals,
    /// Per engine partition; grown when a new one appears.
    parts: Vec<Part>,
    /// Some part's floor is below `closed_until`.
    lagging: bool,
    /// The item being processed is late: behind its partition's time.
    late_item: bool,
    /// The item being processed was counted as late already (or was
    /// found to have been counted before a restore).
    item_counted: bool,
    /// Emitted windows' sums are built here; reused.
    scratch: Accumulator,
    /// Emitted windows' customers in flight per pair; reused.
    in_flight: Vec<i64>,
    /// What the changelog needs ([`durable`]).
    durability: durable::Durability,
}

impl Funnel {
    /// Windows of `size_ms` for the stages and pairs of `rules`.
    pub fn new(size_ms: i64, rules: &Rules) -> Self {
        let (stages, pairs) = (rules.stages.len(), rules.conversions.len());
        Funnel {
            size_ms: size_ms.max(1),
            closed_until: i64::MIN,
            sequence: 0,
            stages,
            pairs,
            moments: rules.moments.len(),
            totals: FunnelTotals {
                entries: vec![0; stages],
                conversions: vec![0; pairs],
                dropoffs: vec![0; pairs],
                revenue: 0.0,
                convert_times: vec![convert_time::Buckets::default(); pairs],
                convert_ms: vec![0; pairs],
                in_flight: vec![0; pairs],
            },
            parts: Vec::new(),
            lagging: false,
            late_item: false,
            item_counted: false,
            scratch: Accumulator::new(stages, pairs),
            in_flight: vec![0; pairs],
            durability: durable::Durability::default(),
        }
    }

    /// Start of the window containing `t` (saturating: `MIN` for the
    /// beginning of time, which ends no window).
    pub fn window_start(&self, t: EventTime) -> i64 {
        t.0.div_euclid(self.size_ms).saturating_mul(self.size_ms)
    }

    fn window_end(&self, t: EventTime) -> i64 {
        self.window_start(t).saturating_add(self.size_ms)
    }

    /// The window index of `t`, truncated: a cheap per-customer marker.
    pub fn window_marker(&self, t: EventTime) -> u32 {
        t.0.div_euclid(self.size_ms) as u32
    }

    /// Makes room for a part at index `i`: the parts added are not held.
    fn grow(&mut self, i: usize) {
        if i >= self.parts.len() {
            let floor = self.closed_until;
            let unheld = Part {
                held: false,
                ..Part::new(floor)
            };
            self.parts.resize(i + 1, unheld);
        }
    }

    fn part_mut(&mut self, partition: u32) -> &mut Part {
        let i = partition as usize;
        self.grow(i);
        let part = &mut self.parts[i];
        part.held = true;
        part
    }

    /// Whether the counts that follow come from a late item: a touchpoint
    /// or timer behind its partition's time ([`Funnel::late`]).
    #[inline]
    pub fn set_late_item(&mut self, late: bool) {
        self.late_item = late;
    }

    /// Whether the window containing `t` is done for `partition`.
    pub fn is_closed(&self, partition: u32, t: EventTime) -> bool {
        let floor = (self.parts.get(partition as usize)).map_or(self.closed_until, |p| p.floor);
        self.window_end(t) <= floor
    }

    /// The counts of `partition` in the window containing `t`, unless that
    /// window is done for it.
    fn open_window(&mut self, partition: u32, t: EventTime) -> Option<&mut Accumulator> {
        let (stages, pairs, size) = (self.stages, self.pairs, self.size_ms);
        let track = self.durability.tracking;
        let start = self.window_start(t);
        let part = self.part_mut(partition);
        if start.saturating_add(size) <= part.floor {
            return None;
        }
        part.changed |= track;
        Some(
            part.open
                .entry(start)
                .or_insert_with(|| Accumulator::new(stages, pairs)),
        )
    }

    /// A new item (a touchpoint or a timer firing) is being processed:
    /// it has not been counted as late yet.
    #[inline]
    pub fn begin_item(&mut self) {
        self.item_counted = false;
    }

    /// A customer of `partition` entered `stage` at `t`.
    pub fn entry(&mut self, partition: u32, t: EventTime, stage: StageIdx) -> Counted {
        self.totals.entries[usize::from(stage)] += 1;
        match self.open_window(partition, t) {
            Some(w) => w.entries[usize::from(stage)] += 1,
            None => return self.excluded(partition, t),
        }
        Counted::InWindow
    }

    /// A customer of `partition` converted on pair `pair` at `t`, `took_ms`
    /// after entering the pair's first stage.
    pub fn conversion(
        &mut self,
        partition: u32,
        t: EventTime,
        pair: usize,
        took_ms: i64,
    ) -> Counted {
        let bucket = convert_time::bucket(took_ms);
        self.totals.conversions[pair] += 1;
        self.totals.convert_times[pair][bucket] += 1;
        self.totals.convert_ms[pair] = self.totals.convert_ms[pair].saturating_add(took_ms.max(0));
        match self.open_window(partition, t) {
            Some(w) => {
                w.conversions[pair] += 1;
                w.convert_times(pair)[bucket] += 1;
            }
            None => return self.excluded(partition, t),
        }
        Counted::InWindow
    }

    /// A customer of `partition` dropped off pair `pair`, its deadline being `t`.
    pub fn dropoff(&mut self, partition: u32, t: EventTime, pair: usize) -> Counted {
        self.totals.dropoffs[pair] += 1;
        match self.open_window(partition, t) {
            Some(w) => w.dropoffs[pair] += 1,
            None => return self.excluded(partition, t),
        }
        Counted::InWindow
    }

    /// A conversion deadline of pair `pair` started (`delta` 1) or ended
    /// (`-1`: converted, dropped off, left behind, or the customer is no
    /// longer held) for a customer of `partition`, at `t`. Without a time
    /// (a customer restored, erased or revoked) the change counts before
    /// every open window; with one, it moves the count of its window,
    /// unless that window is done for the partition.
    pub fn in_flight(&mut self, partition: u32, pair: usize, delta: i64, t: Option<EventTime>) {
        self.totals.in_flight[pair] += delta;
        let pairs = self.pairs;
        // Not `part_mut`: a revoked partition's customers end their count
        // here, and its part must stay let go (unclaimed).
        self.grow(partition as usize);
        let part = &mut self.parts[partition as usize];
        if part.pending.len() < pairs {
            part.pending.resize(pairs, 0);
        }
        part.pending[pair] += delta;
        if let Some(w) = t.and_then(|t| self.open_window(partition, t)) {
            w.in_flight[pair] += delta;
            self.parts[partition as usize].moved_in_flight_on(pair, delta, pairs);
        }
    }

    /// Journey moment `moment` of a customer of `partition`, at `t`:
    /// started (`column` 0), completed (1, after `took_ms`) or abandoned
    /// (2, `t` being its deadline).
    pub fn moment(
        &mut self,
        partition: u32,
        t: EventTime,
        moment: usize,
        column: usize,
        took_ms: i64,
    ) -> Counted {
        let moments = self.moments;
        match self.open_window(partition, t) {
            Some(w) => {
                let row = w.moment_row(moment, moments);
                row[column] += 1;
                if column == 1 {
                    row[3 + convert_time::bucket(took_ms)] += 1;
                }
            }
            None => return self.excluded(partition, t),
        }
        Counted::InWindow
    }

    /// Something of the current item fell into a window done for
    /// `partition`: the item is counted as late, unless it was already.
    fn excluded(&mut self, partition: u32, t: EventTime) -> Counted {
        if self.item_counted {
            return Counted::Excluded;
        }
        self.late(partition, t)
    }

    /// What one touchpoint of `partition` at `t` adds to its window, in
    /// one look-up: the customer counted active (first touchpoint in the
    /// window), revenue, the channel, and a score response in the stage
    /// the customer was in. Returns `false` when the response is off its
    /// scale and not counted.
    pub fn touchpoint(
        &mut self,
        partition: u32,
        t: EventTime,
        touch: Touch,
        scales: &Scales,
    ) -> bool {
        if let Some(v) = touch.revenue {
            self.totals.revenue += v;
        }
        let no_stage = self.stages;
        let Some(w) = self.open_window(partition, t) else {
            return true;
        };
        w.active_customers += u64::from(touch.active);
        if let Some(v) = touch.revenue {
            w.revenue = w.revenue.saturating_add(revenue_units(v));
        }
        w.channels[touch.channel as usize] += 1;
        match touch.score {
            Some((kind, stage, value)) => {
                let row = stage.map_or(no_stage, usize::from);
                scales.count(kind, value, w.score_row(row))
            }
            None => true,
        }
    }

    /// A touchpoint of `partition` at `t` fell into a window done for it:
    /// it is counted as late in the partition's oldest open window. Unless
    /// it is in time (not behind its partition's time) for a window that
    /// the partition's previous writer emitted while counting in it
    /// ([`Part::counted_until`]): it is being applied again, and was
    /// counted in that window then.
    pub fn late(&mut self, partition: u32, t: EventTime) -> Counted {
        self.item_counted = true;
        let (end, in_time) = (self.window_end(t), !self.late_item);
        let part = self.part_mut(partition);
        if in_time && end > part.counted_until {
            return Counted::Excluded;
        }
        let floor = part.floor;
        if let Some(w) = self.open_window(partition, EventTime(floor)) {
            w.late_events += 1;
        }
        Counted::Late
    }

    /// Emits, in order, every window that ends at or before `frontier`,
    /// with the counts of every part that keeps step (or is ahead).
    pub fn close_until(
        &mut self,
        frontier: EventTime,
        rules: &Rules,
        out: &mut impl FnMut(FunnelWindow),
    ) {
        let target = self.window_start(frontier);
        let from = self.closed_until;
        if target <= from {
            return;
        }
        while let Some(start) = self.next_in_step(from, target) {
            self.scratch.clear();
            self.in_flight.fill(0);
            for part in self.parts.iter_mut().filter(|p| p.floor >= from) {
                if let Some(counts) = part.remove(start) {
                    self.scratch.add(&counts);
                    part.changed |= self.durability.tracking;
                }
                // A part ahead emitted this window before, with its
                // customers in flight.
                if part.floor <= start {
                    part.add_in_flight(&mut self.in_flight);
                }
            }
            self.sequence += 1;
            out(render(
                rules,
                (start, self.size_ms),
                self.sequence,
                (&self.scratch, &self.in_flight),
            ));
        }
        for part in self.parts.iter_mut().filter(|p| p.floor >= from) {
            part.floor = part.floor.max(target);
            part.counted_until = part.counted_until.max(target);
        }
        self.closed_until = target;
    }

    /// The earliest window of a part in step (floor at or above `from`)
    /// that ends at or before `target`.
    fn next_in_step(&self, from: i64, target: i64) -> Option<i64> {
        (self.parts.iter())
            .filter(|p| p.floor >= from)
            .filter_map(|p| p.open.keys().next().copied())
            .min()
            .filter(|&start| start.saturating_add(self.size_ms) <= target)
    }

    /// Whether a part is behind the instance ([`Funnel::catch_up`]).
    pub fn is_lagging(&self) -> bool {
        self.lagging
    }

    /// A lagging `partition`'s own time reached `frontier`: its windows
    /// that the instance has already emitted and that end at or before
    /// `frontier` are emitted, each with this partition's counts alone.
    pub fn catch_up(
        &mut self,
        partition: u32,
        frontier: EventTime,
        rules: &Rules,
        out: &mut impl FnMut(FunnelWindow),
    ) {
        let target = self.window_start(frontier).min(self.closed_until);
        let size = self.size_ms;
        let Some(part) = self.parts.get_mut(partition as usize) else {
            return;
        };
        if part.floor >= target {
            return;
        }
        while let Some((start, counts)) = part.remove_first_until(target, size) {
            self.in_flight.fill(0);
            part.add_in_flight(&mut self.in_flight);
            self.sequence += 1;
            out(render(
                rules,
                (start, size),
                self.sequence,
                (&counts, &self.in_flight),
            ));
        }
        part.floor = target;
        part.counted_until = part.counted_until.max(target);
        part.changed |= self.durability.tracking;
        self.update_lagging();
    }

    /// The partitions behind the instance, for [`Funnel::catch_up`].
    pub fn lagging_parts(&self) -> impl Iterator<Item = u32> + '_ {
        let closed = self.closed_until;
        (0u32..)
            .zip(&self.parts)
            .filter(move |(_, p)| p.floor < closed)
            .map(|(i, _)| i)
    }

    fn update_lagging(&mut self) {
        let closed = self.closed_until;
        self.lagging = self.parts.iter().any(|p| p.floor < closed);
    }

    /// `partition` starts afresh (newly assigned): no counts, in step
    /// until its restore settles ([`Funnel::settle_restored`]).
    pub fn reset_part(&mut self, partition: u32) {
        let floor = self.closed_until;
        self.part_mut(partition).reset(floor);
        self.durability.assigned(partition);
        self.update_lagging();
    }

    /// `partition` was revoked: its counts leave with it (the changelog
    /// holds them for its next owner).
    pub fn drop_part(&mut self, partition: u32) {
        let floor = self.closed_until;
        if let Some(part) = self.parts.get_mut(partition as usize) {
            part.reset(floor);
            part.held = false;
        }
        self.forget_restored(partition);
        self.update_lagging();
    }

    /// Takes `other`'s counts of customers in flight (per partition and
    /// in total) for these windows'.
    pub fn count_in_flight_as(&mut self, other: &Funnel) {
        self.totals.in_flight.clone_from(&other.totals.in_flight);
        if let Some(last) = other.parts.len().checked_sub(1) {
            self.grow(last);
        }
        for (i, part) in self.parts.iter_mut().enumerate() {
            match other.parts.get(i) {
                Some(o) => part.pending.clone_from(&o.pending),
                None => part.pending.clear(),
            }
        }
    }

    /// Whether every part's sum of its open windows' moves in flight is
    /// theirs.
    pub fn check_open_in_flight(&self) -> bool {
        self.parts.iter().all(Part::check_open_in_flight)
    }

    /// Per `(partition, pair)`, the customers whose deadline is running,
    /// as counted.
    pub fn pending_counts(&self) -> impl Iterator<Item = ((u32, usize), i64)> + '_ {
        (0u32..).zip(&self.parts).flat_map(|(partition, part)| {
            (0..)
                .zip(&part.pending)
                .map(move |(pair, &n)| ((partition, pair), n))
        })
    }

    /// Totals over all windows so far, including open ones.
    pub fn totals(&self) -> &FunnelTotals {
        &self.totals
    }

    /// Number of windows emitted.
    pub fn emitted(&self) -> u64 {
        self.sequence
    }

    /// Number of windows held open over all partitions (a window open in
    /// two partitions counts twice).
    pub fn open_windows(&self) -> usize {
        self.parts.iter().map(|p| p.open.len()).sum()
    }
}

/// Window `(start, size)` with `counts` and, per pair, the customers in
/// flight at its end, as emitted.
fn render(
    rules: &Rules,
    (start, size_ms): (i64, i64),
    sequence: u64,
    (counts, in_flight): (&Accumulator, &[i64]),
) -> FunnelWindow {
    let entries = (rules.stages.iter().zip(&counts.entries))
        .map(|(s, &count)| StageCount {
            stage: s.name.clone(),
            count,
        })
        .collect();
    let pairs = (rules.conversions.iter())
        .map(|c| {
            let (conversions, dropoffs) = (counts.conversions[c.index], counts.dropoffs[c.index]);
            let mut row = pair_count(rules, c.from, c.to, conversions, dropoffs);
            row.in_flight = u64::try_from(in_flight[c.index]).unwrap_or(0);
            row
        })
        .collect();
    let channels = (Channel::ALL.iter().zip(&counts.channels))
        .filter(|(_, n)| **n > 0)
        .map(|(c, &touchpoints)| ChannelCount {
            channel: c.as_str(),
            touchpoints,
        })
        .collect();
    let mut overall = ScoreRow::default();
    for row in &counts.scores {
        add_counts(&mut overall, row);
    }
    let scores_by_stage = (rules.stages.iter().zip(&counts.scores))
        .filter(|(_, row)| row.iter().any(|&n| n > 0))
        .map(|(s, row)| {
            let ExperienceScores { nps, csat, ces } = scores::render(row);
            StageScores {
                stage: s.name.clone(),
                nps,
                csat,
                ces,
            }
        })
        .collect();
    let time_to_convert = (rules.conversions.iter())
        .filter_map(|c| {
            let buckets = counts.convert_times.get(c.index)?;
            (buckets.iter().any(|&n| n > 0)).then(|| {
                convert_time::render(rules.stage_name(c.from), rules.stage_name(c.to), buckets)
            })
        })
        .collect();
    let moments = (rules.moments.iter().zip(&counts.moments))
        .filter(|(_, row)| row.iter().any(|&n| n > 0))
        .map(|(m, row)| moment_counts(&m.name, row))
        .collect();
    FunnelWindow {
        sequence,
        window_start: start,
        window_end: start.saturating_add(size_ms),
        entries,
        pairs,
        active_customers: counts.active_customers,
        revenue: counts.revenue as f64 / REVENUE_SCALE,
        late_events: counts.late_events,
        channels,
        scores: scores::render(&overall),
        scores_by_stage,
        time_to_convert,
        moments,
    }
}

/// One journey moment's row of a window, with its abandonment rate and
/// duration percentiles.
fn moment_counts(name: &compact_str::CompactString, row: &MomentRow) -> MomentCounts {
    let [started, completed, abandoned] = [row[0], row[1], row[2]];
    let mut buckets = convert_time::Buckets::default();
    buckets.copy_from_slice(&row[3..]);
    let ended = completed + abandoned;
    MomentCounts {
        moment: name.clone(),
        started,
        completed,
        abandoned,
        abandonment_rate: (ended > 0).then(|| abandoned as f64 / ended as f64),
        buckets: buckets.to_vec(),
        p50_ms: convert_time::quantile(&buckets, 0.5),
        p90_ms: convert_time::quantile(&buckets, 0.9),
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
        in_flight: 0,
    }
}

#[cfg(test)]
mod tests;
