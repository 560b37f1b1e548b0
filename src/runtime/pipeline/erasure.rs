//! Erasure in the pipeline (docs/erasure.md).
//!
//! - A request read from the erasure topic erases the customer from the
//!   engine (memory, timers, de-duplication memory, buffered touchpoints;
//!   the changelog tombstone follows with the engine's next drain) and
//!   publishes [`CustomerErased`] on the audit topic, keyed by customer id,
//!   whether or not the customer was held here. The request's offset is
//!   committed like an input offset: only once the audit record (and every
//!   output sent before it) is acknowledged. A malformed request goes to
//!   the dead-letter topic.
//! - A request made over HTTP ([`ErasureCommand`]) is not carried out
//!   here: it is produced to the erasure topic, keyed by customer id, so
//!   that it reaches the instance that owns the customer's partition, which
//!   may be this one. The HTTP side is answered once Kafka has
//!   acknowledged the request record ([`Waiters`]).

use std::collections::BTreeMap;

use rdkafka::TopicPartitionList;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::oneshot;

use super::Pipeline;
use super::awaiting::Input;
use crate::clock::Stopwatch;
use crate::codec::erasure::{self, ErasureRequest};
use crate::http::{ErasureCommand, Forwarded};
use crate::model::{CustomerErased, ErasureSource, EventTime, OutputKind};
use crate::runtime::acks::OutputId;
use crate::sink::kafka::OutputMeta;
use crate::telemetry::events::{CustomerErasure, InternalEvent};

/// HTTP requests waiting for acknowledgement, at most; more are answered
/// [`Forwarded::Busy`] without being produced.
const MAX_WAITERS: usize = 1024;

/// HTTP erasure requests produced to the erasure topic and not yet
/// acknowledged, by the output id of their record. In exactly-once mode an
/// acknowledged record is not stored until its transaction commits: its
/// requester waits in `held` until then, and hears
/// [`Forwarded::Busy`] (503, retry) if the transaction aborts.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    by_id: BTreeMap<OutputId, oneshot::Sender<Forwarded>>,
    /// Whether acknowledged records wait for their transaction's commit.
    transactional: bool,
    /// Acknowledged in the open transaction.
    held: Vec<oneshot::Sender<Forwarded>>,
}

impl Waiters {
    /// Waiters whose records are stored once acknowledged, or (exactly-once
    /// mode) once their transaction commits.
    pub(super) fn new(transactional: bool) -> Waiters {
        Waiters {
            transactional,
            ..Waiters::default()
        }
    }

    /// Output `id` was acknowledged.
    pub(super) fn acked(&mut self, id: OutputId) {
        if !self.transactional {
            return self.answer(id, Forwarded::Stored);
        }
        if let Some(reply) = self.by_id.remove(&id) {
            self.held.push(reply);
        }
    }

    /// The open transaction committed: its acknowledged records are stored.
    pub(super) fn committed(&mut self) {
        for reply in self.held.drain(..) {
            let _ = reply.send(Forwarded::Stored);
        }
    }

    /// The open transaction aborted: none of its records is stored, and
    /// every request still waiting is told to try again.
    pub(super) fn aborted(&mut self) {
        let waiting = std::mem::take(&mut self.by_id).into_values();
        for reply in self.held.drain(..).chain(waiting) {
            let _ = reply.send(Forwarded::Busy);
        }
    }

    /// Output `id` was refused by the producer.
    pub(super) fn refused(&mut self, id: OutputId) {
        self.answer(id, Forwarded::Refused);
    }

    /// Output `failed` is sent again as `id`.
    pub(super) fn resent(&mut self, failed: OutputId, id: OutputId) {
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
    fn has_room(&mut self) -> bool {
        if self.by_id.len() + self.held.len() >= MAX_WAITERS {
            self.by_id.retain(|_, reply| !reply.is_closed());
            self.held.retain(|reply| !reply.is_closed());
        }
        self.by_id.len() + self.held.len() < MAX_WAITERS
    }
}

impl Pipeline {
    /// A record of the erasure topic: erase, then publish the audit record.
    pub(super) fn handle_erasure(
        &mut self,
        message: &BorrowedMessage<'_>,
        polled: Stopwatch,
        wall: EventTime,
    ) {
        let payload = message.payload().unwrap_or_default();
        let decoded = self
            .validator
            .check_size(payload.len())
            .and_then(|()| erasure::decode(message.key(), payload));
        let request = match decoded {
            Ok(request) => request,
            Err(invalid) => return self.reject(&Input::of(message), &invalid, polled),
        };
        let state_found = self.engine.erase(request.customer_id);
        CustomerErasure {
            source: request.source,
            state_found,
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        }
        .emit(&self.metrics);
        let record = CustomerErased {
            customer_id: request.customer_id.into(),
            requested_at: requested_at(&request, message, wall).millis(),
            completed_at: wall.millis(),
            source: request.source,
            state_found,
        };
        self.encoder.encode_erased(&record, &mut self.value);
        let topic = self.topics.outputs[OutputKind::Audit.index()].clone();
        self.send_record(&topic, request.customer_id.as_bytes(), polled);
    }

    /// An erasure requested over HTTP: produced to the erasure topic; the
    /// requester hears back once Kafka acknowledges it.
    pub fn forward_erasure(&mut self, command: ErasureCommand) {
        if !self.may_send() || !self.waiters.has_room() {
            let _ = command.reply.send(Forwarded::Busy);
            return;
        }
        erasure::encode_request(command.requested_at, ErasureSource::Http, &mut self.value);
        let topic = self.topics.erasure.clone();
        if let Some(id) =
            self.send_record(&topic, command.customer_id.as_bytes(), Stopwatch::start())
        {
            self.waiters.by_id.insert(id, command.reply);
        } else {
            let _ = command.reply.send(Forwarded::Refused);
        }
    }

    /// Sends `self.value` to `topic` under `key`, tracked for commits.
    /// Returns the output id, or `None` when the producer refused it.
    fn send_record(&mut self, topic: &str, key: &[u8], polled: Stopwatch) -> Option<OutputId> {
        let id = self.tracker.sent();
        let meta = Box::new(OutputMeta {
            id,
            event_time: None,
            polled,
        });
        match self.sink.send(topic, Some(key), &self.value, None, meta) {
            Ok(()) => Some(id),
            Err(error) => {
                let record = crate::sink::kafka::OwnedRecord {
                    topic: topic.to_owned(),
                    partition: None,
                    key: Some(key.to_vec()),
                    payload: Some(self.value.clone()),
                    headers: None,
                };
                self.refused(id, record, &error);
                None
            }
        }
    }

    /// Input partitions of `list` are revoked: the erasure partitions that
    /// follow them are forgotten too (after the revocation's commit).
    pub(super) fn forget_followers(&mut self, list: &TopicPartitionList) {
        for element in list.elements() {
            if element.topic() != self.topics.primary {
                continue;
            }
            let index = self
                .partitions
                .index(&self.topics.erasure, element.partition());
            self.forget_commit(index);
            self.partitions.revoked(index);
            self.forget_transaction_partition(index);
        }
    }
}

/// The request's own time, else the record's Kafka timestamp, else now.
fn requested_at(
    request: &ErasureRequest<'_>,
    message: &BorrowedMessage<'_>,
    wall: EventTime,
) -> EventTime {
    request
        .requested_at
        .or_else(|| message.timestamp().to_millis().map(EventTime))
        .unwrap_or(wall)
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
