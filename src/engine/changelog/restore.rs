//! Loading customers from the changelog, resuming a partition's watermark,
//! erasing customers, and admitting touchpoints that are read again.

use super::{Checkpoint, RestoreError, convert};
use crate::engine::Engine;
use crate::engine::customer::{Customer, NO_STAGE, Slot};
use crate::engine::journey;
use crate::engine::snapshot;
use crate::model::EventTime;

/// The engine's partition number as the customer's 16-bit tag.
fn tag(partition: u32) -> u16 {
    u16::try_from(partition).unwrap_or(u16::MAX)
}

impl Engine {
    /// Loads one changelog record of `partition`: `Some(value)` replaces
    /// whatever is held for `customer_id` by the encoded state and files
    /// its timer; `None` (a tombstone) removes the customer. Restored
    /// customers are not marked changed: the changelog already holds them.
    /// On error nothing changes; the service decides whether to skip the
    /// record (the customer then starts afresh) or stop.
    pub fn restore(
        &mut self,
        partition: u32,
        customer_id: &str,
        value: Option<&[u8]>,
    ) -> Result<(), RestoreError> {
        let Some(bytes) = value else {
            if let Some(slot) = self.customers.find(customer_id) {
                self.discard(slot);
            }
            return Ok(());
        };
        let state = snapshot::decode(bytes)?;
        // A record older than the state this pass already restored for the
        // customer: a late write of an instance that had lost the
        // partition (it landed after the new owner's). The newer state
        // stays.
        if let Some(slot) = self.customers.find(customer_id) {
            let held = self.customers.get(slot);
            if held.partition == tag(partition) && state.fence.unwrap_or(-1) < held.fence {
                return Ok(());
            }
        }
        let stage = match state.stage {
            None => NO_STAGE,
            Some(ordinal) => self
                .rules
                .stage_by_ordinal(ordinal)
                .ok_or(RestoreError::UnknownStage(ordinal))?,
        };
        let slot = self.vacate(customer_id);
        let mut c = self.customers.get_mut(slot);
        convert::install(&mut c, &state, stage, &self.rules);
        self.stats.record_restored(c.stage, c.band);
        self.stats.restored += 1;
        self.customers.set_partition(slot, tag(partition));
        let c = self.customers.get(slot);
        journey::count_in_flight(&mut self.funnel, &self.rules, c, 1, None);
        self.replay.set(slot, state.awaiting);
        self.file_timer(slot);
        self.changes.forget_removal(customer_id);
        Ok(())
    }

    /// Loads the funnel record of `partition`: its share of the open
    /// funnel windows replaces whatever the partition holds. Its floor is
    /// settled by [`Engine::resume`], with those of the other partitions
    /// restored meanwhile (see [`crate::engine::funnel::durable`]). On
    /// error nothing changes; the partition's windows then start empty.
    pub fn restore_funnel(&mut self, partition: u32, value: &[u8]) -> Result<(), RestoreError> {
        let state = snapshot::decode_funnel(value)?;
        self.funnel.install(partition, &state, &self.rules);
        Ok(())
    }

    /// The changelog holds a record of `customer_id` that the restore of
    /// `partition` did not apply: it belongs to a drain that was not
    /// completely written (see [`super`]). The next drain writes what is
    /// held now over it: the customer's restored state, or a tombstone if
    /// the customer is not held.
    pub fn supersede(&mut self, partition: u32, customer_id: &str) {
        match self.customers.find(customer_id) {
            Some(slot) => self.changes.mark(slot),
            None => self.changes.removed(customer_id, partition),
        }
    }

    /// What the service stores with `partition`'s offset commit at wall
    /// time `wall` (in the commit's metadata, say), to [`Engine::resume`]
    /// from. `None` while nothing was read from the partition.
    pub fn checkpoint(&self, partition: u32, wall: EventTime) -> Option<Checkpoint> {
        let max_seen = self.watermarks.partition_max_seen(partition)?;
        Some(Checkpoint {
            max_seen,
            committed_at: wall,
        })
    }

    /// `partition`'s state is being restored, its input paused: in
    /// `hybrid` mode it does not go idle meanwhile, so its restored
    /// customers keep waiting for its own time; see
    /// [`crate::engine::watermark::Watermarks::hold`]. Call it while the
    /// restore runs, more often than `time.idle_timeout`.
    pub fn hold(&mut self, partition: u32, wall: EventTime) {
        self.watermarks.hold(partition, wall);
    }

    /// Restored partitions continue from their checkpoints: each partition's
    /// watermark, and with it its customers' time, starts from the newest
    /// event time read up to its commit instead of from nothing, however
    /// far the instance's other partitions are, and in `hybrid` mode a
    /// stream that stays quiet counts the time since the commit; the
    /// funnel windows restored meanwhile take up where they were. Resume the partitions of one
    /// assignment in one call, after [`Engine::assign`] and the restores;
    /// see [`crate::engine::watermark::Watermarks::resume`]. Timers already
    /// due fire on the next call that takes input or time.
    pub fn resume(&mut self, checkpoints: impl IntoIterator<Item = (u32, Checkpoint)>) {
        let checkpoints: Vec<_> = checkpoints
            .into_iter()
            .filter(|(_, c)| c.max_seen != EventTime::MIN)
            .map(|(p, c)| (p, c.max_seen, c.committed_at))
            .collect();
        for &(partition, _, _) in &checkpoints {
            if !self.watermarks.is_assigned(partition) {
                self.lanes.restart(partition);
            }
        }
        self.watermarks.resume(checkpoints);
        self.lanes.recheck();
        self.funnel.settle_restored();
    }

    /// Erases customer `customer_id` (docs/erasure.md): their state, timer,
    /// de-duplication memory and buffered touchpoints are dropped, and the
    /// next [`Engine::take_dirty`] yields their tombstone. A later
    /// touchpoint starts a new journey, even one with a remembered event
    /// id. Returns whether the customer was held here.
    pub fn erase(&mut self, customer_id: &str) -> bool {
        let Some(slot) = self.customers.find(customer_id) else {
            return false;
        };
        let gone = self.discard(slot);
        self.changes.removed(&gone.id, u32::from(gone.partition));
        self.stats.erased += 1;
        true
    }

    /// Decides whether a touchpoint of the customer in `slot`, read at
    /// `offset` of `partition`, is to be processed, updating the fence (see
    /// the [`super`] docs). Whether its event id was applied before is
    /// decided when it is applied ([`crate::engine::dedupe`]).
    pub(in crate::engine) fn admit(&mut self, slot: Slot, partition: u32, offset: i64) -> bool {
        let tag = tag(partition);
        if self.customers.get(slot).partition != tag {
            self.move_customer(slot, tag);
        }
        let mut c = self.customers.get_mut(slot);
        if offset >= 0 && offset <= c.fence {
            // Ingested before: apply it only if it was still buffered then.
            let awaited = !self.replay.is_empty() && self.replay.take(slot, offset);
            if awaited {
                self.changes.mark(slot);
            }
            return awaited;
        }
        c.fence = c.fence.max(offset);
        if offset >= 0 && !self.replay.is_empty() {
            // Past the fence: whatever was awaited was not read again.
            self.stats.replay_missed += self.replay.forget(slot) as u64;
        }
        self.changes.mark(slot);
        true
    }

    /// The customer in `slot` now reads from partition `to` (a new
    /// customer, or one with touchpoints in a second input topic): the
    /// fence starts again and the timer moves to `to`'s lane.
    fn move_customer(&mut self, slot: Slot, to: u16) {
        let at = self.customers.get(slot).timer_at;
        let key = if at == EventTime::MAX {
            0
        } else {
            self.customers.timer_key(slot)
        };
        let from = u32::from(self.customers.get(slot).partition);
        // A running deadline moves too: the instance's sums stay.
        let c = self.customers.get(slot);
        journey::count_in_flight(&mut self.funnel, &self.rules, c, -1, None);
        self.customers.set_partition(slot, to);
        let c = self.customers.get(slot);
        journey::count_in_flight(&mut self.funnel, &self.rules, c, 1, None);
        self.customers.get_mut(slot).fence = -1;
        self.lanes
            .move_timer((from, u32::from(to)), (slot, key), at);
    }

    /// The slot for `id` with fresh words and no timer, keeping a held
    /// customer's buffered touchpoints.
    fn vacate(&mut self, id: &str) -> Slot {
        let (slot, created) = self.customers.find_or_insert(id);
        if !created {
            self.unfile_timer(slot);
            self.replay.forget(slot);
            let old = self.customers.reset(slot);
            self.customers.reset_words(slot);
            self.stats.record_removal(old.stage, old.band);
            journey::count_in_flight(&mut self.funnel, &self.rules, &old, -1, None);
        }
        slot
    }

    /// Removes the customer in `slot` with everything that refers to it;
    /// returns their final state.
    fn discard(&mut self, slot: Slot) -> Customer {
        let c = self.customers.get(slot);
        let (pending, own) = (c.pending as usize, u32::from(c.partition));
        if pending > 0 {
            // Their touchpoints wait in their own partition's buffer, unless
            // some came from another partition before they moved.
            let mut taken = self.lanes.extract_in(own, |e| e.slot != slot);
            if taken.len() < pending {
                taken.extend(self.lanes.extract(|e| e.slot != slot));
            }
            for e in taken {
                self.offsets.release(e.partition, e.offset);
            }
        }
        self.unfile_timer(slot);
        self.replay.forget(slot);
        let gone = self.customers.remove(slot);
        self.stats.record_removal(gone.stage, gone.band);
        journey::count_in_flight(&mut self.funnel, &self.rules, &gone, -1, None);
        gone
    }

    /// Files the customer's timer at its next due time in their
    /// partition's lane, to fire on the next call if that is behind the
    /// lane's frontier.
    pub(in crate::engine) fn file_timer(&mut self, slot: Slot) {
        let due = journey::next_due(
            self.customers.get(slot),
            self.customers.words(slot),
            &self.rules,
            &self.settings,
        );
        self.set_timer(slot, due);
    }

    fn unfile_timer(&mut self, slot: Slot) {
        self.set_timer(slot, EventTime::MAX);
    }

    pub(in crate::engine) fn set_timer(&mut self, slot: Slot, due: EventTime) {
        let key = self.customers.timer_key(slot);
        let mut c = self.customers.get_mut(slot);
        let lane = u32::from(c.partition);
        c.timer_at = self.lanes.reschedule(lane, (slot, key), c.timer_at, due);
    }
}
