//! HTTP erasure requests waiting for Kafka to store their record
//! (README "Guarantees"): the outbox answers them as delivery reports,
//! and in exactly-once mode transaction outcomes, come in.

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use crate::http::Forwarded;
use crate::sink::OutputId;

/// HTTP requests waiting for acknowledgement, at most; more are answered
/// [`Forwarded::Busy`] without being produced.
const MAX_WAITERS: usize = 1024;

/// HTTP erasure requests produced to the erasure topic and not yet
/// acknowledged, by the output id of their record. In exactly-once mode an
/// acknowledged record is not stored until its transaction commits: its
/// requester waits in `held` until then, and hears
/// [`Forwarded::Busy`] (503, retry) if the transaction aborts.
#[derive(Debug, Default)]
pub(in crate::runtime) struct Waiters {
    by_id: BTreeMap<OutputId, oneshot::Sender<Forwarded>>,
    /// Whether acknowledged records wait for their transaction's commit.
    transactional: bool,
    /// Acknowledged in the open transaction.
    held: Vec<oneshot::Sender<Forwarded>>,
}

impl Waiters {
    /// Waiters whose records are stored once acknowledged, or (exactly-once
    /// mode) once their transaction commits.
    pub(in crate::runtime) fn new(transactional: bool) -> Waiters {
        Waiters {
            transactional,
            ..Waiters::default()
        }
    }

    /// `reply` hears the fate of output `id`.
    pub(in crate::runtime) fn wait(&mut self, id: OutputId, reply: oneshot::Sender<Forwarded>) {
        self.by_id.insert(id, reply);
    }

    /// Output `id` was acknowledged.
    pub(in crate::runtime) fn acked(&mut self, id: OutputId) {
        if !self.transactional {
            return self.answer(id, Forwarded::Stored);
        }
        if let Some(reply) = self.by_id.remove(&id) {
            self.held.push(reply);
        }
    }

    /// The open transaction committed: its acknowledged records are stored.
    pub(in crate::runtime) fn committed(&mut self) {
        for reply in self.held.drain(..) {
            let _ = reply.send(Forwarded::Stored);
        }
    }

    /// The open transaction aborted: none of its records is stored, and
    /// every request still waiting is told to try again.
    pub(in crate::runtime) fn aborted(&mut self) {
        let waiting = std::mem::take(&mut self.by_id).into_values();
        for reply in self.held.drain(..).chain(waiting) {
            let _ = reply.send(Forwarded::Busy);
        }
    }

    /// Output `id` was refused by the producer.
    pub(in crate::runtime) fn refused(&mut self, id: OutputId) {
        self.answer(id, Forwarded::Refused);
    }

    /// Output `failed` is sent again as `id`.
    pub(in crate::runtime) fn resent(&mut self, failed: OutputId, id: OutputId) {
        if let Some(reply) = self.by_id.remove(&failed) {
            self.by_id.insert(id, reply);
        }
    }

    fn answer(&mut self, id: OutputId, answer: Forwarded) {
        if let Some(reply) = self.by_id.remove(&id) {
            // The requester may have given up (timeout): nothing to do.
            let _ = reply.send(answer);
        }
    }

    /// Whether another request may wait; forgets requesters that gave up.
    pub(in crate::runtime) fn has_room(&mut self) -> bool {
        if self.by_id.len() + self.held.len() >= MAX_WAITERS {
            self.by_id.retain(|_, reply| !reply.is_closed());
            self.held.retain(|reply| !reply.is_closed());
        }
        self.by_id.len() + self.held.len() < MAX_WAITERS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_hear_the_fate_of_their_record() {
        let mut waiters = Waiters::default();
        let (stored, mut stored_rx) = oneshot::channel();
        let (refused, mut refused_rx) = oneshot::channel();
        waiters.by_id.insert(3, stored);
        waiters.by_id.insert(4, refused);
        waiters.resent(3, 9);
        waiters.acked(3);
        assert!(stored_rx.try_recv().is_err(), "3 was re-sent as 9");
        waiters.acked(9);
        assert_eq!(stored_rx.try_recv(), Ok(Forwarded::Stored));
        waiters.refused(4);
        assert_eq!(refused_rx.try_recv(), Ok(Forwarded::Refused));
        assert!(waiters.by_id.is_empty());
    }

    #[test]
    fn transactional_waiters_hear_back_when_the_transaction_ends() {
        let mut waiters = Waiters::new(true);
        let (committed, mut committed_rx) = oneshot::channel();
        let (aborted, mut aborted_rx) = oneshot::channel();
        let (unacked, mut unacked_rx) = oneshot::channel();
        waiters.by_id.insert(1, committed);
        waiters.acked(1);
        assert!(
            committed_rx.try_recv().is_err(),
            "acknowledged, not committed"
        );
        waiters.committed();
        assert_eq!(committed_rx.try_recv(), Ok(Forwarded::Stored));
        waiters.by_id.insert(2, aborted);
        waiters.by_id.insert(3, unacked);
        waiters.acked(2);
        waiters.aborted();
        assert_eq!(aborted_rx.try_recv(), Ok(Forwarded::Busy));
        assert_eq!(unacked_rx.try_recv(), Ok(Forwarded::Busy));
        assert!(waiters.by_id.is_empty() && waiters.held.is_empty());
    }

    #[test]
    fn waiters_are_bounded_and_forget_who_gave_up() {
        let mut waiters = Waiters::default();
        let mut kept = Vec::new();
        for id in 0..MAX_WAITERS as OutputId {
            let (reply, answer) = oneshot::channel();
            waiters.by_id.insert(id, reply);
            if id % 2 == 0 {
                kept.push(answer);
            }
        }
        assert!(waiters.has_room(), "the half that gave up made room");
        assert_eq!(waiters.by_id.len(), MAX_WAITERS / 2);
        for id in MAX_WAITERS as OutputId..(MAX_WAITERS * 2) as OutputId {
            let (reply, answer) = oneshot::channel();
            waiters.by_id.insert(id, reply);
            kept.push(answer);
        }
        assert!(!waiters.has_room());
    }
}
