//! The journey engine: pure, synchronous and deterministic.
//!
//! Touchpoints and time go in, derived [`Output`]s come out through an
//! [`Emit`]. The engine reads no clock, does no I/O and knows nothing of
//! Kafka or async: the driver passes the wall clock in (`wall`), which only
//! matters in `hybrid` time mode and as the detection time on outputs. The
//! same inputs therefore always give the same outputs, which is what makes
//! `replay`, the golden tests and the property tests possible.
//!
//! # How a touchpoint flows
//!
//! ```text
//! ingest ─► watermark.observe ─► customer slot ─► de-dup ring ─┬─ late ──► apply now
//!                                                              └─ else ─► reorder buffer
//! advance(watermark): pop events and timers in event-time order, < watermark
//!     event ─► journey::apply_event        timer ─► journey::fire
//!     funnel windows ending before the frontier are emitted on the way
//! ```
//!
//! Parts: [`rules`] (the compiled model), [`customer`] (bounded per-customer
//! state), [`journey`] (the stage machine), [`reorder`], [`timers`],
//! [`watermark`], [`funnel`] and [`churn`]; [`snapshot`] (a customer's state
//! as versioned bytes) and [`changelog`] (dirty tracking, restore, erasure:
//! what the changelog topic needs from the engine).

pub mod changelog;
pub mod churn;
pub mod customer;
pub mod funnel;
pub mod journey;
pub mod offsets;
pub mod reorder;
pub mod rewind;
pub mod rules;
pub mod snapshot;
pub mod stats;
pub mod timers;
pub mod watermark;

use std::hash::BuildHasher;

use crate::config::{Config, ConfigError};
use crate::model::{EventTime, Output, Touchpoint};
pub use changelog::{Change, Checkpoint, RestoreError};
use changelog::{ChangeTracker, ReplayLists, Scratch};
use churn::ChurnModel;
use customer::{Customer, Customers, Slot};
use funnel::{Funnel, FunnelTotals};
use journey::{Ctx, Fired, Settings};
use offsets::BufferedOffsets;
use reorder::{PendingEvent, ReorderBuffer};
pub use rewind::CommitPoint;
pub use rules::Rules;
pub use stats::EngineStats;
use timers::TimerIndex;
use watermark::Watermarks;

/// Where the engine puts derived outputs.
pub trait Emit {
    /// Takes one output.
    fn emit(&mut self, output: Output);
}

impl Emit for Vec<Output> {
    fn emit(&mut self, output: Output) {
        self.push(output);
    }
}

/// What happened to an ingested touchpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Buffered until the watermark passes it (or already processed).
    Accepted,
    /// Older than the watermark: applied to the customer at once, excluded
    /// from closed funnel windows.
    Late,
    /// A redelivery of a recent `event_id` of this customer, or input read
    /// again after a restore that was applied before: ignored.
    Duplicate,
}

/// Seed of the event-id fingerprint hash; fixed so that runs are reproducible.
const FINGERPRINT_SEED: u64 = 0x6a6f_7572_6e65_7964;

/// The journey engine. See the module docs.
pub struct Engine {
    rules: Rules,
    churn: ChurnModel,
    settings: Settings,
    max_buffered: usize,
    customers: Customers,
    timers: TimerIndex,
    buffer: ReorderBuffer,
    /// Input offsets still in `buffer`, per partition.
    offsets: BufferedOffsets,
    funnel: Funnel,
    watermarks: Watermarks,
    /// Everything before this event time has been processed.
    frontier: EventTime,
    /// Detection time stamped on outputs: the latest `wall` seen.
    detected_at: EventTime,
    fingerprints: foldhash::fast::FixedState,
    stats: EngineStats,
    /// Customers changed or removed since the last [`Engine::take_dirty`].
    changes: ChangeTracker,
    /// Restored customers' touchpoints that are to be applied when read again.
    replay: ReplayLists,
    /// Something is due before `frontier` (a restored customer's timer, a
    /// late touchpoint's deadline, a resumed watermark): the next call
    /// processes it even if the watermark does not move.
    catch_up: bool,
    /// Reused buffers for encoding drained customers.
    scratch: Scratch,
}

impl Engine {
    /// An engine for a validated configuration.
    pub fn new(config: &Config) -> Result<Engine, ConfigError> {
        let rules = Rules::compile(config)?;
        let ms = rules::duration_ms;
        let settings = Settings {
            lapse_after_ms: ms(config.time.lapse_after),
            state_ttl_ms: ms(config.time.state_ttl),
            signal_window_ms: ms(config.churn.signal_window),
        };
        Ok(Engine {
            churn: ChurnModel::new(&config.churn),
            settings,
            max_buffered: config.limits.max_buffered_events.max(1),
            customers: Customers::new(rules.layout),
            timers: TimerIndex::new(),
            buffer: ReorderBuffer::new(),
            offsets: BufferedOffsets::new(),
            funnel: Funnel::new(ms(config.time.funnel_window), &rules),
            watermarks: Watermarks::new(&config.time),
            frontier: EventTime::MIN,
            detected_at: EventTime::MIN,
            fingerprints: foldhash::fast::FixedState::with_seed(FINGERPRINT_SEED),
            stats: EngineStats::new(rules.stages.len()),
            changes: ChangeTracker::default(),
            replay: ReplayLists::default(),
            catch_up: false,
            scratch: Scratch::default(),
            rules,
        })
    }

    /// Takes one validated touchpoint from `partition` whose offset is not
    /// tracked (files, tests); see [`Engine::ingest_at`].
    pub fn ingest(
        &mut self,
        partition: u32,
        tp: &Touchpoint<'_>,
        wall: EventTime,
        out: &mut impl Emit,
    ) -> Ingested {
        self.ingest_at(partition, -1, tp, wall, out)
    }

    /// Takes one validated touchpoint read at `offset` of `partition`, then
    /// processes whatever the advanced watermark releases. Until it leaves
    /// the reorder buffer, the touchpoint holds [`Engine::buffered_low`] of
    /// its partition at or below `offset`.
    pub fn ingest_at(
        &mut self,
        partition: u32,
        offset: i64,
        tp: &Touchpoint<'_>,
        wall: EventTime,
        out: &mut impl Emit,
    ) -> Ingested {
        self.detected_at = self.detected_at.max(wall);
        if self.catch_up {
            self.advance(self.watermarks.current(), out);
        }
        self.watermarks.observe(partition, tp.occurred_at, wall);
        let (slot, _) = self.customers.find_or_insert(&tp.customer_id);
        let fingerprint = self.fingerprints.hash_one(tp.event_id.as_ref());
        if !self.admit(slot, partition, offset, fingerprint) {
            self.stats.duplicates += 1;
            return Ingested::Duplicate;
        }
        let event = PendingEvent {
            at: tp.occurred_at,
            fingerprint,
            slot,
            partition,
            offset,
            action: self.rules.action_id(&tp.action),
            channel: tp.channel,
            value: tp.value,
            event_id: tp.event_id.as_ref().into(),
            action_name: tp.action.as_ref().into(),
        };
        let late = event.at < self.frontier;
        if late {
            self.stats.late += 1;
            self.process(event, out);
        } else {
            let mut customer = self.customers.get_mut(slot);
            customer.pending = customer.pending.saturating_add(1);
            self.offsets.push(partition, offset);
            self.buffer.push(event);
            if self.buffer.len() > self.max_buffered {
                self.stats.forced_early += 1;
                self.release_one(out);
            }
        }
        self.advance(self.watermarks.current(), out);
        if late {
            Ingested::Late
        } else {
            Ingested::Accepted
        }
    }

    /// The wall clock moved on with no event (hybrid mode: idle partitions
    /// stop holding the watermark back and a quiet stream still progresses).
    pub fn tick(&mut self, wall: EventTime, out: &mut impl Emit) {
        self.detected_at = self.detected_at.max(wall);
        self.watermarks.tick(wall);
        self.advance(self.watermarks.current(), out);
    }

    /// End of a replayed input: the watermark moves to the largest event time
    /// seen; everything buffered is processed and timers due up to that time
    /// fire. Timers due later do not.
    pub fn finish(&mut self, out: &mut impl Emit) {
        let last = self.watermarks.finish();
        if last != EventTime::MIN {
            self.advance(last.plus_ms(1), out);
        }
    }

    /// Processes buffered events and timers before `limit`, in event-time
    /// order (events before timers at equal times), emitting the funnel
    /// windows that close on the way.
    fn advance(&mut self, limit: EventTime, out: &mut impl Emit) {
        if limit <= self.frontier && !self.catch_up {
            return;
        }
        let limit = limit.max(self.frontier);
        if limit == EventTime::MIN {
            // Nothing is before the beginning of time.
            self.catch_up = false;
            return;
        }
        loop {
            let next_event = self.buffer.next_time().unwrap_or(EventTime::MAX);
            let next_timer = self.timers.next_due().unwrap_or(EventTime::MAX);
            let t = next_event.min(next_timer);
            if t >= limit {
                break;
            }
            self.close_windows(t, out);
            if next_event <= next_timer {
                self.release_one(out);
            } else if let Some((due, slot)) = self.timers.pop_before(limit) {
                self.fire(slot, due, out);
            }
        }
        self.close_windows(limit, out);
        self.frontier = limit;
        self.catch_up = false;
    }

    fn close_windows(&mut self, frontier: EventTime, out: &mut impl Emit) {
        self.funnel.close_until(frontier, &self.rules, &mut |w| {
            out.emit(Output::FunnelWindow(w))
        });
    }

    fn release_one(&mut self, out: &mut impl Emit) {
        if let Some(event) = self.buffer.pop() {
            self.offsets.release(event.partition, event.offset);
            let mut customer = self.customers.get_mut(event.slot);
            customer.pending = customer.pending.saturating_sub(1);
            self.process(event, out);
        }
    }

    /// Lends out what a customer update needs, beside the customers and
    /// the timer index.
    fn split<'a, E: Emit>(
        &'a mut self,
        out: &'a mut E,
    ) -> (Ctx<'a, E>, &'a mut Customers, &'a mut TimerIndex) {
        let cx = Ctx {
            rules: &self.rules,
            churn: &self.churn,
            settings: &self.settings,
            funnel: &mut self.funnel,
            stats: &mut self.stats,
            detected_at: self.detected_at,
            out,
        };
        (cx, &mut self.customers, &mut self.timers)
    }

    fn process(&mut self, event: PendingEvent, out: &mut impl Emit) {
        let slot = event.slot;
        self.changes.mark(slot);
        let frontier = self.frontier;
        let (mut cx, customers, timers) = self.split(out);
        let mut customer = customers.get_mut(slot);
        journey::apply_event(&mut customer, &event, &mut cx);
        let due = journey::next_due(&customer, cx.rules, cx.settings);
        let current = customer.timer_at;
        // An entry may stay early (it re-files itself when it fires); it
        // only moves when something is now due sooner.
        if due < current {
            let key = customers.timer_key(slot);
            customers.get_mut(slot).timer_at = timers.reschedule(slot, key, current, due);
            // A late touchpoint's deadline may already be behind the
            // frontier: it fires before this call returns.
            self.catch_up |= due < frontier;
        }
    }

    fn fire(&mut self, slot: Slot, now: EventTime, out: &mut impl Emit) {
        let (mut cx, customers, timers) = self.split(out);
        let mut customer = customers.get_mut(slot);
        customer.timer_at = EventTime::MAX;
        match journey::fire(&mut customer, now, &mut cx) {
            Fired::Keep => {
                let due = journey::next_due(&customer, cx.rules, cx.settings);
                let key = customers.timer_key(slot);
                customers.get_mut(slot).timer_at =
                    timers.reschedule(slot, key, EventTime::MAX, due);
                self.changes.mark(slot);
            }
            Fired::Evict if customer.pending == 0 => {
                let gone = customers.remove(slot);
                cx.stats.record_removal(gone.stage, gone.band);
                cx.stats.evicted += 1;
                self.changes.removed(&gone.id, u32::from(gone.partition));
                self.replay.forget(slot);
            }
            Fired::Evict => {
                // Later touchpoints are buffered: a new journey starts in place.
                let gone = customers.reset(slot);
                cx.stats.record_removal(gone.stage, gone.band);
                cx.stats.evicted += 1;
                self.changes.mark(slot);
            }
        }
    }

    /// The lowest offset of `partition` still in the reorder buffer: input
    /// before it is fully processed. `None` when nothing of it is buffered.
    pub fn buffered_low(&self, partition: u32) -> Option<i64> {
        self.offsets.low(partition)
    }

    /// `partition` is now read by this engine; it holds the watermark back
    /// until it has data or goes idle.
    pub fn assign(&mut self, partition: u32, wall: EventTime) {
        self.watermarks.assign(partition, wall);
    }

    /// `partition` moved elsewhere: its buffered touchpoints and its
    /// customers (with their timers) are dropped, to be rebuilt by the new
    /// owner from the changelog and the committed offsets. Their changes
    /// not yet taken by [`Engine::take_dirty`] are dropped too: take them
    /// (and commit) first, as [`changelog`] describes. Returns the
    /// customers dropped.
    pub fn revoke(&mut self, partition: u32) -> usize {
        self.watermarks.revoke(partition);
        self.offsets.forget(partition);
        for event in self.buffer.extract(|e| e.partition != partition) {
            let mut customer = self.customers.get_mut(event.slot);
            customer.pending = customer.pending.saturating_sub(1);
            self.changes.mark(event.slot);
        }
        self.changes.forget_partition(partition);
        let owned = u16::try_from(partition).unwrap_or(u16::MAX);
        let leaving: Vec<Slot> = self
            .customers
            .iter()
            .filter(|(_, c)| c.partition == owned && c.pending == 0)
            .map(|(slot, _)| slot)
            .collect();
        for &slot in &leaving {
            let key = self.customers.timer_key(slot);
            self.timers
                .reschedule(slot, key, self.customers.get(slot).timer_at, EventTime::MAX);
            let gone = self.customers.remove(slot);
            self.stats.record_removal(gone.stage, gone.band);
            self.replay.forget(slot);
        }
        leaving.len()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The compiled journey model.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// A customer's current state, if held here.
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.find(id).map(|slot| self.customers.get(slot))
    }

    /// Every customer held, in slot order.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.iter().map(|(_, c)| c)
    }

    /// Number of customers held in memory.
    pub fn tracked_customers(&self) -> usize {
        self.customers.len()
    }

    /// Funnel totals over all windows, including open ones.
    pub fn funnel_totals(&self) -> &FunnelTotals {
        self.funnel.totals()
    }

    /// The current watermark.
    pub fn watermark(&self) -> EventTime {
        self.watermarks.current()
    }

    /// Touchpoints waiting for the watermark.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Approximate bytes of journey state held (customers, index, timers).
    pub fn state_bytes(&self) -> usize {
        self.customers.memory_bytes() + self.timers.memory_bytes()
    }
}
