//! The processing core of `journeyd run`: one consumed record in, derived
//! records out, offsets committed only behind acknowledged outputs.
//!
//! [`Pipeline`] owns the engine, the commit tracker and the partition map.
//! The driver thread calls it between polls, and the consumer's rebalance
//! callbacks (which librdkafka runs inside `poll`, on the same thread) call
//! [`Pipeline::assign`] and [`Pipeline::revoke`].
//!
//! # Commit protocol (at-least-once)
//!
//! ```text
//! poll ─► decode ─► engine ─► outputs ─► sink.send(id = tracker.sent())
//!                                             │ delivery report
//!          every commit_interval:             ▼
//!          tracker.checkpoint(positions) ◄─ tracker.acked(id)
//!          tracker.committable() ─► consumer.commit(offsets)
//! ```
//!
//! A partition's position is the lowest offset still in the engine's reorder
//! buffer, or the next offset to read when nothing is buffered; it becomes
//! committable once every output sent before the checkpoint is acknowledged.
//! A crash therefore re-reads from a committed offset whose effects were all
//! delivered, and re-derives anything after it.
//!
//! # Topics
//!
//! Records are routed by topic ([`Route`]): touchpoints of an input topic
//! are decoded with its encoding; erasure requests (the erasure topic, read
//! by [`crate::source::erasure`]) erase the customer and publish the audit
//! record ([`erasure`]). Erasure partitions are committed like input
//! partitions, behind their audit records.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};

use crate::clock::Stopwatch;
use crate::codec::dlq::DeadLetter;
use crate::codec::output::{OutputEncoder, OutputKind, topic_kind};
use crate::codec::{Encoding, Invalid, Validator};
use crate::config::{Config, InputEncoding};
use crate::engine::Engine;
use crate::model::{EventTime, Output};
use crate::registry::SchemaSource;
use crate::runtime::acks::{CommitTracker, Position};
use crate::sink::kafka::{Delivery, OutputMeta, Sink, owned_headers};
use crate::telemetry::events::{InternalEvent, InvalidRecord};
use crate::telemetry::{ConsumedCounters, Metrics};

use super::partitions::PartitionMap;

mod erasure;

/// Topic names of the outputs.
#[derive(Clone, Debug)]
struct OutputTopics {
    stage_changes: String,
    churn_risk: String,
    funnel: String,
    dlq: String,
    audit: String,
    /// Read, and written by the HTTP endpoint's erasure requests.
    erasure: String,
    /// The input topic whose partitions the erasure partitions follow.
    primary: String,
}

/// What the records of a consumed topic are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Touchpoints in this encoding.
    Touchpoints(InputEncoding),
    /// Erasure requests ([`crate::codec::erasure`]).
    Erasure,
}

/// The processing core; see the module docs.
pub struct Pipeline {
    engine: Engine,
    tracker: CommitTracker,
    sink: Arc<Sink>,
    deliveries: Receiver<Delivery>,
    encoder: OutputEncoder,
    validator: Validator,
    schemas: SchemaSource,
    routes: HashMap<String, Route>,
    topics: OutputTopics,
    partitions: PartitionMap,
    metrics: Arc<Metrics>,
    consumed: ConsumedCounters,
    /// Reused buffers: derived outputs, record key, record value.
    outputs: Vec<Output>,
    key: Vec<u8>,
    value: Vec<u8>,
    committable: Vec<(u32, i64)>,
    /// Dead letters keep at most this many bytes of the original record.
    max_message_bytes: usize,
    /// HTTP erasure requests waiting for Kafka's acknowledgement.
    waiters: erasure::Waiters,
}

/// What the pipeline is built from.
pub struct PipelineParts {
    pub engine: Engine,
    pub sink: Arc<Sink>,
    pub deliveries: Receiver<Delivery>,
    pub encoder: OutputEncoder,
    pub schemas: SchemaSource,
    pub metrics: Arc<Metrics>,
    pub consumed: ConsumedCounters,
}

impl Pipeline {
    /// A pipeline for `config` from its parts.
    pub fn new(config: &Config, parts: PipelineParts) -> Pipeline {
        let outputs = &config.outputs;
        Pipeline {
            engine: parts.engine,
            tracker: CommitTracker::new(),
            sink: parts.sink,
            deliveries: parts.deliveries,
            encoder: parts.encoder,
            validator: Validator::new(config.time.max_future_skew, config.limits.max_message_bytes),
            schemas: parts.schemas,
            routes: config
                .inputs
                .iter()
                .map(|i| (i.topic.clone(), Route::Touchpoints(i.encoding)))
                .chain([(outputs.erasure.clone(), Route::Erasure)])
                .collect(),
            topics: OutputTopics {
                stage_changes: outputs.stage_changes.clone(),
                churn_risk: outputs.churn_risk.clone(),
                funnel: outputs.funnel.clone(),
                dlq: outputs.dlq.clone(),
                audit: outputs.audit.clone(),
                erasure: outputs.erasure.clone(),
                primary: config
                    .inputs
                    .first()
                    .map(|i| i.topic.clone())
                    .unwrap_or_default(),
            },
            partitions: PartitionMap::default(),
            metrics: parts.metrics,
            consumed: parts.consumed,
            outputs: Vec::new(),
            key: Vec::new(),
            value: Vec::new(),
            committable: Vec::new(),
            max_message_bytes: config.limits.max_message_bytes,
            waiters: erasure::Waiters::default(),
        }
    }

    /// The engine, for read-only questions (HTTP, metrics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Outputs sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }

    /// Processes one consumed record: a touchpoint, or an erasure request.
    /// A Confluent-framed record whose schema id is new waits for its
    /// registry look-up ([`SchemaSource::resolve`]).
    pub fn handle(&mut self, message: &BorrowedMessage<'_>, polled: Stopwatch, wall: EventTime) {
        let index = self.partitions.index(message.topic(), message.partition());
        self.partitions.consumed(index, message.offset());
        // Only subscribed topics arrive; JSON is the default encoding.
        let route = self.routes.get(message.topic()).copied();
        match route.unwrap_or(Route::Touchpoints(InputEncoding::Json)) {
            Route::Touchpoints(encoding) => {
                self.handle_touchpoint(message, index, encoding, polled, wall);
            }
            Route::Erasure => self.handle_erasure(message, polled, wall),
        }
    }

    fn handle_touchpoint(
        &mut self,
        message: &BorrowedMessage<'_>,
        index: u32,
        encoding: InputEncoding,
        polled: Stopwatch,
        wall: EventTime,
    ) {
        let payload = message.payload().unwrap_or_default();
        let encoding = match encoding {
            InputEncoding::Avro => Ok(Encoding::Avro),
            InputEncoding::Confluent => self
                .validator
                .check_size(payload.len())
                .and_then(|()| self.schemas.resolve(payload, wall))
                .map(Encoding::Confluent),
            InputEncoding::Json => Ok(Encoding::Json),
        };
        match encoding.and_then(|encoding| self.validator.decode(encoding, payload, wall)) {
            Ok(tp) => {
                let action = self.engine.rules().action_id(&tp.action);
                self.consumed.inc(message.topic(), action);
                let mut outputs = std::mem::take(&mut self.outputs);
                self.engine
                    .ingest_at(index, message.offset(), &tp, wall, &mut outputs);
                self.send_outputs(&mut outputs, polled);
                self.outputs = outputs;
            }
            Err(invalid) => self.reject(message, &invalid, polled),
        }
    }

    /// Counts a rejected record and sends it to the dead-letter topic.
    fn reject(&mut self, message: &BorrowedMessage<'_>, invalid: &Invalid, polled: Stopwatch) {
        InvalidRecord {
            reason: invalid.reason,
            detail: &invalid.detail,
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        }
        .emit(&self.metrics);
        let letter = DeadLetter {
            original: message.payload().unwrap_or_default(),
            key: message.key(),
            source_topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            reason: invalid.reason,
            detail: &invalid.detail,
        };
        self.send_dead_letter(&letter, polled);
    }

    /// Wall-clock progress with no record: idle partitions stop holding the
    /// watermark back and hybrid time moves on.
    pub fn tick(&mut self, wall: EventTime) {
        let mut outputs = std::mem::take(&mut self.outputs);
        self.engine.tick(wall, &mut outputs);
        self.send_outputs(&mut outputs, Stopwatch::start());
        self.outputs = outputs;
    }

    fn send_outputs(&mut self, outputs: &mut Vec<Output>, polled: Stopwatch) {
        for output in outputs.drain(..) {
            if let Output::FunnelWindow(window) = &output {
                self.metrics.observe_funnel_window(window);
            }
            let topic = match topic_kind(&output) {
                OutputKind::StageChanges => &self.topics.stage_changes,
                OutputKind::ChurnRisk => &self.topics.churn_risk,
                OutputKind::Funnel => &self.topics.funnel,
            };
            self.encoder.key(&output, &mut self.key);
            self.encoder.encode(&output, &mut self.value);
            let id = self.tracker.sent();
            let meta = Box::new(OutputMeta {
                id,
                event_time: Some(output.event_time().0),
                polled,
            });
            if let Err(error) = self
                .sink
                .send(topic, Some(&self.key), &self.value, None, meta)
            {
                let topic = topic.clone();
                self.refused(id, &topic, &error);
            }
        }
    }

    /// The producer refused a record outright: not a full queue (that only
    /// waits) but an error no retry fixes, such as a record larger than the
    /// broker accepts or a topic that does not exist. Such a record would
    /// hold every commit back for good, so it is logged at ERROR, counted in
    /// `journeyd_output_delivery_errors_total` (alert on it) and settled;
    /// the pipeline goes on. This is the one place an output can be lost,
    /// and only through a configuration error.
    fn refused(
        &mut self,
        id: crate::runtime::acks::OutputId,
        topic: &str,
        error: &rdkafka::error::KafkaError,
    ) {
        crate::telemetry::events::OutputDeliveryFailed { topic, error }.emit(&self.metrics);
        tracing::error!(%error, topic, "The producer refused a record; it is not delivered.");
        self.tracker.acked(id);
        self.waiters.refused(id);
    }

    /// Sends a dead letter: the original bytes (cut to
    /// `limits.max_message_bytes`, with headers saying so) and the headers
    /// of [`crate::codec::dlq`].
    fn send_dead_letter(&mut self, letter: &DeadLetter<'_>, polled: Stopwatch) {
        let values = letter.headers();
        let mut headers = owned_headers(values.iter().map(|(k, v)| (*k, v.as_bytes())));
        let original = letter.original;
        let kept = &original[..original.len().min(self.max_message_bytes)];
        if kept.len() < original.len() {
            let size = original.len().to_string();
            headers = headers
                .insert(rdkafka::message::Header {
                    key: "journeyd.original.truncated",
                    value: Some("true"),
                })
                .insert(rdkafka::message::Header {
                    key: "journeyd.original.size",
                    value: Some(&size),
                });
        }
        let id = self.tracker.sent();
        let meta = Box::new(OutputMeta {
            id,
            event_time: None,
            polled,
        });
        let topic = self.topics.dlq.clone();
        if let Err(error) = self
            .sink
            .send(&topic, letter.key, kept, Some(headers), meta)
        {
            self.refused(id, &topic, &error);
        }
    }

    /// Applies delivery reports: acks settle outputs, failures are re-sent.
    pub fn drain_deliveries(&mut self) {
        while let Ok(delivery) = self.deliveries.try_recv() {
            match delivery {
                Delivery::Acked(id) => {
                    self.tracker.acked(id);
                    self.waiters.acked(id);
                }
                Delivery::Failed { mut meta, record } => {
                    let failed = meta.id;
                    meta.id = self.tracker.resend(failed);
                    self.waiters.resent(failed, meta.id);
                    let key = record.key.as_deref();
                    if let Err(error) =
                        self.sink
                            .send(&record.topic, key, &record.payload, record.headers, meta)
                    {
                        tracing::error!(%error, topic = record.topic.as_str(), "Re-send could not be queued.");
                    }
                }
            }
        }
    }

    /// Takes a checkpoint of every partition and commits what has become
    /// committable (asynchronously, or synchronously with `mode`).
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, mode: CommitMode) {
        self.drain_deliveries();
        let positions: Vec<Position> = self
            .partitions
            .consumed_positions()
            .map(|(partition, next_offset)| Position {
                partition,
                next_offset,
                buffered_low: self.engine.buffered_low(partition),
            })
            .collect();
        self.tracker.checkpoint(positions);
        self.committable.clear();
        self.tracker.committable(&mut self.committable);
        if self.committable.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for &(index, offset) in &self.committable {
            if let Some((topic, partition)) = self.partitions.name(index) {
                let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
            }
        }
        if let Err(error) = consumer.commit(&list, mode) {
            tracing::warn!(%error, "Offset commit failed; it is retried at the next interval.");
        }
    }

    /// Partitions were assigned to this instance.
    pub fn assign(&mut self, list: &TopicPartitionList, wall: EventTime) {
        for element in list.elements() {
            let index = self.partitions.index(element.topic(), element.partition());
            self.engine.assign(index, wall);
        }
    }

    /// Partitions are being revoked: deliver everything in flight, commit
    /// their final positions (and those of the erasure partitions that
    /// follow them) synchronously, then drop their state.
    pub fn revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        flush_timeout: std::time::Duration,
    ) {
        if let Err(error) = self.sink.flush(flush_timeout) {
            tracing::warn!(%error, "Flushing outputs before a revocation timed out.");
        }
        self.commit(consumer, CommitMode::Sync);
        self.forget_followers(list);
        for element in list.elements() {
            let index = self.partitions.index(element.topic(), element.partition());
            let dropped = self.engine.revoke(index);
            self.tracker.forget_partition(index);
            self.partitions.revoked(index);
            tracing::debug!(
                topic = element.topic(),
                partition = element.partition(),
                customers = dropped,
                "Dropped a revoked partition's state."
            );
        }
    }

    /// Final flush and synchronous commit on shutdown.
    pub fn shutdown<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        timeout: std::time::Duration,
    ) {
        if let Err(error) = self.sink.flush(timeout) {
            tracing::warn!(%error, "Not every output was delivered before the shutdown timeout.");
        }
        self.commit(consumer, CommitMode::Sync);
    }
}
