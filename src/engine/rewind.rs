//! Going back to the last committed transaction (exactly-once mode).
//!
//! When a transaction aborts, none of its outputs, changelog records or
//! offsets become visible, so the engine must forget what it did since
//! the last commit. Per partition that is done by dropping the partitions'
//! customers and their shares of the open funnel windows, and restoring
//! them from the changelog, which a `read_committed` read shows as of the
//! last commit. What is not per partition (which funnel windows the
//! instance has emitted, the watermarks and each partition's processing
//! frontier) is kept in a [`CommitPoint`] taken at every commit, and put
//! back by [`Engine::rewind`]; the point holds the funnel shares too, the
//! same as the changelog's. Reading the input again from the committed
//! offsets then derives the same events as the aborted transaction: same
//! sequences, same content, the same funnel windows with the same counts.

use super::Engine;
use super::funnel::Funnel;
use super::watermark::Watermarks;
use crate::model::EventTime;

/// The instance-wide state of the engine at a commit: what is not kept
/// per customer.
#[derive(Clone, Debug)]
pub struct CommitPoint {
    funnel: Funnel,
    watermarks: Watermarks,
    /// Each partition's lane frontier, by partition number.
    frontiers: Vec<EventTime>,
}

impl CommitPoint {
    /// `partition` was revoked after the commit: a rewind must not bring
    /// it back into the watermark, and it starts afresh when assigned again.
    pub fn revoke(&mut self, partition: u32) {
        self.watermarks.revoke(partition);
        self.funnel.drop_part(partition);
        if let Some(frontier) = self.frontiers.get_mut(partition as usize) {
            *frontier = EventTime::MIN;
        }
    }
}

impl Engine {
    /// The instance-wide state as it is now; take it right after a commit.
    pub fn commit_point(&self) -> CommitPoint {
        CommitPoint {
            funnel: self.funnel.clone(),
            watermarks: self.watermarks.clone(),
            frontiers: self.lanes.frontiers(),
        }
    }

    /// Forgets everything done since `point`: the customers, timers and
    /// buffered touchpoints of `partitions` (every partition this engine
    /// reads) are dropped, as [`Engine::revoke`] drops them, and the funnel
    /// windows, watermarks and the partitions' frontiers return to `point`. The caller then
    /// restores the partitions' customers from the changelog and reads
    /// their input again from the committed offsets. Returns the customers
    /// dropped.
    pub fn rewind(&mut self, point: &CommitPoint, partitions: &[u32]) -> usize {
        let dropped = partitions.iter().map(|&p| self.revoke(p)).sum();
        let mut funnel = point.funnel.clone();
        // The counts of deadlines running follow the customers held, not
        // the point: those kept, and those the restore brings back.
        funnel.count_in_flight_as(&self.funnel);
        self.funnel = funnel;
        self.watermarks = point.watermarks.clone();
        for &partition in partitions {
            let frontier = point.frontiers.get(partition as usize).copied();
            self.lanes
                .rewind(partition, frontier.unwrap_or(EventTime::MIN));
        }
        dropped
    }
}
