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
//!   acknowledged the request record (`runtime/outbox/waiters.rs`).

use rdkafka::TopicPartitionList;
use rdkafka::message::{BorrowedMessage, Message};

use super::Pipeline;
use crate::clock::Stopwatch;
use crate::codec::erasure::ErasureRequest;
use crate::http::{ErasureCommand, Forwarded};
use crate::model::{CustomerErased, EventTime};
use crate::runtime::intake::Input;
use crate::telemetry::events::{CustomerErasure, InternalEvent};

impl Pipeline {
    /// A record of the erasure topic: erase, then publish the audit record.
    pub(super) fn handle_erasure(
        &mut self,
        message: &BorrowedMessage<'_>,
        polled: Stopwatch,
        wall: EventTime,
    ) {
        let request = match self.intake.decode_erasure(message) {
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
        (self.outbox).send_erased(&record, request.customer_id.as_bytes(), polled);
    }

    /// An erasure requested over HTTP: produced to the erasure topic; the
    /// requester hears back once Kafka acknowledges it.
    pub fn forward_erasure(&mut self, command: ErasureCommand) {
        if !self.may_send() {
            let _ = command.reply.send(Forwarded::Busy);
            return;
        }
        self.outbox.forward_erasure(command);
    }

    /// Input partitions of `list` are revoked: the erasure partitions that
    /// follow them are forgotten too (after the revocation's commit).
    pub(super) fn forget_followers(&mut self, list: &TopicPartitionList) {
        for element in list.elements() {
            if element.topic() != self.intake.primary() {
                continue;
            }
            let erasure = self.intake.erasure_topic();
            let index = self.partitions.index(erasure, element.partition());
            self.forget_commit(index);
            self.partitions.revoked(index);
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
