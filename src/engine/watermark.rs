//! The processor's watermark, combined from per-partition watermarks
//! (docs/time.md), and each partition's own event time.
//!
//! A partition's watermark is the newest `occurred_at` it has delivered minus
//! `allowed_lateness` (in `hybrid` mode each `occurred_at` bounded by the wall
//! clock it was read at, see "A fast clock" below); the processor's watermark
//! is the minimum over the partitions that hold it back, and never decreases.
//! A partition stops holding it back when it has delivered nothing for
//! `idle_timeout` of wall time (like Arroyo's `Watermark::Idle`, which the
//! minimum ignores). In `hybrid` mode, once every partition is idle the
//! watermark follows the wall clock, so inactivity timers fire on a quiet
//! stream; in `event` mode wall time is ignored and a run is a pure function
//! of its events.
//!
//! This module only keeps the arithmetic: wall time comes in as an argument
//! from the driver (whose clock should not go backwards), nothing here reads a
//! clock, does I/O or allocates except when a new partition number first
//! appears.
//!
//! Which partitions hold the watermark back:
//! - `hybrid`: every assigned partition that is not idle, including one that
//!   has not delivered anything yet: its data may be older than anything
//!   seen so far, so it holds the watermark at its start until it has been
//!   quiet for `idle_timeout` since assignment.
//! - `event`: only partitions that have delivered events; nothing ever goes
//!   idle. At the end of the input, [`Watermarks::finish`] moves the
//!   watermark to the newest event time seen.
//!
//! Partitions are identified by small dense numbers (a Kafka partition, or
//! an index the driver gives each topic-partition) and kept in a `Vec`
//! indexed by them. The minimum is cached: an event updates it in O(1) unless
//! it advances the partition that defines the minimum, which rescans the
//! few partitions (tens at most), O(1) amortised when events are spread
//! over partitions.
//!
//! # Worked example
//!
//! `hybrid` mode, `allowed_lateness` 30 s, `idle_timeout` 60 s, two partitions.
//! "wall" is the driver's clock, "event" an `occurred_at`; all on one day.
//!
//! ```text
//! wall      input                  p0 holds  p1 holds  watermark  why
//! 10:00:00  assign p0, p1          start     start     MIN        no data yet: both hold back
//! 10:00:01  p0 event 10:00:00      09:59:30  start     MIN        p1 might still bring old data
//! 10:00:02  p1 event 09:59:50      09:59:30  09:59:20  09:59:20   min of the two
//! 10:00:05  p1 event 10:00:04      09:59:30  09:59:34  09:59:30   p0 is now the minimum
//! 10:00:06  p0 event 09:59:40      09:59:30  09:59:34  09:59:30   out of order, within lateness: not late
//! 10:00:10  p0 event 10:00:09      09:59:39  09:59:34  09:59:34   p1 is the minimum
//! 10:01:05  tick                   09:59:39  idle      09:59:39   p1 quiet for 60 s (since 10:00:05)
//! 10:01:10  tick                   idle      idle      09:59:39   all idle since 10:01:10
//! 10:01:40  tick                   idle      idle      10:00:09   +30 s of wall time
//! 10:03:00  tick                   idle      idle      10:01:29   +80 s
//! 10:03:30  p0 event 10:05:00      10:03:00  idle      10:03:00   a producer clock 90 s fast: p0's
//!                                                                 time goes only up to the wall clock
//! 10:04:40  tick                   idle      idle      10:03:10   all idle since 10:04:30: +10 s
//! 10:05:30  tick                   idle      idle      10:04:00   +60 s
//! 10:05:31  p1 event 10:04:50      idle      10:04:20  10:04:20   on time: the fast clock did not
//!                                                                 take the watermark past it
//! 10:05:32  p1 event 10:05:40      idle      10:05:02  10:05:02   8 s ahead: bounded as well
//! ```
//!
//! A partition goes idle at its last activity plus `idle_timeout`, and a
//! quiet stream's watermark is a function of the wall clock: the watermark
//! when the last partition went idle, plus the wall time since, capped at
//! `wall - allowed_lateness`. So once the stream is quiet, how often the
//! driver ticks does not matter. Without any event seen, the watermark has no
//! event time to advance from and stays at `MIN`.
//!
//! The same events in `event` mode: the ticks and the wall times change
//! nothing, so from 10:00:10 the watermark stays at 09:59:34 (p1 holds it
//! back) until p0's event at 10:05:00 - which does not move it either, p1
//! still being the minimum, but counts in full for p0 - and p1's event at
//! 10:04:50 raises it to 10:04:20. 10:05:40 makes p0 the minimum: 10:04:30.
//! [`Watermarks::finish`] then moves it to 10:05:40, the newest event time
//! seen.
//!
//! # A fast clock
//!
//! In `hybrid` mode a partition's event time goes no further than the wall
//! clock: each `occurred_at` counts towards its partition's newest event
//! time as at most the wall time it was read at, so a partition's
//! watermark never passes `wall - allowed_lateness`, the same cap a quiet
//! stream has. Why: touchpoints up to `max_future_skew` (5 min) ahead of
//! the wall clock are accepted, far more than `allowed_lateness` (30 s).
//! Taken at its word, one touchpoint from a device whose clock is a few
//! minutes fast would move its partition's watermark minutes ahead for
//! good: every on-time touchpoint after it would be late, and the funnel
//! windows up to it would close before their data. Nothing can have
//! happened after now, so now is as far as a stamp ahead of it can take
//! its partition. The touchpoint itself keeps its `occurred_at`: it waits
//! in the reorder buffer until its partition's time reaches it (once the
//! wall clock has, plus the lateness), is applied to its customer then and
//! counts in the funnel window of its stamp. [`Watermarks::observe`] tells
//! the engine so that it counts it (`journeyd_events_ahead_total`). Why
//! the wall clock itself and no slack above it: on-time traffic puts a
//! partition's watermark at `wall - allowed_lateness` at most, so a
//! touchpoint up to the allowed lateness old is never late; a bound some
//! seconds above now would take as many seconds off the allowed lateness
//! of on-time touchpoints after a fast one. While the fast touchpoint
//! waits, its offset holds its partition's commits back (up to
//! `max_future_skew` plus the lateness; input read again after a crash is
//! applied once). `event` mode (replays) does not look at the wall clock:
//! a stamp ahead counts in full, and a replay stays a function of its
//! events.
//!
//! # Partition time
//!
//! The processor's watermark closes what aggregates every partition (funnel
//! windows). What concerns one customer follows the customer's partition
//! instead, [`Watermarks::partition_time`]: the partition's own watermark
//! while it delivers (or has resumed from a checkpoint), whatever the other
//! partitions do; at least the processor's watermark while it is idle or
//! not assigned, since nothing of it is to come (on a quiet stream, its
//! customers' timers fire with the wall clock); `MIN` while it is assigned
//! and has neither delivered nor resumed, so customers restored for it wait
//! for its data. In a single partition, partition time and the processor's
//! watermark are the same.
//!
//! Why: a partition taken over from another instance resumes at its
//! committed position, which may be far behind the partitions this
//! instance already reads (instances catching up on a backlog at different
//! speeds). Measured against the processor's watermark, which cannot go
//! back, its restored customers' timers would all be due at once and its
//! touchpoints, read again, all late. In its own time it continues as its
//! previous owner would have. `event` mode, `allowed_lateness` 30 s:
//!
//! ```text
//! input                   p0 time   p1 time   watermark  why
//! p1 event 12:00:00       11:59:30  11:59:30  11:59:30   p0 not assigned: nothing of it is to come
//! assign p0 (taken over)  MIN       11:59:30  11:59:30   customers restored for p0 wait for it
//! resume p0 at 11:00:00   10:59:30  11:59:30  11:59:30   p0 continues from its checkpoint; the
//!                                                        watermark does not go back
//! p0 event 11:00:40       11:00:10  11:59:30  11:59:30   not late for its customer; p0's own
//!                                                        share of the funnel windows goes on
//! p1 event 12:10:00       11:00:10  12:09:30  11:59:30   p0 holds the watermark, and the windows
//!                                                        after 11:59:30, until it catches up
//! p0 event 12:05:00       12:04:30  12:09:30  12:04:30   the minimum again
//! ```

use crate::config::{TimeConfig, TimeMode};
use crate::model::EventTime;

/// What is known about one partition.
#[derive(Clone, Copy, Debug)]
struct Partition {
    /// Assigned to this processor, explicitly or by delivering an event.
    assigned: bool,
    /// Newest `occurred_at` since assignment, in `hybrid` mode each bounded
    /// by the wall time it was read at; `MIN` before the first event.
    max_seen: EventTime,
    /// Wall time of the last event, or of the assignment: the idle clock.
    last_active: EventTime,
    /// Quiet for `idle_timeout`: left out of the minimum until its next event.
    idle: bool,
}

impl Partition {
    const UNASSIGNED: Partition = Partition {
        assigned: false,
        max_seen: EventTime::MIN,
        last_active: EventTime::MIN,
        idle: false,
    };

    /// Whether this partition takes part in the minimum.
    fn holds(&self, mode: TimeMode) -> bool {
        self.assigned && !self.idle && (mode == TimeMode::Hybrid || self.max_seen != EventTime::MIN)
    }
}

/// Per-partition watermarks and their combination: the processor's watermark.
#[derive(Clone, Debug)]
pub struct Watermarks {
    /// How far a partition's watermark trails its newest event time.
    allowed_lateness_ms: i64,
    /// Wall time without events after which a partition stops holding back.
    idle_timeout_ms: i64,
    /// `Hybrid` lets wall time advance a quiet stream; `Event` ignores it.
    mode: TimeMode,
    /// Indexed by partition number; grown when a new number appears.
    partitions: Vec<Partition>,
    /// Minimum of `max_seen - lateness` over holding partitions; `None` when
    /// no partition holds (all idle, or none assigned).
    held_min: Option<EventTime>,
    /// While no partition holds: the wall time from which the stream is
    /// quiet, and the watermark then, which it follows the wall clock from.
    quiet: Option<(EventTime, EventTime)>,
    /// After [`Watermarks::resume`] and until the next event: when the
    /// resumed partitions were committed (wall time) and the watermark they
    /// resumed at. If the stream turns out quiet, it has been quiet since
    /// then, outage included, and follows the wall clock from there.
    resumed: Option<(EventTime, EventTime)>,
    /// Newest `occurred_at` observed on any partition, for `finish`.
    max_seen: EventTime,
    /// The processor's watermark: starts at `MIN`, never decreases.
    current: EventTime,
}

impl Watermarks {
    /// No partitions yet, watermark at [`EventTime::MIN`].
    pub fn new(cfg: &TimeConfig) -> Self {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Watermarks {
            allowed_lateness_ms: ms(cfg.allowed_lateness),
            idle_timeout_ms: ms(cfg.idle_timeout),
            mode: cfg.mode,
            partitions: Vec::new(),
            held_min: None,
            quiet: None,
            resumed: None,
            max_seen: EventTime::MIN,
            current: EventTime::MIN,
        }
    }

    /// An event of `partition` arrived at wall time `wall`. An unassigned
    /// partition is assigned by its first event (replays never call `assign`).
    ///
    /// In `hybrid` mode the partition's event time goes no further than
    /// `wall` (see "A fast clock" in the module docs): returns whether
    /// `occurred_at` was ahead of it, and so bounded. Always `false` in
    /// `event` mode.
    pub fn observe(&mut self, partition: u32, occurred_at: EventTime, wall: EventTime) -> bool {
        let (mode, lateness) = (self.mode, self.allowed_lateness_ms);
        let ahead = mode == TimeMode::Hybrid && occurred_at > wall;
        let seen = if ahead { wall } else { occurred_at };
        let p = self.slot(partition);
        let was_holding = p.holds(mode);
        let before = p.max_seen.minus_ms(lateness);
        p.assigned = true;
        p.idle = false;
        p.last_active = wall;
        p.max_seen = p.max_seen.max(seen);
        let after = p.max_seen.minus_ms(lateness);
        self.max_seen = self.max_seen.max(occurred_at);
        self.resumed = None;
        if !was_holding {
            self.join(after);
        } else if after != before && self.held_min == Some(before) {
            self.recompute();
        }
        self.raise_to_held();
        ahead
    }

    /// The wall clock reads `wall`. In `hybrid` mode, partitions quiet for
    /// `idle_timeout` go idle, and while every partition is idle the watermark
    /// advances by the wall time elapsed, but never past `wall -
    /// allowed_lateness`. In `event` mode this does nothing.
    pub fn tick(&mut self, wall: EventTime) {
        if self.mode == TimeMode::Event {
            return;
        }
        let timeout = self.idle_timeout_ms;
        let mut idle_from: Option<EventTime> = None;
        for p in self.partitions.iter_mut().filter(|p| p.assigned && !p.idle) {
            let went_idle = p.last_active.plus_ms(timeout);
            if went_idle <= wall {
                p.idle = true;
                idle_from = idle_from.max(Some(went_idle));
            }
        }
        if idle_from.is_some() {
            self.recompute();
            self.raise_to_held();
        }
        if self.held_min.is_none() {
            self.advance_quiet(idle_from.unwrap_or(wall), wall);
        }
    }

    /// The processor's watermark.
    pub fn current(&self) -> EventTime {
        self.current
    }

    /// End of a replayed input: the watermark moves to the newest event time
    /// seen (not minus the lateness), so everything due up to it fires.
    pub fn finish(&mut self) -> EventTime {
        self.advance_to(self.max_seen);
        self.current
    }

    /// Raises the watermark to at least `t`, for instance to one restored
    /// from a snapshot; never lowers it.
    pub fn advance_to(&mut self, t: EventTime) {
        if t > self.current {
            self.current = t;
            // A quiet stream follows the wall clock from here on.
            self.quiet = None;
        }
    }

    /// `partition` was assigned at wall time `wall`. In `hybrid` mode it holds
    /// the watermark back from now until its first event or `idle_timeout`.
    /// Assigning an assigned partition changes nothing.
    pub fn assign(&mut self, partition: u32, wall: EventTime) {
        let mode = self.mode;
        let p = self.slot(partition);
        if p.assigned {
            return;
        }
        *p = Partition {
            assigned: true,
            last_active: wall,
            ..Partition::UNASSIGNED
        };
        if p.holds(mode) {
            self.join(EventTime::MIN);
        }
    }

    /// `partition` is assigned but its input is paused while its state is
    /// restored: nothing can arrive from it yet, so it does not go idle
    /// (which would let its customers' time run ahead to the processor's
    /// watermark); its idle clock restarts at `wall`.
    pub fn hold(&mut self, partition: u32, wall: EventTime) {
        if let Some(p) = self.partitions.get_mut(partition as usize)
            && p.assigned
            && !p.idle
        {
            p.last_active = p.last_active.max(wall);
        }
    }

    /// Partitions continue from checkpoints: each `(partition, max_seen,
    /// committed_at)` has read up to `max_seen` before (in an earlier
    /// process, or on another instance) and was committed at wall time
    /// `committed_at`. Each holds the watermark at `max_seen -
    /// allowed_lateness` rather than from nothing, and in `hybrid` mode a
    /// stream that stays quiet is taken to have been quiet since the
    /// earliest `committed_at`: once idle it follows the wall clock from
    /// then, so inactivity timers that fell due during an outage fire
    /// instead of waiting out the outage again. Partitions assigned
    /// together resume in one call: one at a time, the first would raise
    /// the watermark (which never goes back) past a second one's hold.
    /// Assigns a partition if needed; never lowers what it has seen.
    pub fn resume(&mut self, checkpoints: impl IntoIterator<Item = (u32, EventTime, EventTime)>) {
        let mode = self.mode;
        let mut newly_holding = false;
        let mut committed: Option<EventTime> = None;
        for (partition, max_seen, committed_at) in checkpoints {
            if max_seen == EventTime::MIN {
                continue;
            }
            let p = self.slot(partition);
            let was_holding = p.holds(mode);
            p.assigned = true;
            p.max_seen = p.max_seen.max(max_seen);
            newly_holding |= !was_holding && p.holds(mode);
            self.max_seen = self.max_seen.max(max_seen);
            committed = Some(committed.map_or(committed_at, |c| c.min(committed_at)));
        }
        self.recompute();
        if newly_holding {
            self.quiet = None;
        }
        self.raise_to_held();
        if let Some(since) = committed.filter(|_| mode == TimeMode::Hybrid) {
            self.resumed = Some((since, self.current));
        }
    }

    /// The newest `occurred_at` of an assigned `partition` (in `hybrid`
    /// mode, each bounded by the wall time it was read at), `None` if it
    /// has seen none.
    pub fn partition_max_seen(&self, partition: u32) -> Option<EventTime> {
        let p = self.partitions.get(partition as usize)?;
        (p.assigned && p.max_seen != EventTime::MIN).then_some(p.max_seen)
    }

    /// Event time for the customers of `partition`, which decides which of
    /// their timers are due and which of their touchpoints are late (see
    /// "Partition time" in the module docs): its own watermark (its newest
    /// event time minus the allowed lateness) while it delivers or has
    /// resumed from a checkpoint; at least the processor's watermark once
    /// it is idle or not assigned, since nothing of it is to come; `MIN`
    /// while it is assigned and has neither delivered nor resumed. It may
    /// go back when an idle partition delivers again: the engine keeps the
    /// maximum.
    pub fn partition_time(&self, partition: u32) -> EventTime {
        match self.partitions.get(partition as usize) {
            Some(p) if p.assigned && !p.idle => p.max_seen.minus_ms(self.allowed_lateness_ms),
            Some(p) => p
                .max_seen
                .minus_ms(self.allowed_lateness_ms)
                .max(self.current),
            None => self.current,
        }
    }

    /// Whether `partition` is assigned: by [`Watermarks::assign`], an
    /// event or [`Watermarks::resume`], and not revoked since.
    pub fn is_assigned(&self, partition: u32) -> bool {
        self.partitions
            .get(partition as usize)
            .is_some_and(|p| p.assigned)
    }

    /// `partition` was revoked: it no longer holds the watermark back, and
    /// starts afresh if it is assigned again.
    pub fn revoke(&mut self, partition: u32) {
        if let Some(p) = self.partitions.get_mut(partition as usize) {
            *p = Partition::UNASSIGNED;
            self.recompute();
            self.raise_to_held();
        }
    }

    /// Whether an event at `occurred_at` is late: before the watermark. Ask
    /// before observing the event: an idle partition's event brings back its
    /// earlier maximum, which may raise the watermark past this event.
    pub fn is_late(&self, occurred_at: EventTime) -> bool {
        occurred_at < self.current
    }

    /// The newest `occurred_at` observed on any partition (`MIN` if none).
    pub fn max_seen(&self) -> EventTime {
        self.max_seen
    }

    fn slot(&mut self, partition: u32) -> &mut Partition {
        let i = partition as usize;
        if i >= self.partitions.len() {
            self.partitions.resize(i + 1, Partition::UNASSIGNED);
        }
        &mut self.partitions[i]
    }

    /// A partition starts holding at `contribution`: the stream is not quiet.
    fn join(&mut self, contribution: EventTime) {
        let min = self.held_min.map_or(contribution, |m| m.min(contribution));
        self.held_min = Some(min);
        self.quiet = None;
    }

    fn recompute(&mut self) {
        let (mode, lateness) = (self.mode, self.allowed_lateness_ms);
        self.held_min = (self.partitions.iter())
            .filter(|p| p.holds(mode))
            .map(|p| p.max_seen.minus_ms(lateness))
            .min();
    }

    fn raise_to_held(&mut self) {
        if let Some(min) = self.held_min {
            self.current = self.current.max(min);
        }
    }

    /// Every partition is idle, since `idle_from` if that is when the last
    /// one went: from the watermark at that instant, move with the wall
    /// clock, capped at `wall - lateness`. The target only grows with `wall`,
    /// so how often this runs does not matter. A watermark at `MIN` has no
    /// event time to move from and stays.
    fn advance_quiet(&mut self, idle_from: EventTime, wall: EventTime) {
        let resumed = self.resumed.take();
        let (since, from) = *self
            .quiet
            .get_or_insert_with(|| resumed.unwrap_or((idle_from.min(wall), self.current)));
        if from != EventTime::MIN {
            let elapsed = wall.since(since).max(0);
            let target = from
                .plus_ms(elapsed)
                .min(wall.minus_ms(self.allowed_lateness_ms));
            self.current = self.current.max(target);
        }
    }
}

#[cfg(test)]
mod tests;
