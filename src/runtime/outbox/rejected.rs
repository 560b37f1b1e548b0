//! Records Kafka will not take, and what becomes of them.
//!
//! The producer refuses a record at once (`send` fails with anything but a
//! full queue), or its delivery fails after librdkafka's own retries. Either
//! way the error decides ([`Verdict`]):
//!
//! | Kafka says                                           | verdict    | what happens                                   |
//! |------------------------------------------------------|------------|------------------------------------------------|
//! | a transient error (leader moved, timed out, ...)     | `Retry`    | sent again (in exactly-once mode: the abort and rewind produce it again) |
//! | too large for the topic, or an invalid record        | `Rejected` | see below                                      |
//! | not authorised, no such topic, a fatal producer error | `Fatal`   | journeyd stops with the error, exit non-zero   |
//!
//! A rejected record teaches the outbox the topic's real limit
//! ([`SizeLimits`]): no record of that topic larger than half the rejected
//! one is sent again. A dead letter is cut to fit (with the
//! `journeyd.original.truncated` headers) and sent again; a derived event
//! or audit record goes to the dead-letter topic instead, with reason
//! `output_rejected` and its own bytes as the value; a customer's changelog
//! record cannot be made smaller, which is fatal (raise the changelog
//! topic's `max.message.bytes`). In exactly-once mode the failed delivery
//! aborts the transaction as any does; what the rewind produces again meets
//! the learned limit before it is sent, so the same record never aborts a
//! second transaction. Nothing is dropped silently, and no commit waits
//! for a record that can never be delivered.

use std::collections::HashMap;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::{Failures, Outbox};
use crate::clock::Stopwatch;
use crate::codec::InvalidReason;
use crate::codec::dlq::{DeadLetter, ORIGINAL_SIZE, ORIGINAL_TRUNCATED as TRUNCATED};
use crate::sink::OutputId;
use crate::sink::kafka::{Outgoing, OutputMeta, OwnedRecord};

/// What a record Kafka did not take calls for; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Send it again.
    Retry,
    /// This record can never be delivered as it is.
    Rejected,
    /// No record can be delivered: stop.
    Fatal,
}

/// The verdict on a producer error.
pub(super) fn verdict(error: &KafkaError) -> Verdict {
    use RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(
            Code::MessageSizeTooLarge
            | Code::InvalidMessageSize
            | Code::MessageBatchTooLarge
            | Code::InvalidRecord
            | Code::InvalidMessage
            | Code::PolicyViolation
            | Code::UnsupportedForMessageFormat,
        ) => Verdict::Rejected,
        Some(
            Code::TopicAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::UnknownTopic
            | Code::UnknownTopicOrPartition
            | Code::InvalidTopic
            | Code::InvalidRequiredAcks
            | Code::Fatal,
        ) => Verdict::Fatal,
        _ => Verdict::Retry,
    }
}

/// Per topic, the size above which a record is not sent any more, learned
/// from the records the topic rejected. Unknown topics have no limit here
/// (the producer's `message.max.bytes` still applies).
#[derive(Debug, Default)]
pub(super) struct SizeLimits {
    limits: HashMap<String, usize>,
}

impl SizeLimits {
    /// The learned limit of `topic`, if any.
    pub(super) fn get(&self, topic: &str) -> Option<usize> {
        self.limits.get(topic).copied()
    }

    /// `topic` rejected a record of `size` bytes: from now on records of
    /// it stay at or below half that (a halving converges in a few steps
    /// whatever the real limit, and headers and batch overhead count too).
    pub(super) fn rejected(&mut self, topic: &str, size: usize) -> usize {
        let limit = (size / 2).max(1);
        let slot = self.limits.entry(topic.to_owned()).or_insert(limit);
        *slot = (*slot).min(limit);
        *slot
    }

    /// Whether a record of `size` bytes fits what `topic` is known to take.
    pub(super) fn fits(&self, topic: &str, size: usize) -> bool {
        // Checked for every output: no hashing until a topic rejected one.
        self.limits.is_empty() || self.get(topic).is_none_or(|limit| size <= limit)
    }
}

impl Outbox {
    /// A record that failed for good or was refused: see the module docs.
    /// `record` is what was sent, `meta` its delivery opaque; its output id
    /// is settled here, or moved to the record sent again.
    pub(super) fn not_taken(
        &mut self,
        meta: Box<OutputMeta>,
        record: OwnedRecord,
        error: &KafkaError,
    ) {
        let id = meta.id;
        match verdict(error) {
            // Exactly-once: the transaction aborts, and the rewind
            // produces the record again.
            Verdict::Retry if self.failures == Failures::Abort => {
                self.doom_transaction(error);
                self.settle(id);
            }
            Verdict::Retry => self.resend(meta, record),
            Verdict::Rejected => {
                let size = record.payload.as_ref().map_or(0, Vec::len);
                let limit = self.size_limits.rejected(&record.topic, size);
                tracing::warn!(%error, topic = record.topic.as_str(), size, limit, "Kafka rejected a record as too large or invalid; records of this topic now stay within the limit.");
                if self.failures == Failures::Abort {
                    // The abort and rewind produce it again, within the limit.
                    self.doom_transaction(error);
                    self.settle(id);
                } else if record.topic == self.topics.changelog {
                    // Left unsettled: no offset is committed past it.
                    self.stop_with(format!(
                        "the changelog topic {} rejected a record of {size} bytes (a customer's state, or a partition's open funnel windows) ({error}): raise its max.message.bytes",
                        record.topic
                    ));
                } else if record.topic == self.topics.dlq {
                    self.settle(id);
                    self.resend_dead_letter(record);
                } else {
                    self.settle(id);
                    self.reject_output(&record, error);
                }
            }
            // Left unsettled: no offset is committed past it.
            Verdict::Fatal => {
                self.doom_transaction(error);
                self.stop_with(format!(
                    "Kafka refuses records for {}: {error}",
                    record.topic
                ));
            }
        }
    }

    /// A record of the open transaction was not taken: the transaction
    /// aborts at its commit (exactly-once; nothing in at-least-once mode).
    fn doom_transaction(&mut self, error: &KafkaError) {
        if self.failures == Failures::Abort {
            self.doomed.get_or_insert_with(|| error.clone());
        }
    }

    /// Settles an output that will not be delivered under its id.
    fn settle(&mut self, id: OutputId) {
        self.tracker.acked(id);
        self.waiters.refused(id);
    }

    /// Sends a record again under a new output id.
    fn resend(&mut self, mut meta: Box<OutputMeta>, record: OwnedRecord) {
        let failed = meta.id;
        meta.id = self.tracker.resend(failed);
        self.waiters.resent(failed, meta.id);
        let out = Outgoing {
            topic: &record.topic,
            partition: record.partition,
            key: record.key.as_deref(),
            payload: record.payload.as_deref(),
            headers: record.headers,
        };
        if let Err(error) = self.sink.send_record(out, meta) {
            self.stop_with(format!(
                "cannot queue a record for {} again: {error}",
                record.topic
            ));
        }
    }

    /// Sends a dead letter again, cut to the dead-letter topic's learned
    /// limit.
    fn resend_dead_letter(&mut self, mut record: OwnedRecord) {
        let limit = self.size_limits.get(&record.topic).unwrap_or(usize::MAX);
        if let Some(payload) = &mut record.payload {
            let size = payload.len();
            payload.truncate(limit);
            if payload.len() < size {
                record.headers = Some(truncated_headers(record.headers.take(), size));
            }
        }
        let meta = Box::new(OutputMeta {
            id: self.tracker.sent(),
            event_time: None,
            polled: Stopwatch::start(),
        });
        self.send_own(meta, record);
    }

    /// Sends a record under an id of its own (not a re-send of another).
    fn send_own(&mut self, meta: Box<OutputMeta>, record: OwnedRecord) {
        let out = Outgoing {
            topic: &record.topic,
            partition: record.partition,
            key: record.key.as_deref(),
            payload: record.payload.as_deref(),
            headers: record.headers.clone(),
        };
        let id = meta.id;
        if let Err(error) = self.sink.send_record(out, meta) {
            let meta = Box::new(OutputMeta {
                id,
                event_time: None,
                polled: Stopwatch::start(),
            });
            self.not_taken(meta, record, &error);
        }
    }

    /// A derived event (or audit record) its topic will not take goes to
    /// the dead-letter topic, with its own bytes.
    fn reject_output(&mut self, record: &OwnedRecord, error: &KafkaError) {
        let detail = format!(
            "{} does not take this record of {} bytes: {error}",
            record.topic,
            record.payload.as_ref().map_or(0, Vec::len)
        );
        let letter = DeadLetter {
            original: record.payload.as_deref().unwrap_or_default(),
            key: record.key.as_deref(),
            source_topic: &record.topic,
            partition: record.partition.unwrap_or(-1),
            offset: -1,
            reason: InvalidReason::OutputRejected,
            detail: &detail,
        };
        self.send_dead_letter(&letter, Stopwatch::start());
    }

    /// The pipeline cannot go on: the driver stops and journeyd exits
    /// non-zero with `reason`. The first reason is kept.
    pub(super) fn stop_with(&mut self, reason: String) {
        tracing::error!(
            reason = reason.as_str(),
            "Stopping: a record cannot be delivered."
        );
        self.fatal.get_or_insert(reason);
    }
}

/// `headers` with the two headers that say a dead letter's value was cut
/// from `size` bytes (replacing earlier ones).
fn truncated_headers(
    headers: Option<rdkafka::message::OwnedHeaders>,
    size: usize,
) -> rdkafka::message::OwnedHeaders {
    use rdkafka::message::{Header, Headers, OwnedHeaders};
    let size = size.to_string();
    let mut out = OwnedHeaders::new();
    for header in headers.iter().flat_map(|h| h.iter()) {
        if header.key != TRUNCATED && header.key != ORIGINAL_SIZE {
            out = out.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    out.insert(Header {
        key: TRUNCATED,
        value: Some("true"),
    })
    .insert(Header {
        key: ORIGINAL_SIZE,
        value: Some(&size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_what_can_fix_them() {
        let error = |code| KafkaError::MessageProduction(code);
        use RDKafkaErrorCode as Code;
        assert_eq!(
            verdict(&error(Code::MessageSizeTooLarge)),
            Verdict::Rejected
        );
        assert_eq!(verdict(&error(Code::InvalidRecord)), Verdict::Rejected);
        assert_eq!(
            verdict(&error(Code::TopicAuthorizationFailed)),
            Verdict::Fatal
        );
        assert_eq!(
            verdict(&error(Code::UnknownTopicOrPartition)),
            Verdict::Fatal
        );
        assert_eq!(verdict(&error(Code::MessageTimedOut)), Verdict::Retry);
        assert_eq!(verdict(&error(Code::NotLeaderForPartition)), Verdict::Retry);
    }

    #[test]
    fn a_limit_halves_the_largest_rejected_size_and_only_shrinks() {
        let mut limits = SizeLimits::default();
        assert!(limits.fits("dlq", 5 << 20));
        assert_eq!(limits.rejected("dlq", 1_200_000), 600_000);
        assert!(limits.fits("dlq", 600_000) && !limits.fits("dlq", 600_001));
        assert_eq!(limits.rejected("dlq", 2_000_000), 600_000);
        assert_eq!(limits.rejected("dlq", 600_000), 300_000);
        assert!(limits.fits("other", usize::MAX));
    }
}
