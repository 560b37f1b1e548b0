//! Which input offsets are still waiting in the reorder buffer, per partition.
//!
//! An input offset may be committed only once every touchpoint at or before
//! it has been processed, so the driver asks for the lowest offset still
//! buffered ([`BufferedOffsets::low`]) when it checkpoints. Offsets of one
//! partition arrive in increasing order and leave in event-time order, so
//! each partition keeps a queue of `(offset, released)` in arrival order:
//! releasing marks an entry (binary search) and pops released entries off
//! the front. Memory is bounded by the reorder buffer itself.

use std::collections::VecDeque;

/// Buffered offsets per partition.
#[derive(Debug, Default)]
pub struct BufferedOffsets {
    partitions: Vec<VecDeque<(i64, bool)>>,
}

impl BufferedOffsets {
    /// Nothing buffered.
    pub fn new() -> Self {
        BufferedOffsets::default()
    }

    fn queue(&mut self, partition: u32) -> &mut VecDeque<(i64, bool)> {
        let p = partition as usize;
        if self.partitions.len() <= p {
            self.partitions.resize_with(p + 1, VecDeque::new);
        }
        &mut self.partitions[p]
    }

    /// A touchpoint read at `offset` entered the buffer. Negative offsets
    /// (inputs without offsets, such as files) are not tracked.
    pub fn push(&mut self, partition: u32, offset: i64) {
        if offset < 0 {
            return;
        }
        let queue = self.queue(partition);
        match queue.back() {
            Some(&(last, _)) if last >= offset => {
                let at = queue.partition_point(|&(o, _)| o < offset);
                queue.insert(at, (offset, false));
            }
            _ => queue.push_back((offset, false)),
        }
    }

    /// The touchpoint read at `offset` left the buffer.
    pub fn release(&mut self, partition: u32, offset: i64) {
        if offset < 0 {
            return;
        }
        let queue = self.queue(partition);
        let at = queue.partition_point(|&(o, _)| o < offset);
        if let Some(entry) = queue.get_mut(at).filter(|e| e.0 == offset) {
            entry.1 = true;
        }
        while queue.front().is_some_and(|&(_, released)| released) {
            queue.pop_front();
        }
    }

    /// The lowest offset of `partition` still buffered.
    pub fn low(&self, partition: u32) -> Option<i64> {
        let queue = self.partitions.get(partition as usize)?;
        queue.front().map(|&(offset, _)| offset)
    }

    /// Forgets a partition (revoked).
    pub fn forget(&mut self, partition: u32) {
        if let Some(queue) = self.partitions.get_mut(partition as usize) {
            *queue = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_offset_waits_for_the_oldest_buffered_touchpoint() {
        let mut offsets = BufferedOffsets::new();
        for o in [10, 11, 12] {
            offsets.push(0, o);
        }
        offsets.push(1, 5);
        offsets.release(0, 11);
        assert_eq!(offsets.low(0), Some(10), "11 left first, 10 still holds");
        offsets.release(0, 10);
        assert_eq!(offsets.low(0), Some(12));
        offsets.release(0, 12);
        assert_eq!(offsets.low(0), None);
        assert_eq!(offsets.low(1), Some(5));
        offsets.forget(1);
        assert_eq!(offsets.low(1), None);
        assert_eq!(offsets.low(7), None);
    }

    #[test]
    fn untracked_offsets_are_ignored() {
        let mut offsets = BufferedOffsets::new();
        offsets.push(0, -1);
        assert_eq!(offsets.low(0), None);
        offsets.release(0, -1);
    }
}
