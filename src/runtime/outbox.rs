//! The outbox: everything the pipeline writes, on its way to Kafka and
//! back as an acknowledgement.
//!
//! ```text
//! engine outputs ─► encode (codec::output) ─► topic by OutputKind ─► sink.send(id = tracker.sent())
//! dead letters (codec::dlq) ────────────────────────────────────────┘
//!                          delivery report ─► Outbox::drain ─► tracker.acked(id) / waiters
//!                          failed or refused ─► rejected.rs (re-send, dead-letter, or stop)
//! ```
//!
//! [`Outbox`] owns the producer ([`crate::sink::kafka::Sink`]) and its
//! delivery channel, the output encoder, the topic of every output kind,
//! and the commit tracker ([`super::acks`]), which numbers every record it
//! sends and settles it when Kafka acknowledges it: the commit mode
//! ([`super::commit`]) commits only what the tracker says is settled. A
//! record Kafka did not take is re-sent, dead-lettered or stops journeyd
//! ([`rejected`]); in exactly-once mode it aborts the transaction instead
//! ([`Failures::Abort`]). HTTP erasure requests wait here for their
//! record's fate ([`waiters`]).
//!
//! The key and value buffers are reused: sending a derived output
//! allocates only the delivery opaque the producer carries.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::clock::Stopwatch;
use crate::codec::dlq::DeadLetter;
use crate::codec::output::OutputEncoder;
use crate::config::Config;
use crate::http::{ErasureCommand, Forwarded};
use crate::model::{CustomerErased, ErasureSource, Output, OutputKind};
use crate::sink::OutputId;
use crate::sink::kafka::{Delivery, OutputMeta, OwnedRecord, Sink, owned_headers};
use crate::telemetry::Metrics;
use crate::telemetry::events::{InternalEvent, OutputDeliveryFailed};

use super::acks::CommitTracker;
use super::changelog::CommitMeta;
use super::partitions::PartitionMap;

pub(super) mod rejected;
pub(super) mod waiters;

use rejected::SizeLimits;
use waiters::Waiters;

/// What a record Kafka did not take leads to; the commit mode picks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failures {
    /// At-least-once: sent again, or what the error calls for
    /// ([`rejected`]).
    Resend,
    /// Exactly-once: the open transaction must abort (the commit mode
    /// takes [`Outbox::take_doomed`]); the rewind produces the record
    /// again.
    Abort,
}

/// The topics the outbox writes.
#[derive(Clone, Debug)]
struct Topics {
    /// Per [`OutputKind`], by [`OutputKind::index`].
    outputs: [String; OutputKind::COUNT],
    dlq: String,
    /// Where HTTP erasure requests are forwarded.
    erasure: String,
    /// `runtime.changelog_topic`: its records carry customers' state.
    changelog: String,
}

/// Records on their way to Kafka; see the module docs.
pub struct Outbox {
    pub(super) sink: Sink,
    deliveries: Receiver<Delivery>,
    encoder: OutputEncoder,
    /// Every record sent, until settled: what may be committed.
    pub(super) tracker: CommitTracker<CommitMeta>,
    topics: Topics,
    /// Per output topic, the record size it was seen to reject.
    size_limits: SizeLimits,
    failures: Failures,
    /// Exactly-once: a record of the open transaction was not taken (the
    /// first error), so the transaction must abort.
    doomed: Option<KafkaError>,
    /// HTTP erasure requests waiting for Kafka's acknowledgement.
    pub(super) waiters: Waiters,
    metrics: Arc<Metrics>,
    /// Reused buffers: record key, record value.
    key: Vec<u8>,
    value: Vec<u8>,
    /// Dead letters keep at most this many bytes of the original record.
    max_message_bytes: usize,
    /// Why nothing more can be delivered, once a record never can be; the
    /// driver stops on it.
    fatal: Option<String>,
}

impl Outbox {
    /// An outbox for `config`'s topics, sending through `sink`.
    pub(super) fn new(
        config: &Config,
        sink: Sink,
        deliveries: Receiver<Delivery>,
        encoder: OutputEncoder,
        metrics: Arc<Metrics>,
        failures: Failures,
    ) -> Outbox {
        let outputs = &config.outputs;
        Outbox {
            sink,
            deliveries,
            encoder,
            tracker: CommitTracker::default(),
            topics: Topics {
                outputs: OutputKind::EVERY.map(|kind| outputs.topic(kind).to_owned()),
                dlq: outputs.dlq.clone(),
                erasure: outputs.erasure.clone(),
                changelog: config.runtime.changelog_topic.clone(),
            },
            size_limits: SizeLimits::default(),
            failures,
            doomed: None,
            waiters: Waiters::new(failures == Failures::Abort),
            metrics,
            key: Vec::new(),
            value: Vec::new(),
            max_message_bytes: config.limits.max_message_bytes,
            fatal: None,
        }
    }

    /// Records sent and not yet settled.
    pub(super) fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }

    /// Why nothing more can be delivered, once that is so.
    pub(super) fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// The first error of a record of the open transaction that was not
    /// taken ([`Failures::Abort`]), taken.
    pub(super) fn take_doomed(&mut self) -> Option<KafkaError> {
        self.doomed.take()
    }

    /// Encodes and sends the engine's outputs, each to its kind's topic.
    pub(super) fn send_outputs(&mut self, outputs: &mut Vec<Output>, polled: Stopwatch) {
        for output in outputs.drain(..) {
            if let Output::FunnelWindow(window) = &output {
                self.metrics.observe_funnel_window(window);
            }
            let topic = &self.topics.outputs[output.kind().index()];
            self.encoder.key(&output, &mut self.key);
            self.encoder.encode(&output, &mut self.value);
            let id = self.tracker.sent();
            let meta = Box::new(OutputMeta {
                id,
                event_time: Some(output.event_time().0),
                polled,
            });
            let result = if self.size_limits.fits(topic, self.value.len()) {
                self.sink
                    .send(topic, Some(&self.key), &self.value, None, meta)
            } else {
                Err(KafkaError::MessageProduction(
                    RDKafkaErrorCode::MessageSizeTooLarge,
                ))
            };
            if let Err(error) = result {
                let record = OwnedRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: Some(self.key.clone()),
                    payload: Some(self.value.clone()),
                    headers: None,
                };
                self.refused(id, record, &error);
            }
        }
    }

    /// Sends the audit record of an erasure, keyed by `key` (the customer
    /// id).
    pub(super) fn send_erased(&mut self, record: &CustomerErased, key: &[u8], polled: Stopwatch) {
        self.encoder.encode_erased(record, &mut self.value);
        let topic = self.topics.outputs[OutputKind::Audit.index()].clone();
        self.send_value(&topic, key, polled);
    }

    /// Forwards an erasure requested over HTTP to the erasure topic; the
    /// requester hears back once Kafka acknowledges it (or, exactly-once,
    /// once its transaction commits).
    pub(super) fn forward_erasure(&mut self, command: ErasureCommand) {
        if !self.waiters.has_room() {
            let _ = command.reply.send(Forwarded::Busy);
            return;
        }
        crate::codec::erasure::encode_request(
            command.requested_at,
            ErasureSource::Http,
            &mut self.value,
        );
        let topic = self.topics.erasure.clone();
        let key = command.customer_id.as_bytes();
        match self.send_value(&topic, key, Stopwatch::start()) {
            Some(id) => self.waiters.wait(id, command.reply),
            None => {
                let _ = command.reply.send(Forwarded::Refused);
            }
        }
    }

    /// Sends `self.value` to `topic` under `key`, tracked for commits.
    /// Returns the output id, or `None` when the producer refused it.
    fn send_value(&mut self, topic: &str, key: &[u8], polled: Stopwatch) -> Option<OutputId> {
        let id = self.tracker.sent();
        let meta = Box::new(OutputMeta {
            id,
            event_time: None,
            polled,
        });
        match self.sink.send(topic, Some(key), &self.value, None, meta) {
            Ok(()) => Some(id),
            Err(error) => {
                let record = OwnedRecord {
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

    /// Sends a dead letter: the original bytes cut to
    /// `limits.max_message_bytes` (and to what the topic was seen to take),
    /// with the headers of [`crate::codec::dlq`].
    pub(super) fn send_dead_letter(&mut self, letter: &DeadLetter<'_>, polled: Stopwatch) {
        let limit = (self.size_limits.get(&self.topics.dlq))
            .map_or(self.max_message_bytes, |l| l.min(self.max_message_bytes));
        let record = letter.cut_to(limit);
        let headers = || owned_headers(record.headers().iter().map(|(k, v)| (*k, v.as_bytes())));
        let id = self.tracker.sent();
        let meta = Box::new(OutputMeta {
            id,
            event_time: None,
            polled,
        });
        let topic = self.topics.dlq.clone();
        if let Err(error) =
            (self.sink).send(&topic, letter.key, record.value, Some(headers()), meta)
        {
            // The headers went with the refused record; rebuilt only here.
            let record = OwnedRecord {
                topic,
                partition: None,
                key: letter.key.map(<[u8]>::to_vec),
                payload: Some(letter.original.to_vec()),
                headers: Some(owned_headers(
                    (letter.headers().iter()).map(|(k, v)| (*k, v.as_bytes())),
                )),
            };
            self.refused(id, record, &error);
        }
    }

    /// Applies the delivery reports: acks settle records (and answer HTTP
    /// waiters), failures are handled as [`rejected`] says. A changelog
    /// record of a partition `partitions` no longer owns is not sent again:
    /// another member owns its state now.
    pub(super) fn drain(&mut self, partitions: &PartitionMap) {
        while let Ok(delivery) = self.deliveries.try_recv() {
            self.apply(delivery, partitions);
        }
    }

    /// Waits up to `timeout` for one delivery report and applies it; the
    /// caller drains the rest.
    pub(super) fn await_delivery(&mut self, partitions: &PartitionMap, timeout: Duration) {
        if let Ok(delivery) = self.deliveries.recv_timeout(timeout) {
            self.apply(delivery, partitions);
        }
    }

    /// Applies one delivery report.
    fn apply(&mut self, delivery: Delivery, partitions: &PartitionMap) {
        match delivery {
            Delivery::Acked(id) => {
                self.tracker.acked(id);
                self.waiters.acked(id);
            }
            Delivery::Failed { meta, record, .. }
                if record.topic == self.topics.changelog
                    && !partitions.owns_number(record.partition.unwrap_or(-1)) =>
            {
                tracing::warn!(
                    partition = record.partition,
                    "A changelog record of a partition no longer assigned here failed; it is not sent again."
                );
                self.tracker.acked(meta.id);
            }
            Delivery::Failed {
                meta,
                record,
                error,
            } => self.not_taken(meta, record, &error),
        }
    }

    /// Waits for the producer's queue to empty (or `timeout`); the caller
    /// applies the delivery reports.
    pub(super) fn flush(&self, timeout: Duration) {
        if let Err(error) = self.sink.flush(timeout) {
            tracing::warn!(%error, "Not every record was delivered before the timeout.");
        }
    }

    /// The producer refused a record outright: not a full queue (that only
    /// waits) but an error such as a record larger than the producer
    /// accepts or a topic that does not exist. Counted in
    /// `journeyd_output_delivery_errors_total`, then handled as a failed
    /// delivery ([`rejected`]): never settled silently.
    fn refused(&mut self, id: OutputId, record: OwnedRecord, error: &KafkaError) {
        OutputDeliveryFailed {
            topic: &record.topic,
            error,
        }
        .emit(&self.metrics);
        let meta = Box::new(OutputMeta {
            id,
            event_time: None,
            polled: Stopwatch::start(),
        });
        self.not_taken(meta, record, error);
    }
}
