//! Partition-local event time: each input partition's customers move in a
//! lane of their own.
//!
//! A lane holds what waits for one partition's event time: the touchpoints
//! read from the partition (its reorder buffer), the timers of the
//! customers whose partition it is, and its *frontier*, before which
//! everything of the lane has been processed. The engine moves each lane
//! to its partition's time ([`super::watermark::Watermarks::partition_time`]),
//! so a partition resumed from a checkpoint behind the rest of the
//! instance continues in its own time, exactly as its previous owner
//! would have, while the others go on. A lane's frontier never decreases
//! while its partition is assigned, and starts afresh when the partition
//! is assigned again.
//!
//! One call of the engine may move several lanes (a tick, the end of a
//! replay, a restore); their items are then taken in event-time order over
//! all of them (events before timers at equal times, then by partition),
//! so that funnel windows, which aggregate every lane, close between the
//! right items. The lanes a call moves are collected in a reused list and
//! scanned per item: usually one, tens at most. Lanes are indexed by the
//! dense partition number and grown when a new one appears, like the
//! watermarks; nothing here allocates per event.

use super::customer::Slot;
use super::reorder::{PendingEvent, ReorderBuffer};
use super::timers::TimerIndex;
use crate::model::EventTime;

/// What is next in a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    /// The earliest buffered touchpoint.
    Event,
    /// The earliest timer.
    Timer,
}

/// One partition's customers in event time.
#[derive(Debug)]
struct Lane {
    /// Everything of this lane before it has been processed.
    frontier: EventTime,
    /// How far the current call processes the lane: at least `frontier`.
    limit: EventTime,
    /// Touchpoints read from this partition, waiting for its time.
    buffer: ReorderBuffer,
    /// Timers of the customers whose partition this is.
    timers: TimerIndex,
    /// A timer due before `frontier` was filed (a restored customer, a late
    /// touchpoint's deadline): the next call processes the lane even if
    /// its time does not move.
    catch_up: bool,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            frontier: EventTime::MIN,
            limit: EventTime::MIN,
            buffer: ReorderBuffer::new(),
            timers: TimerIndex::new(),
            catch_up: false,
        }
    }

    /// The earliest item before `limit`, if any.
    fn next_before_limit(&self) -> Option<(EventTime, Item)> {
        let event = self.buffer.next_time().unwrap_or(EventTime::MAX);
        let timer = self.timers.next_due().unwrap_or(EventTime::MAX);
        let next = if event <= timer {
            (event, Item::Event)
        } else {
            (timer, Item::Timer)
        };
        (next.0 < self.limit).then_some(next)
    }
}

/// Every partition's lane, indexed by partition number.
#[derive(Debug, Default)]
pub struct Lanes {
    /// Indexed by partition number; grown when a new number appears.
    lanes: Vec<Lane>,
    /// Touchpoints buffered over all lanes.
    buffered: usize,
    /// Their [`PendingEvent::bytes`], summed.
    buffered_bytes: usize,
    /// Some lane has `catch_up` set.
    catch_up: bool,
    /// The lanes the current call moves (reused from call to call).
    moving: Vec<u32>,
}

impl Lanes {
    /// No lanes yet.
    pub fn new() -> Self {
        Lanes::default()
    }

    fn lane(&mut self, partition: u32) -> &mut Lane {
        let i = partition as usize;
        if i >= self.lanes.len() {
            self.lanes.resize_with(i + 1, Lane::new);
        }
        &mut self.lanes[i]
    }

    /// Number of lanes (one past the highest partition number seen).
    pub fn len(&self) -> u32 {
        u32::try_from(self.lanes.len()).unwrap_or(u32::MAX)
    }

    /// Whether no partition has a lane yet.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// `partition`'s frontier: its touchpoints before it are late for
    /// their customers.
    pub fn frontier(&self, partition: u32) -> EventTime {
        self.lanes
            .get(partition as usize)
            .map_or(EventTime::MIN, |l| l.frontier)
    }

    /// `partition` is assigned anew: its lane starts from nothing. Its
    /// buffer is empty (a revoked partition's touchpoints are taken out);
    /// timers of customers restored for it stay and wait for its time.
    pub fn restart(&mut self, partition: u32) {
        let lane = self.lane(partition);
        lane.frontier = EventTime::MIN;
        lane.limit = EventTime::MIN;
        lane.catch_up = false;
    }

    /// Every lane's frontier, by partition number: what a commit point
    /// keeps ([`super::rewind`]).
    pub fn frontiers(&self) -> Vec<EventTime> {
        self.lanes.iter().map(|l| l.frontier).collect()
    }

    /// Puts `partition`'s lane back to `frontier` (a rewind to a commit
    /// point; its buffer was emptied by the revocation before). Timers of
    /// the customers restored for it that are due before the frontier
    /// fire on the next call.
    pub fn rewind(&mut self, partition: u32, frontier: EventTime) {
        let lane = self.lane(partition);
        lane.frontier = frontier;
        lane.limit = frontier;
        lane.catch_up = true;
        self.catch_up = true;
    }

    /// Buffers a touchpoint in the lane of the partition it was read from.
    pub fn push(&mut self, event: PendingEvent) {
        self.buffered += 1;
        self.buffered_bytes += event.bytes();
        self.lane(event.partition).buffer.push(event);
    }

    /// Touchpoints buffered over all lanes.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Every touchpoint buffered in `partition`'s lane, in no particular
    /// order.
    pub fn buffer_of(&self, partition: u32) -> impl Iterator<Item = &PendingEvent> {
        self.lanes
            .get(partition as usize)
            .into_iter()
            .flat_map(|l| l.buffer.iter())
    }

    /// Bytes of the touchpoints buffered over all lanes.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Removes and returns the earliest touchpoint of `partition`.
    pub fn pop_event(&mut self, partition: u32) -> Option<PendingEvent> {
        let event = self.lanes.get_mut(partition as usize)?.buffer.pop()?;
        self.buffered -= 1;
        self.buffered_bytes -= event.bytes();
        Some(event)
    }

    /// The partition whose earliest buffered touchpoint is the earliest of
    /// all (ties: the lowest partition number).
    pub fn oldest_event(&self) -> Option<u32> {
        let (mut best, mut at) = (None, EventTime::MAX);
        for (p, lane) in (0u32..).zip(&self.lanes) {
            if let Some(t) = lane
                .buffer
                .next_time()
                .filter(|&t| best.is_none() || t < at)
            {
                (best, at) = (Some(p), t);
            }
        }
        best
    }

    /// Removes and returns every touchpoint buffered in `partition`'s lane
    /// (revocation: rare).
    pub fn take_buffer(&mut self, partition: u32) -> Vec<PendingEvent> {
        let Some(lane) = self.lanes.get_mut(partition as usize) else {
            return Vec::new();
        };
        let taken = lane.buffer.extract(|_| false);
        self.buffered -= taken.len();
        self.buffered_bytes -= taken.iter().map(PendingEvent::bytes).sum::<usize>();
        taken
    }

    /// Removes the touchpoints `keep` rejects from `partition`'s buffer,
    /// returning them (erasure).
    pub fn extract_in(
        &mut self,
        partition: u32,
        keep: impl FnMut(&PendingEvent) -> bool,
    ) -> Vec<PendingEvent> {
        let Some(lane) = self.lanes.get_mut(partition as usize) else {
            return Vec::new();
        };
        let removed = lane.buffer.extract(keep);
        self.buffered -= removed.len();
        removed
    }

    /// Removes the buffered touchpoints `keep` rejects from every lane,
    /// returning them (erasure, revocation: rare).
    pub fn extract(&mut self, mut keep: impl FnMut(&PendingEvent) -> bool) -> Vec<PendingEvent> {
        let mut removed = Vec::new();
        for lane in &mut self.lanes {
            if !lane.buffer.is_empty() {
                removed.extend(lane.buffer.extract(&mut keep));
            }
        }
        self.buffered -= removed.len();
        self.buffered_bytes -= removed.iter().map(PendingEvent::bytes).sum::<usize>();
        removed
    }

    /// Moves `slot`'s timer in `partition`'s lane from `current` to `due`
    /// (`MAX`: none) and returns the new entry time; see
    /// [`TimerIndex::reschedule`]. A `due` already behind the lane's
    /// frontier fires on the engine's next step.
    pub fn reschedule(
        &mut self,
        partition: u32,
        (slot, key): (Slot, u32),
        current: EventTime,
        due: EventTime,
    ) -> EventTime {
        let lane = self.lane(partition);
        let at = lane.timers.reschedule(slot, key, current, due);
        if due < lane.frontier {
            lane.catch_up = true;
            self.catch_up = true;
        }
        at
    }

    /// Drops every timer of `partition`'s lane (revocation: the timers
    /// of a lane are those of its partition's customers).
    pub fn clear_timers(&mut self, partition: u32) {
        if let Some(lane) = self.lanes.get_mut(partition as usize) {
            lane.timers = TimerIndex::new();
        }
    }

    /// Moves `slot`'s timer entry at `at` (`MAX`: none) from lane `from`
    /// to lane `to`: its customer's touchpoints now come from `to`.
    pub fn move_timer(&mut self, (from, to): (u32, u32), (slot, key): (Slot, u32), at: EventTime) {
        if from == to || at == EventTime::MAX {
            return;
        }
        self.reschedule(from, (slot, key), at, EventTime::MAX);
        self.reschedule(to, (slot, key), EventTime::MAX, at);
    }

    /// Removes and returns `partition`'s earliest timer if it is before
    /// the lane's limit.
    pub fn pop_timer(&mut self, partition: u32) -> Option<(EventTime, Slot)> {
        let lane = self.lanes.get_mut(partition as usize)?;
        lane.timers.pop_before(lane.limit)
    }

    /// Whether some lane has a timer behind its frontier, or every lane is
    /// to be looked at again: the next call plans them all.
    pub fn catching_up(&self) -> bool {
        self.catch_up
    }

    /// Partitions' time moved without an event or a tick (they resumed
    /// from checkpoints): the next call plans every lane.
    pub fn recheck(&mut self) {
        self.catch_up = true;
    }

    /// Lets the current call move `partition`'s lane up to `time` (never
    /// back), if that moves it or it has something to catch up on.
    pub fn plan(&mut self, partition: u32, time: EventTime) {
        let lane = self.lane(partition);
        let limit = time.max(lane.frontier);
        let moves = limit > lane.frontier || lane.catch_up;
        lane.limit = limit;
        if moves && !self.moving.contains(&partition) {
            self.moving.push(partition);
        }
    }

    /// Lets the current call move every lane to the time `time_of` gives
    /// its partition.
    pub fn plan_all(&mut self, mut time_of: impl FnMut(u32) -> EventTime) {
        self.catch_up = false;
        for partition in 0..self.len() {
            self.plan(partition, time_of(partition));
        }
    }

    /// The earliest item of the lanes this call moves, before their
    /// limits: `(time, partition, what)`.
    pub fn next(&self) -> Option<(EventTime, u32, Item)> {
        let mut best: Option<(EventTime, Item, u32)> = None;
        for &p in &self.moving {
            if let Some((t, item)) = self.lanes[p as usize].next_before_limit() {
                let candidate = (t, item, p);
                if best.is_none_or(|b| candidate < b) {
                    best = Some(candidate);
                }
            }
        }
        best.map(|(t, item, p)| (t, p, item))
    }

    /// The call has processed everything before the limits: the moved
    /// lanes' frontiers reach them. Returns whether a lane the call did not
    /// move has something to catch up on.
    pub fn settle(&mut self) -> bool {
        for &p in &self.moving {
            let lane = &mut self.lanes[p as usize];
            lane.frontier = lane.limit;
            lane.catch_up = false;
        }
        self.moving.clear();
        self.catch_up = self.catch_up && self.lanes.iter().any(|l| l.catch_up);
        self.catch_up
    }

    /// Whether `slot`'s timer entry is at `at` in `partition`'s lane.
    pub fn has_timer(&self, partition: u32, (slot, key): (Slot, u32), at: EventTime) -> bool {
        let lane = self.lanes.get(partition as usize);
        lane.is_some_and(|l| l.timers.contains(slot, key, at))
    }

    /// Timer entries over all lanes.
    pub fn timers(&self) -> usize {
        self.lanes.iter().map(|l| l.timers.len()).sum()
    }

    /// Approximate bytes held by the timers.
    pub fn timer_bytes(&self) -> usize {
        self.lanes.iter().map(|l| l.timers.memory_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use compact_str::CompactString;

    use super::*;
    use crate::engine::rules::ActionId;
    use crate::model::Channel;

    fn event(partition: u32, at: i64) -> PendingEvent {
        PendingEvent {
            at: EventTime(at),
            fingerprint: 0,
            slot: 0,
            partition,
            offset: -1,
            action: ActionId::OTHER,
            channel: Channel::Web,
            value: None,
            event_id: CompactString::const_new("e"),
            action_name: CompactString::const_new("page_view"),
            consent: Default::default(),
        }
    }

    /// Drains what the planned lanes release, as `(time, partition, item)`.
    fn run(lanes: &mut Lanes) -> Vec<(i64, u32, Item)> {
        let mut seen = Vec::new();
        while let Some((t, p, item)) = lanes.next() {
            match item {
                Item::Event => drop(lanes.pop_event(p)),
                Item::Timer => drop(lanes.pop_timer(p)),
            }
            seen.push((t.0, p, item));
        }
        lanes.settle();
        seen
    }

    #[test]
    fn each_lane_moves_to_its_own_time_in_one_order() {
        let mut lanes = Lanes::new();
        for (p, at) in [(0, 10), (0, 50), (1, 20), (1, 60)] {
            lanes.push(event(p, at));
        }
        lanes.reschedule(0, (7, 1), EventTime::MAX, EventTime(20));
        lanes.plan(0, EventTime(30));
        lanes.plan(1, EventTime(70));
        assert_eq!(
            run(&mut lanes),
            [
                (10, 0, Item::Event),
                (20, 1, Item::Event),
                (20, 0, Item::Timer),
                (60, 1, Item::Event)
            ],
            "events before timers at equal times; lane 0 stops at 30"
        );
        assert_eq!(lanes.frontier(0), EventTime(30));
        assert_eq!(lanes.frontier(1), EventTime(70));
        assert_eq!(lanes.buffered(), 1);
        lanes.plan(0, EventTime(20));
        assert_eq!(lanes.frontier(0), EventTime(30), "never back");
        assert!(lanes.next().is_none());
    }

    #[test]
    fn a_timer_behind_the_frontier_is_caught_up_on() {
        let mut lanes = Lanes::new();
        lanes.plan(0, EventTime(100));
        lanes.plan(1, EventTime(100));
        run(&mut lanes);
        lanes.reschedule(1, (3, 9), EventTime::MAX, EventTime(40));
        assert!(lanes.catching_up());
        lanes.plan_all(|_| EventTime(100));
        assert_eq!(run(&mut lanes), [(40, 1, Item::Timer)]);
        assert!(!lanes.catching_up());
    }

    #[test]
    fn a_restarted_lane_starts_from_nothing_and_keeps_its_timers() {
        let mut lanes = Lanes::new();
        lanes.reschedule(0, (1, 1), EventTime::MAX, EventTime(500));
        lanes.plan(0, EventTime(100));
        run(&mut lanes);
        lanes.restart(0);
        assert_eq!(lanes.frontier(0), EventTime::MIN);
        lanes.move_timer((0, 2), (1, 1), EventTime(500));
        lanes.plan_all(|_| EventTime(600));
        assert_eq!(run(&mut lanes), [(500, 2, Item::Timer)]);
    }

    #[test]
    fn the_oldest_event_over_all_lanes() {
        let mut lanes = Lanes::new();
        assert_eq!(lanes.oldest_event(), None);
        for (p, at) in [(2, 30), (0, 40), (1, 30)] {
            lanes.push(event(p, at));
        }
        assert_eq!(lanes.oldest_event(), Some(1));
        let gone = lanes.extract(|e| e.partition != 1);
        assert_eq!((gone.len(), lanes.buffered()), (1, 2));
        assert_eq!(lanes.oldest_event(), Some(2));
    }
}
