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
        c.partition = tag(partition);
        self.stats.record_restored(c.stage, c.band);
        self.stats.restored += 1;
        self.replay.set(slot, state.awaiting);
        self.file_timer(slot);
        self.changes.forget_removal(customer_id);
        Ok(())
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

    /// Restored partitions continue from their checkpoints: each partition's
    /// watermark starts from the newest event time read up to its commit
    /// instead of from nothing, and in `hybrid` mode a stream that stays
    /// quiet counts the time since the commit. Resume the partitions of one
    /// assignment in one call, after [`Engine::assign`] and the restores;
    /// see [`crate::engine::watermark::Watermarks::resume`]. Timers already
    /// due fire on the next call that takes input or time.
    pub fn resume(&mut self, checkpoints: impl IntoIterator<Item = (u32, Checkpoint)>) {
        let checkpoints = checkpoints
            .into_iter()
            .map(|(p, c)| (p, c.max_seen, c.committed_at));
        self.watermarks.resume(checkpoints);
        self.catch_up = true;
    }

    /// Erases customer `customer_id` (SPEC section 6): their state, timer,
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
    /// `offset` of `partition`, is to be processed, updating the fence and
    /// the de-duplication ring (see the [`super`] docs).
    pub(in crate::engine) fn admit(
        &mut self,
        slot: Slot,
        partition: u32,
        offset: i64,
        fingerprint: u64,
    ) -> bool {
        let tag = tag(partition);
        let mut c = self.customers.get_mut(slot);
        if offset >= 0 && c.partition == tag && offset <= c.fence {
            // Ingested before: apply it only if it was still buffered then.
            let awaited = !self.replay.is_empty() && self.replay.take(slot, offset);
            if awaited {
                self.changes.mark(slot);
            }
            return awaited;
        }
        if c.partition != tag {
            c.partition = tag;
            c.fence = -1;
        }
        c.fence = c.fence.max(offset);
        let fresh = c.remember(fingerprint, &self.rules.layout);
        if offset >= 0 && !self.replay.is_empty() {
            // Past the fence: whatever was awaited was not read again.
            self.stats.replay_missed += self.replay.forget(slot) as u64;
        }
        self.changes.mark(slot);
        fresh
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
        }
        slot
    }

    /// Removes the customer in `slot` with everything that refers to it;
    /// returns their final state.
    fn discard(&mut self, slot: Slot) -> Customer {
        if self.customers.get(slot).pending > 0 {
            for e in self.buffer.extract(|e| e.slot != slot) {
                self.offsets.release(e.partition, e.offset);
            }
        }
        self.unfile_timer(slot);
        self.replay.forget(slot);
        let gone = self.customers.remove(slot);
        self.stats.record_removal(gone.stage, gone.band);
        gone
    }

    /// Files the customer's timer at its next due time, to fire on the
    /// next call if that is behind the frontier.
    fn file_timer(&mut self, slot: Slot) {
        let due = journey::next_due(self.customers.get(slot), &self.rules, &self.settings);
        let key = self.customers.timer_key(slot);
        let mut c = self.customers.get_mut(slot);
        c.timer_at = self.timers.reschedule(slot, key, c.timer_at, due);
        self.catch_up |= due < self.frontier;
    }

    fn unfile_timer(&mut self, slot: Slot) {
        let key = self.customers.timer_key(slot);
        let mut c = self.customers.get_mut(slot);
        c.timer_at = self
            .timers
            .reschedule(slot, key, c.timer_at, EventTime::MAX);
    }
}
