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
//! ingest ─► watermark.observe ─► customer slot ─► fence ─┬─ late ──► de-dup ─► apply now
//!                                                       └─ else ─► partition's reorder buffer
//! advance: each partition's lane up to its partition time; events and
//!     timers in event-time order over the lanes that move
//!     event ─► de-dup ─► journey::apply_event        timer ─► journey::fire
//!     funnel windows ending before min(item, instance watermark) are
//!     emitted on the way
//! ```
//!
//! # Two kinds of event time
//!
//! What concerns one customer follows the customer's own partition: their
//! touchpoints wait for, and their timers fire at, the partition's time
//! ([`watermark::Watermarks::partition_time`]), and a touchpoint is late
//! when it is older than that. Customers of different partitions never
//! meet, so each partition's customers can go at their partition's pace:
//! a partition taken over from another instance, resumed from a
//! checkpoint behind this instance's other partitions, continues exactly
//! as its previous owner would have.
//!
//! What aggregates every partition, the funnel windows, follows the
//! instance watermark: the minimum over the partitions that hold it back,
//! which never decreases. A window is emitted when the instance watermark
//! passes its end; every partition that holds it back is then past the
//! end too, so the window has all they contribute. Each partition's share
//! of the open windows is kept apart, as state of that partition: it goes
//! to the changelog with its customers and moves with it ([`funnel`]). A
//! partition taken over with its share from an instance that had emitted
//! fewer windows than this one counts on in the windows this one already
//! emitted, and emits them, with its own counts, as its time passes them.
//! Otherwise what a partition resumed behind the instance (or an idle one
//! that delivers again, older) would add to windows already emitted is
//! excluded and counted as late, as for any late touchpoint. While it is
//! behind, it holds the instance watermark, and the windows after it,
//! until it has caught up.
//!
//! Parts: [`rules`] (the compiled model), [`customer`] (bounded per-customer
//! state), [`consent`] (whose touchpoints are processed, and what a consent
//! touchpoint does), [`dedupe`] (which event ids were applied), [`journey`] (the
//! stage machine), [`moments`] (journey moments), [`reorder`], [`timers`],
//! [`lanes`] (a partition's buffer, timers and frontier), [`watermark`],
//! [`funnel`] and [`churn`]; [`clv`] (lifetime value) and [`fit`] (fitting
//! the churn and spend models to purchase summaries); [`snapshot`] (a customer's state, and a
//! partition's funnel windows, as versioned bytes) and [`changelog`] (dirty tracking, restore, erasure: what the
//! changelog topic needs from the engine).

pub mod changelog;
pub mod churn;
pub mod clv;
pub mod consent;
pub mod customer;
pub mod dedupe;
pub mod fit;
pub mod funnel;
pub mod journey;
pub mod lanes;
pub mod moments;
pub mod offsets;
pub mod reorder;
pub mod rewind;
pub mod rules;
pub mod snapshot;
pub mod stats;
pub mod timers;
pub mod watermark;

use std::hash::BuildHasher;

use crate::config::{Config, ConfigError, ConsentMode};
use crate::model::{CustomerErased, CustomerEvicted, ErasureSource, EventTime, Output, Touchpoint};
pub use changelog::{Change, Checkpoint, RecordKey, RestoreError};
use changelog::{ChangeTracker, ReplayLists, Scratch};
use churn::ChurnModel;
use consent::{Consent, ConsentState, Decision};
use customer::{Customer, Customers, Slot};
use funnel::{Funnel, FunnelTotals};
use journey::{Ctx, Fired, Settings};
use lanes::{Item, Lanes};
use offsets::BufferedOffsets;
use reorder::PendingEvent;
pub use rewind::CommitPoint;
pub use rules::Rules;
pub use stats::EngineStats;
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
    /// Buffered until its partition's time passes it (or already
    /// processed).
    Accepted,
    /// Older than its partition's time: applied to the customer at once,
    /// excluded from funnel windows already emitted.
    Late,
    /// A redelivery of an `event_id` this customer had applied, or input
    /// read again after a restore that was applied before: ignored. (A
    /// redelivery that arrives while its original still waits in the
    /// reorder buffer is `Accepted`, and dropped when it is released.)
    Duplicate,
    /// A new customer while `limits.max_customers` are held: nothing of it
    /// is kept. The service sends it to the dead-letter topic (`capacity`).
    Refused,
    /// Late, not among the event ids the customer remembers, yet too old
    /// for the customer's de-duplication memory to tell it from a
    /// redelivery ([`dedupe::Reason::Memory`]): refused, counted. The
    /// service sends it to the dead-letter topic (`unverified_duplicate`).
    Unverified,
}

/// Seed of the event-id fingerprint hash; fixed so that runs are reproducible.
const FINGERPRINT_SEED: u64 = 0x6a6f_7572_6e65_7964;

/// The journey engine. See the module docs.
pub struct Engine {
    rules: Rules,
    churn: ChurnModel,
    /// `[consent]`: which touchpoints customers' consent lets through.
    consent: Consent,
    settings: Settings,
    max_buffered: usize,
    /// `limits.max_buffered_bytes`: the reorder buffer's bound in bytes.
    max_buffered_bytes: usize,
    /// `limits.max_customers`: new ids beyond it are refused.
    max_customers: usize,
    customers: Customers,
    /// Per partition: buffered touchpoints, timers, what is processed.
    lanes: Lanes,
    /// Input offsets still buffered, per partition.
    offsets: BufferedOffsets,
    funnel: Funnel,
    watermarks: Watermarks,
    /// The instance watermark the last advance moved the lanes to: when
    /// it moves, idle and unassigned partitions' time moves with it.
    instance: EventTime,
    /// Detection time stamped on outputs: the latest `wall` seen.
    detected_at: EventTime,
    fingerprints: foldhash::fast::FixedState,
    /// `time.dedupe_horizon` in milliseconds.
    dedupe_horizon_ms: u64,
    stats: EngineStats,
    /// Customers changed or removed since the last [`Engine::take_dirty`].
    changes: ChangeTracker,
    /// Restored customers' touchpoints that are to be applied when read again.
    replay: ReplayLists,
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
            consent: Consent::new(config),
            settings,
            max_buffered: config.limits.max_buffered_events.max(1),
            max_buffered_bytes: config.limits.max_buffered_bytes,
            max_customers: config.limits.max_customers,
            customers: Customers::new(rules.layout),
            lanes: Lanes::new(),
            offsets: BufferedOffsets::new(),
            funnel: Funnel::new(ms(config.time.funnel_window), &rules),
            watermarks: Watermarks::new(&config.time),
            instance: EventTime::MIN,
            detected_at: EventTime::MIN,
            fingerprints: foldhash::fast::FixedState::with_seed(FINGERPRINT_SEED),
            dedupe_horizon_ms: ms(config.time.dedupe_horizon).max(1) as u64,
            stats: EngineStats::new(rules.stages.len(), rules.moments.len()),
            changes: ChangeTracker::default(),
            replay: ReplayLists::default(),
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
    /// processes whatever the partition's advanced time releases. Until it
    /// leaves the reorder buffer, the touchpoint holds
    /// [`Engine::buffered_low`] of its partition at or below `offset`.
    pub fn ingest_at(
        &mut self,
        partition: u32,
        offset: i64,
        tp: &Touchpoint<'_>,
        wall: EventTime,
        out: &mut impl Emit,
    ) -> Ingested {
        self.detected_at = self.detected_at.max(wall);
        if self.lanes.catching_up() {
            self.advance(None, out);
        }
        if !self.watermarks.is_assigned(partition) {
            self.lanes.restart(partition);
        }
        let Some((slot, _)) =
            (self.customers).find_or_insert_within(&tp.customer_id, self.max_customers)
        else {
            // Refused before it counts for anything, time included: as for
            // invalid input, its partition's time does not move with it.
            self.stats.refused += 1;
            return Ingested::Refused;
        };
        // Stamped ahead of the wall clock (hybrid mode): its partition's time
        // went only up to the wall clock ("A fast clock" in `watermark`).
        if self.watermarks.observe(partition, tp.occurred_at, wall) {
            self.stats.ahead += 1;
        }
        let fingerprint = self.fingerprints.hash_one(tp.event_id.as_ref());
        if !self.admit(slot, partition, offset) {
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
            consent: self.consent.classify(tp),
        };
        let outcome = if event.at < self.lanes.frontier(partition) {
            self.apply_late(event, out)
        } else {
            self.buffer(event, out);
            Ingested::Accepted
        };
        self.advance(Some(partition), out);
        outcome
    }

    /// Applies a touchpoint older than its partition's time at once, unless
    /// it was applied before or cannot be verified as new.
    fn apply_late(&mut self, event: PendingEvent, out: &mut impl Emit) -> Ingested {
        let decision = self.decide(&event);
        if decision != Decision::Process {
            self.apply_consent(decision, event, out);
            return Ingested::Late;
        }
        if let Some(refused) = self.verify(&event) {
            return refused;
        }
        self.stats.late += 1;
        self.funnel.set_late_item(true);
        self.process(event, out);
        self.funnel.set_late_item(false);
        Ingested::Late
    }

    /// Consults (and updates) the customer's de-duplication memory about a
    /// touchpoint about to be applied; returns why not to apply it, if so.
    fn verify(&mut self, event: &PendingEvent) -> Option<Ingested> {
        use dedupe::{Reason, Verdict};
        let entry = dedupe::entry(event.at, event.fingerprint);
        let layout = self.rules.layout;
        let mut customer = self.customers.get_mut(event.slot);
        match customer.dedupe(entry, self.dedupe_horizon_ms, &layout) {
            Verdict::New => None,
            Verdict::Duplicate => {
                self.stats.duplicates += 1;
                Some(Ingested::Duplicate)
            }
            Verdict::Unverified(Reason::Horizon) => {
                self.stats.unverified_horizon += 1;
                None
            }
            Verdict::Unverified(Reason::Memory) => {
                self.stats.unverified_memory += 1;
                Some(Ingested::Unverified)
            }
        }
    }

    /// Puts a touchpoint in its partition's reorder buffer; while the
    /// buffer is over a limit (events or bytes), processes the oldest
    /// touchpoint early.
    fn buffer(&mut self, event: PendingEvent, out: &mut impl Emit) {
        let mut customer = self.customers.get_mut(event.slot);
        customer.pending = customer.pending.saturating_add(1);
        self.offsets.push(event.partition, event.offset);
        self.lanes.push(event);
        while self.lanes.buffered() > self.max_buffered
            || self.lanes.buffered_bytes() > self.max_buffered_bytes
        {
            let Some(oldest) = self.lanes.oldest_event() else {
                break;
            };
            self.stats.forced_early += 1;
            self.release(oldest, out);
        }
    }

    /// The wall clock moved on with no event (hybrid mode: idle partitions
    /// stop holding the watermark back and a quiet stream still progresses).
    pub fn tick(&mut self, wall: EventTime, out: &mut impl Emit) {
        self.detected_at = self.detected_at.max(wall);
        self.watermarks.tick(wall);
        self.advance(None, out);
    }

    /// End of a replayed input: every partition's time moves to the largest
    /// event time seen; everything buffered is processed and timers due up
    /// to that time fire. Timers due later do not.
    pub fn finish(&mut self, out: &mut impl Emit) {
        let last = self.watermarks.finish();
        if last != EventTime::MIN {
            let end = last.plus_ms(1);
            self.instance = self.watermarks.current();
            self.lanes.plan_all(|_| end);
            self.run(end, out);
        }
    }

    /// Moves lanes to their partitions' time: only `moved`'s, unless the
    /// instance watermark moved (idle and unassigned partitions follow it)
    /// or a lane has a timer to catch up on; every lane for `None`.
    fn advance(&mut self, moved: Option<u32>, out: &mut impl Emit) {
        let instance = self.watermarks.current();
        match moved {
            Some(p) if instance == self.instance && !self.lanes.catching_up() => {
                self.lanes.plan(p, self.watermarks.partition_time(p));
            }
            _ => {
                let watermarks = &self.watermarks;
                self.lanes.plan_all(|p| watermarks.partition_time(p));
            }
        }
        self.instance = instance;
        self.run(instance, out);
    }

    /// Processes the planned lanes' buffered events and timers before their
    /// limits, in event-time order over the lanes (events before timers at
    /// equal times), emitting on the way the funnel windows that end before
    /// both the item and `funnel_limit`, then those before `funnel_limit`.
    fn run(&mut self, funnel_limit: EventTime, out: &mut impl Emit) {
        loop {
            while let Some((t, partition, item)) = self.lanes.next() {
                self.close_windows(t.min(funnel_limit), out);
                // A timer caught up on behind its lane's frontier is late.
                self.funnel
                    .set_late_item(t < self.lanes.frontier(partition));
                match item {
                    Item::Event => self.release(partition, out),
                    Item::Timer => {
                        if let Some((due, slot)) = self.lanes.pop_timer(partition) {
                            self.fire(slot, due, out);
                        }
                    }
                }
            }
            if !self.lanes.settle() {
                break;
            }
            let watermarks = &self.watermarks;
            self.lanes.plan_all(|p| watermarks.partition_time(p));
        }
        self.funnel.set_late_item(false);
        self.close_windows(funnel_limit, out);
    }

    fn close_windows(&mut self, frontier: EventTime, out: &mut impl Emit) {
        let emit = &mut |w| out.emit(Output::FunnelWindow(w));
        self.funnel.close_until(frontier, &self.rules, emit);
        if self.funnel.is_lagging() {
            // Partitions taken over behind this instance emit the windows
            // it had already closed as their own time passes them.
            for partition in 0..self.funnel.parts() {
                let frontier = self.lanes.frontier(partition);
                self.funnel.catch_up(partition, frontier, &self.rules, emit);
            }
        }
    }

    /// Processes `partition`'s earliest buffered touchpoint.
    fn release(&mut self, partition: u32, out: &mut impl Emit) {
        if let Some(event) = self.lanes.pop_event(partition) {
            self.offsets.release(event.partition, event.offset);
            let mut customer = self.customers.get_mut(event.slot);
            customer.pending = customer.pending.saturating_sub(1);
            match self.decide(&event) {
                Decision::Process => {
                    if self.verify(&event).is_none() {
                        self.process(event, out);
                    }
                }
                decision => self.apply_consent(decision, event, out),
            }
        }
    }

    /// What the customer's consent makes of `event` now ([`consent`]).
    #[inline]
    fn decide(&self, event: &PendingEvent) -> Decision {
        let c = self.customers.get(event.slot);
        (self.consent).decide(event.consent, event.at, c.consent, c.consent_at)
    }

    /// Carries out a consent decision other than processing the touchpoint.
    fn apply_consent(&mut self, decision: Decision, event: PendingEvent, out: &mut impl Emit) {
        match decision {
            Decision::Process => self.process(event, out),
            Decision::Ignore => self.ignore(event.slot),
            Decision::Grant => self.set_consent(event.slot, ConsentState::Granted, event.at),
            Decision::Withdraw => self.withdraw(event.slot, event.at, out),
        }
    }

    /// A touchpoint without consent: counted, nothing kept. A customer it
    /// created, who has nothing else (no journey, no consent, nothing
    /// buffered), goes again; their changelog record, if a drain wrote one
    /// while the touchpoint waited, is tombstoned.
    fn ignore(&mut self, slot: Slot) {
        self.stats.without_consent += 1;
        let c = self.customers.get(slot);
        let empty = c.stage == customer::NO_STAGE
            && c.consent == ConsentState::Unknown
            && c.pending == 0
            && c.timer_at == EventTime::MAX;
        if empty {
            let gone = self.customers.remove(slot);
            self.stats.record_removal(gone.stage, gone.band);
            self.changes.removed(&gone.id, u32::from(gone.partition));
            self.replay.forget(slot);
        }
    }

    /// Records the customer's consent as `state` since `at`; their state
    /// lives on for `state_ttl` after it.
    fn set_consent(&mut self, slot: Slot, state: ConsentState, at: EventTime) {
        let mut c = self.customers.get_mut(slot);
        c.consent = state;
        c.consent_at = at;
        self.changes.mark(slot);
        self.file_timer(slot);
    }

    /// A withdrawal of consent at `at`: the customer is erased as an
    /// erasure request does (journey, timers, de-duplication memory), all
    /// but their consent, which is now withdrawn; `CustomerErased` with
    /// source `consent` confirms it. Their touchpoints still buffered stay,
    /// to be judged in their turn (see [`consent`]), as do the offsets a
    /// restore awaits. Their next record in the changelog holds only the
    /// consent.
    fn withdraw(&mut self, slot: Slot, at: EventTime, out: &mut impl Emit) {
        let c = self.customers.get(slot);
        let state_found = c.stage != customer::NO_STAGE || c.consent != ConsentState::Unknown;
        self.set_timer(slot, EventTime::MAX);
        let gone = self.customers.reset(slot);
        self.customers.reset_words(slot);
        self.stats.record_removal(gone.stage, gone.band);
        journey::count_in_flight(&mut self.funnel, &self.rules, &gone, -1, Some(at));
        self.stats.consent_erasures[usize::from(!state_found)] += 1;
        self.set_consent(slot, ConsentState::Withdrawn, at);
        out.emit(Output::CustomerErased(CustomerErased {
            customer_id: gone.id,
            requested_at: at.0,
            completed_at: self.detected_at.0,
            source: ErasureSource::Consent,
            state_found,
        }));
    }

    /// Lends out what a customer update needs, beside the customers and
    /// the lanes (for their timers).
    fn split<'a, E: Emit>(
        &'a mut self,
        out: &'a mut E,
    ) -> (Ctx<'a, E>, &'a mut Customers, &'a mut Lanes) {
        let cx = Ctx {
            rules: &self.rules,
            churn: &self.churn,
            settings: &self.settings,
            funnel: &mut self.funnel,
            stats: &mut self.stats,
            detected_at: self.detected_at,
            out,
        };
        (cx, &mut self.customers, &mut self.lanes)
    }

    fn process(&mut self, event: PendingEvent, out: &mut impl Emit) {
        let slot = event.slot;
        self.changes.mark(slot);
        self.funnel.begin_item();
        let (mut cx, customers, lanes) = self.split(out);
        let mut customer = customers.get_mut(slot);
        journey::apply_event(&mut customer, &event, &mut cx);
        let due = journey::next_due(&customer, customer.words(), cx.rules, cx.settings);
        let (current, lane) = (customer.timer_at, u32::from(customer.partition));
        // An entry may stay early (it re-files itself when it fires); it
        // only moves when something is now due sooner. A late touchpoint's
        // deadline may already be behind its partition's frontier: it
        // fires before this call returns.
        if due < current {
            let key = customers.timer_key(slot);
            customers.get_mut(slot).timer_at = lanes.reschedule(lane, (slot, key), current, due);
        }
    }

    fn fire(&mut self, slot: Slot, now: EventTime, out: &mut impl Emit) {
        self.funnel.begin_item();
        let (mut cx, customers, lanes) = self.split(out);
        let mut customer = customers.get_mut(slot);
        customer.timer_at = EventTime::MAX;
        match journey::fire(&mut customer, now, &mut cx) {
            Fired::Keep => {
                let due = journey::next_due(&customer, customer.words(), cx.rules, cx.settings);
                let lane = u32::from(customer.partition);
                let key = customers.timer_key(slot);
                customers.get_mut(slot).timer_at =
                    lanes.reschedule(lane, (slot, key), EventTime::MAX, due);
                self.changes.mark(slot);
            }
            Fired::Evict if customer.pending == 0 => {
                announce_eviction(&customer, &mut cx);
                journey::count_in_flight(cx.funnel, cx.rules, &customer, -1, Some(now));
                let gone = customers.remove(slot);
                cx.stats.record_removal(gone.stage, gone.band);
                cx.stats.evicted += 1;
                self.changes.removed(&gone.id, u32::from(gone.partition));
                self.replay.forget(slot);
            }
            Fired::Evict => {
                // Later touchpoints are buffered: a new journey starts in place.
                announce_eviction(&customer, &mut cx);
                journey::count_in_flight(cx.funnel, cx.rules, &customer, -1, Some(now));
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
    /// until it has data or goes idle, its customers' time starts from
    /// nothing (until [`Engine::resume`] or its first touchpoint), and its
    /// share of the funnel windows from none (until
    /// [`Engine::restore_funnel`]).
    pub fn assign(&mut self, partition: u32, wall: EventTime) {
        if !self.watermarks.is_assigned(partition) {
            self.lanes.restart(partition);
            self.funnel.reset_part(partition);
        }
        self.watermarks.assign(partition, wall);
    }

    /// `partition` moved elsewhere: its buffered touchpoints, its
    /// customers (with their timers) and its share of the open funnel
    /// windows are dropped, to be rebuilt by the new owner from the
    /// changelog and the committed offsets. Their changes
    /// not yet taken by [`Engine::take_dirty`] are dropped too: take them
    /// (and commit) first, as [`changelog`] describes. Returns the
    /// customers dropped. Walks the partition's customers and buffer only,
    /// not every customer held.
    pub fn revoke(&mut self, partition: u32) -> usize {
        self.watermarks.revoke(partition);
        self.funnel.drop_part(partition);
        self.offsets.forget(partition);
        for event in self.lanes.take_buffer(partition) {
            let mut customer = self.customers.get_mut(event.slot);
            customer.pending = customer.pending.saturating_sub(1);
            self.changes.mark(event.slot);
        }
        self.changes.forget_partition(partition);
        let owned = u16::try_from(partition).unwrap_or(u16::MAX);
        let mut dropped = 0;
        let mut next = self.customers.first_in_partition(owned);
        while let Some(slot) = next {
            // Removing `slot` leaves the rest of the list as it was.
            next = self.customers.next_in_partition(slot);
            if self.customers.get(slot).pending == 0 {
                let gone = self.customers.remove(slot);
                journey::count_in_flight(&mut self.funnel, &self.rules, &gone, -1, None);
                self.stats.record_removal(gone.stage, gone.band);
                self.replay.forget(slot);
                dropped += 1;
            }
        }
        // The lane's timers are its partition's customers': dropped at
        // once, then those of the customers kept (their touchpoints wait
        // in another partition's buffer) filed again.
        self.lanes.clear_timers(partition);
        let mut next = self.customers.first_in_partition(owned);
        while let Some(slot) = next {
            next = self.customers.next_in_partition(slot);
            let (key, at) = (
                self.customers.timer_key(slot),
                self.customers.get(slot).timer_at,
            );
            self.lanes
                .reschedule(partition, (slot, key), EventTime::MAX, at);
        }
        debug_assert_eq!(self.check_index(), Ok(()));
        dropped
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// `consent.mode`.
    pub fn consent_mode(&self) -> ConsentMode {
        self.consent.mode()
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

    /// Number of customers held of `partition` (those whose touchpoints
    /// come from it); O(1).
    pub fn partition_customers(&self, partition: u32) -> usize {
        let tag = u16::try_from(partition).unwrap_or(u16::MAX);
        self.customers.partition_len(tag)
    }

    /// Checks the per-partition customer lists and the memory figures
    /// against a full scan of the customers: for tests (and debug
    /// assertions), as it walks every customer.
    /// Also checks that each customer's count of buffered touchpoints is
    /// what the buffers hold for them, and that the timers are exactly
    /// the customers', each in their partition's lane.
    pub fn check_index(&self) -> Result<(), String> {
        self.customers.check_index()?;
        let mut buffered = hashbrown::HashMap::<Slot, u32>::new();
        for e in (0..self.lanes.len()).flat_map(|p| self.lanes.buffer_of(p)) {
            if !self.customers.is_live(e.slot) {
                return Err(format!("a buffered touchpoint of free slot {}", e.slot));
            }
            *buffered.entry(e.slot).or_default() += 1;
        }
        let mut timers = 0;
        for (slot, c) in self.customers.iter() {
            let n = buffered.get(&slot).copied().unwrap_or(0);
            if c.pending != n {
                return Err(format!("slot {slot}: {} pending, {n} buffered", c.pending));
            }
            if c.timer_at != EventTime::MAX {
                let entry = (slot, self.customers.timer_key(slot));
                if !self
                    .lanes
                    .has_timer(u32::from(c.partition), entry, c.timer_at)
                {
                    return Err(format!("slot {slot}: no timer in its partition's lane"));
                }
                timers += 1;
            }
        }
        if timers != self.lanes.timers() {
            return Err(format!(
                "{} timers for {timers} customers",
                self.lanes.timers()
            ));
        }
        self.check_in_flight()
    }

    /// Checks that the funnel's count of customers in flight, per
    /// partition and pair, is the customers' with a running deadline.
    fn check_in_flight(&self) -> Result<(), String> {
        let mut running = std::collections::BTreeMap::<(u32, usize), i64>::new();
        for (_, c) in self.customers.iter() {
            if c.conversion_pending && c.stage != customer::NO_STAGE {
                let conv = self.rules.conversion_from[usize::from(c.stage)];
                if let Some(conv) = conv {
                    *running
                        .entry((u32::from(c.partition), conv.index))
                        .or_default() += 1;
                }
            }
        }
        let counted = self.funnel.pending_counts();
        let counted: std::collections::BTreeMap<_, _> = counted.filter(|&(_, n)| n != 0).collect();
        if counted != running {
            return Err(format!(
                "in flight counted {counted:?}, customers with a running deadline {running:?}"
            ));
        }
        if !self.funnel.check_open_in_flight() {
            return Err("the open windows' moves in flight are not their sum".into());
        }
        Ok(())
    }

    /// Funnel totals over all windows, including open ones.
    pub fn funnel_totals(&self) -> &FunnelTotals {
        self.funnel.totals()
    }

    /// The instance watermark (funnel windows close when it passes them).
    pub fn watermark(&self) -> EventTime {
        self.watermarks.current()
    }

    /// Touchpoints waiting for their partition's time.
    pub fn buffered(&self) -> usize {
        self.lanes.buffered()
    }

    /// Bytes of the touchpoints waiting for their partition's time.
    pub fn buffered_bytes(&self) -> usize {
        self.lanes.buffered_bytes()
    }

    /// Approximate bytes of journey state held (customers, index, timers):
    /// O(partitions), from figures kept as they change, so the metrics
    /// can read it often.
    pub fn state_bytes(&self) -> usize {
        self.customers.memory_bytes() + self.lanes.timer_bytes()
    }
}

/// Emits [`CustomerEvicted`] for a customer whose journey ends by
/// `state_ttl`, after their final lapse and churn events: consumers that
/// de-duplicate by `(customer_id, sequence)` learn that the sequences start
/// again. Deterministic (event times and the customer's own state), so a
/// run read again after a crash announces it again with the same content.
fn announce_eviction<E: Emit>(customer: &Customer, cx: &mut Ctx<'_, E>) {
    cx.out.emit(Output::CustomerEvicted(CustomerEvicted {
        customer_id: customer.id.clone(),
        last_seen: customer.seen().0,
        evicted_at: customer.seen().plus_ms(cx.settings.state_ttl_ms).0,
        detected_at: cx.detected_at.0,
        last_stage_sequence: u64::from(customer.stage_seq),
        last_churn_sequence: u64::from(customer.churn_seq),
    }));
}
