//! The processing core of `journeyd run`: one consumed record in, derived
//! records out, offsets committed only behind acknowledged outputs.
//!
//! [`Pipeline`] owns the engine, the commit tracker, the changelog writer,
//! the restorer and the partition map. The driver thread calls it between
//! polls, and the consumer's rebalance callbacks (which librdkafka runs
//! inside `poll`, on the same thread) call [`Pipeline::assign`] and
//! [`Pipeline::revoke`].
//!
//! # Commit protocol (at-least-once)
//!
//! ```text
//! poll ─► decode ─► engine ─► outputs ─► sink.send(id = tracker.sent())
//!                                             │ delivery report
//!          every commit_interval:             ▼
//!          capture drain D (changes,     tracker.acked(id)
//!            positions, barrier)              │ outputs before D acked
//!          send D's changelog records ◄───────┘
//!          tracker.checkpoint(positions) ◄─ D's records acked
//!          tracker.committable() ─► consumer.commit(offsets + checkpoints)
//! ```
//!
//! A partition's position is the lowest offset still in the engine's reorder
//! buffer, or the next offset to read when nothing is buffered; it becomes
//! committable once every output sent before it, and the changelog records
//! of the customers that changed before it, are acknowledged. A crash
//! therefore restores the state the committed offsets left behind (or a
//! later one) and re-reads from them; [`super::changelog`] says why that
//! neither loses nor repeats anything.
//!
//! # Exactly-once mode
//!
//! With `runtime.exactly_once = true` the same pieces run inside one Kafka
//! transaction per commit interval: the changelog drain is sent at once,
//! the positions go with the transaction, and a failed transaction rewinds
//! the pipeline to the last commit (see `pipeline/exactly_once.rs`).
//!
//! # Rebalances
//!
//! An assigned input partition is paused and restored from the changelog
//! ([`super::restore`]) while the others keep flowing. A revoked one is
//! settled first: outputs flushed, the final drain written and flushed,
//! offsets committed synchronously; only then are its customers dropped.
//!
//! # Topics
//!
//! Records are routed by topic ([`Route`]): touchpoints of an input topic
//! are decoded with its encoding (a Confluent-framed record whose schema
//! id is being looked up waits in its partition's queue, [`awaiting`],
//! with the records behind it); erasure requests (the erasure topic, read
//! by [`crate::source::erasure`]) erase the customer and publish the audit
//! record ([`erasure`]). Erasure partitions are committed like input
//! partitions, behind their audit records.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};

use crate::clock::Stopwatch;
use crate::codec::dlq::DeadLetter;
use crate::codec::output::OutputEncoder;
use crate::codec::{Encoding, Invalid, Validator};
use crate::config::{Config, InputEncoding};
use crate::engine::Engine;
use crate::model::{EventTime, Output, OutputKind};
use crate::registry::{Resolved, SchemaSource};
use crate::runtime::acks::{CommitTracker, Position};
use crate::sink::kafka::{Delivery, OutputMeta, OwnedRecord, Sink, owned_headers};
use crate::source::kafka::{PartitionOwner, Source};
use crate::telemetry::events::{InternalEvent, InvalidRecord};
use crate::telemetry::{ConsumedCounters, Metrics};

use super::changelog::{ChangelogWriter, CommitMeta, encode_checkpoint};
use super::partitions::PartitionMap;
use super::restore::Restorer;

mod awaiting;
mod erasure;
mod exactly_once;
mod rejected;

use awaiting::{Awaiting, Input};

use exactly_once::Transaction;

/// Topic names of the outputs.
#[derive(Clone, Debug)]
struct OutputTopics {
    /// Per [`OutputKind`], by [`OutputKind::index`].
    outputs: [String; OutputKind::COUNT],
    dlq: String,
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

/// Whether a record was dealt with or waits for its schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Processed or dead-lettered.
    Done,
    /// Its schema id is being looked up: it waits, and so do the records
    /// of its partition behind it.
    Wait,
}

/// The processing core; see the module docs.
pub struct Pipeline {
    engine: Engine,
    tracker: CommitTracker<CommitMeta>,
    /// Changed customers on their way to the changelog.
    changelog: ChangelogWriter,
    /// Assigned partitions on their way back from the changelog.
    restorer: Restorer,
    sink: Sink,
    deliveries: Receiver<Delivery>,
    encoder: OutputEncoder,
    validator: Validator,
    schemas: SchemaSource,
    /// Records waiting for the look-up of their schema id, per partition.
    awaiting: Awaiting,
    routes: HashMap<String, Route>,
    topics: OutputTopics,
    partitions: PartitionMap,
    metrics: Arc<Metrics>,
    consumed: ConsumedCounters,
    /// Reused buffers: derived outputs, record key, record value.
    outputs: Vec<Output>,
    key: Vec<u8>,
    value: Vec<u8>,
    /// Per partition, the newest committable offset and checkpoint: each
    /// commit sends them all, so that one a failed commit left behind is
    /// sent again even when no newer one follows.
    committable: Vec<(u32, i64, CommitMeta)>,
    /// A commit failed (a rebalance under way, the coordinator away): the
    /// next interval commits again.
    recommit: bool,
    positions: Vec<Position>,
    /// Dead letters keep at most this many bytes of the original record.
    max_message_bytes: usize,
    /// HTTP erasure requests waiting for Kafka's acknowledgement.
    waiters: erasure::Waiters,
    /// Exactly-once mode: the open transaction and what a rewind returns
    /// to; `None` in at-least-once mode.
    transaction: Option<Transaction>,
    /// Erasure partitions to seek back after a rewind: `(partition, offset)`.
    erasure_rewinds: Vec<(i32, i64)>,
    /// Per output topic, the record size it was seen to reject.
    size_limits: rejected::SizeLimits,
    /// Why the pipeline cannot go on, once a record can never be
    /// delivered; the driver stops on it.
    fatal: Option<String>,
}

/// What the pipeline is built from.
pub struct PipelineParts {
    pub engine: Engine,
    pub restorer: Restorer,
    pub sink: Sink,
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
        let mut engine = parts.engine;
        engine.track_changes(true);
        let exactly_once = config.runtime.exactly_once;
        let transaction = exactly_once.then(|| Transaction::new(engine.commit_point()));
        Pipeline {
            engine,
            tracker: CommitTracker::default(),
            changelog: ChangelogWriter::new(&config.runtime.changelog_topic),
            restorer: parts.restorer,
            sink: parts.sink,
            deliveries: parts.deliveries,
            encoder: parts.encoder,
            validator: Validator::from_config(config),
            schemas: parts.schemas,
            awaiting: Awaiting::new(config.schema_registry.max_held_bytes),
            routes: config
                .inputs
                .iter()
                .map(|i| (i.topic.clone(), Route::Touchpoints(i.encoding)))
                .chain([(outputs.erasure.clone(), Route::Erasure)])
                .collect(),
            topics: OutputTopics {
                outputs: OutputKind::EVERY.map(|kind| outputs.topic(kind).to_owned()),
                dlq: outputs.dlq.clone(),
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
            recommit: false,
            positions: Vec::new(),
            max_message_bytes: config.limits.max_message_bytes,
            waiters: erasure::Waiters::new(exactly_once),
            transaction,
            erasure_rewinds: Vec::new(),
            size_limits: rejected::SizeLimits::default(),
            fatal: None,
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

    /// Records waiting for schema look-ups, over all partitions.
    pub fn held_records(&self) -> usize {
        self.awaiting.len()
    }

    /// Whether some assigned partition still waits for its state.
    pub fn is_restoring(&self) -> bool {
        self.restorer.is_active()
    }

    /// Processes one consumed record: a touchpoint, or an erasure request.
    /// A Confluent-framed record whose schema id is new is held, with the
    /// records of its partition behind it, until its registry look-up ends
    /// ([`awaiting`], [`Pipeline::schemas_step`]). Returns `false`, leaving
    /// the record unread, when its partition's state is still being
    /// restored or its queue of held records is full (it is paused then,
    /// so that only happens if librdkafka had fetched before the pause),
    /// and for an erasure request while any restore runs (the customer it
    /// erases may be on its way in): the caller seeks back to it.
    pub fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        polled: Stopwatch,
        wall: EventTime,
    ) -> bool {
        let index = self.partitions.index(message.topic(), message.partition());
        // Only subscribed topics arrive; JSON is the default encoding.
        let route = (self.routes.get(message.topic()).copied())
            .unwrap_or(Route::Touchpoints(InputEncoding::Json));
        let waits = !self.may_send()
            || match route {
                Route::Touchpoints(_) => {
                    self.restorer.is_restoring(index) || self.awaiting.is_full(index)
                }
                Route::Erasure => self.restorer.is_active(),
            };
        if waits {
            return false;
        }
        self.partitions.consumed(index, message.offset());
        match route {
            Route::Touchpoints(encoding) => {
                self.handle_touchpoint(message, index, encoding, polled, wall);
            }
            Route::Erasure => self.handle_erasure(message, polled, wall),
        }
        true
    }

    fn handle_touchpoint(
        &mut self,
        message: &BorrowedMessage<'_>,
        index: u32,
        encoding: InputEncoding,
        polled: Stopwatch,
        wall: EventTime,
    ) {
        let input = Input::of(message);
        // Behind held records, a record waits its turn whatever its id.
        if self.awaiting.holds(index)
            || self.process(&input, index, encoding, polled, wall) == Step::Wait
        {
            self.awaiting.hold(index, &input, polled);
        }
    }

    /// Decodes a touchpoint and runs the engine on it, or dead-letters it;
    /// or, for a schema id being looked up, leaves it to wait.
    fn process(
        &mut self,
        input: &Input<'_>,
        index: u32,
        encoding: InputEncoding,
        polled: Stopwatch,
        wall: EventTime,
    ) -> Step {
        let payload = input.payload;
        let encoding = match encoding {
            InputEncoding::Avro => Ok(Encoding::Avro),
            InputEncoding::Confluent => match self
                .validator
                .check_size(payload.len())
                .and_then(|()| self.awaiting.failure(payload))
                .and_then(|()| self.schemas.try_resolve(payload, wall))
            {
                Ok(Resolved::Pending(_)) => return Step::Wait,
                Ok(Resolved::Ready(schemas)) => Ok(Encoding::Confluent(schemas)),
                Err(invalid) => Err(invalid),
            },
            InputEncoding::Json => Ok(Encoding::Json),
        };
        match encoding.and_then(|encoding| self.validator.decode(encoding, payload, wall)) {
            Ok(tp) => {
                let action = self.engine.rules().action_id(&tp.action);
                self.consumed.inc(input.topic, action);
                let mut outputs = std::mem::take(&mut self.outputs);
                let ingested = self
                    .engine
                    .ingest_at(index, input.offset, &tp, wall, &mut outputs);
                self.send_outputs(&mut outputs, polled);
                self.outputs = outputs;
                if let Some(invalid) = Invalid::not_ingested(ingested) {
                    self.reject(input, invalid, polled);
                }
            }
            Err(invalid) => self.reject(input, &invalid, polled),
        }
        Step::Done
    }

    /// Counts a rejected record and sends it to the dead-letter topic.
    fn reject(&mut self, input: &Input<'_>, invalid: &Invalid, polled: Stopwatch) {
        InvalidRecord {
            reason: invalid.reason,
            detail: &invalid.detail,
            topic: input.topic,
            partition: input.partition,
            offset: input.offset,
        }
        .emit(&self.metrics);
        let letter = DeadLetter {
            original: input.payload,
            key: input.key,
            source_topic: input.topic,
            partition: input.partition,
            offset: input.offset,
            reason: invalid.reason,
            detail: &invalid.detail,
        };
        self.send_dead_letter(&letter, polled);
    }

    /// Wall-clock progress with no record: idle partitions stop holding the
    /// watermark back and hybrid time moves on.
    pub fn tick(&mut self, wall: EventTime) {
        if !self.may_send() {
            return;
        }
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

    /// The producer refused a record outright: not a full queue (that only
    /// waits) but an error such as a record larger than the producer
    /// accepts or a topic that does not exist. Counted in
    /// `journeyd_output_delivery_errors_total`, then handled as a failed
    /// delivery ([`rejected`]): never settled silently.
    fn refused(
        &mut self,
        id: crate::runtime::acks::OutputId,
        record: OwnedRecord,
        error: &KafkaError,
    ) {
        crate::telemetry::events::OutputDeliveryFailed {
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

    /// Sends a dead letter: the original bytes (cut to
    /// `limits.max_message_bytes`, with headers saying so) and the headers
    /// of [`crate::codec::dlq`].
    fn send_dead_letter(&mut self, letter: &DeadLetter<'_>, polled: Stopwatch) {
        let values = letter.headers();
        let mut headers = owned_headers(values.iter().map(|(k, v)| (*k, v.as_bytes())));
        let original = letter.original;
        let limit = (self.size_limits.get(&self.topics.dlq))
            .map_or(self.max_message_bytes, |l| l.min(self.max_message_bytes));
        let kept = &original[..original.len().min(limit)];
        if kept.len() < original.len() {
            let size = original.len().to_string();
            headers = headers
                .insert(rdkafka::message::Header {
                    key: rejected::TRUNCATED,
                    value: Some("true"),
                })
                .insert(rdkafka::message::Header {
                    key: rejected::ORIGINAL_SIZE,
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
            // The headers went with the refused record; rebuilt only here.
            let headers = owned_headers(values.iter().map(|(k, v)| (*k, v.as_bytes())));
            let record = OwnedRecord {
                topic,
                partition: None,
                key: letter.key.map(<[u8]>::to_vec),
                payload: Some(original.to_vec()),
                headers: Some(headers),
            };
            self.refused(id, record, &error);
        }
    }

    /// Applies delivery reports (acks settle outputs, failures are re-sent),
    /// then sends the pending changelog drain if its barrier is settled.
    pub fn drain_deliveries(&mut self) {
        while let Ok(delivery) = self.deliveries.try_recv() {
            match delivery {
                Delivery::Acked(id) => {
                    self.tracker.acked(id);
                    self.waiters.acked(id);
                }
                // Another member owns that partition's state now.
                Delivery::Failed { meta, record, .. }
                    if record.topic == self.changelog.topic()
                        && !self.partitions.owns_number(record.partition.unwrap_or(-1)) =>
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
        if self.transaction.is_none() {
            self.changelog.send_ready(
                &mut self.tracker,
                &self.sink,
                &self.partitions,
                &self.metrics,
            );
        }
    }

    /// Once per commit interval: captures a changelog drain (unless one is
    /// still pending), sends it if it is ready, and commits what has become
    /// committable (asynchronously, or synchronously with `mode`), each
    /// offset with its checkpoint in the commit metadata.
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mode: CommitMode,
        wall: EventTime,
    ) {
        if self.transaction.is_some() {
            return self.commit_transaction(consumer, wall);
        }
        self.drain_deliveries();
        self.capture(wall);
        self.drain_deliveries();
        self.commit_committable(consumer, mode);
    }

    /// Captures a drain of the engine's changes with every read
    /// partition's position ([`ChangelogWriter::capture`]).
    fn capture(&mut self, wall: EventTime) {
        self.positions.clear();
        for (partition, next_offset) in self.partitions.consumed_positions() {
            // Records held for a schema look-up are not processed yet.
            let buffered_low = match (
                self.engine.buffered_low(partition),
                self.awaiting.low(partition),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.positions.push(Position {
                partition,
                next_offset,
                buffered_low,
            });
        }
        let barrier = self.tracker.next_id();
        let positions = self.positions.iter().copied();
        self.changelog
            .capture(&mut self.engine, positions, barrier, wall);
    }

    /// Commits every offset that has become committable.
    fn commit_committable<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mode: CommitMode,
    ) {
        let mut rose = false;
        let latest = &mut self.committable;
        self.tracker.committable_with(|partition, offset, meta| {
            rose = true;
            match latest.iter_mut().find(|(p, ..)| *p == partition) {
                Some(entry) => *entry = (partition, offset, meta),
                None => latest.push((partition, offset, meta)),
            }
        });
        if !(rose || self.recommit) || self.committable.is_empty() {
            return;
        }
        self.recommit = false;
        let list = offsets_list(&self.partitions, &self.committable);
        if let Err(error) = consumer.commit(&list, mode) {
            self.recommit = true;
            tracing::warn!(%error, "Offset commit failed; it is retried at the next interval.");
        }
    }

    /// An asynchronous offset commit failed (the consumer's commit
    /// callback): the next interval sends the newest offsets again.
    pub fn commit_failed(&mut self) {
        self.recommit = true;
    }

    /// Forgets the offset partition `index` would commit.
    fn forget_commit(&mut self, index: u32) {
        self.tracker.forget_partition(index);
        self.committable.retain(|(p, ..)| *p != index);
    }

    /// Reads the next batch of changelog records for partitions being
    /// restored at wall time `wall`, and resumes them when all are
    /// complete.
    pub fn restore_step<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        self.restorer
            .step(&mut self.engine, (&self.partitions, consumer), wall);
        for (index, offset) in self.restorer.take_resumed() {
            self.resumed_at(index, offset);
        }
    }

    /// Partitions were assigned to this instance: input partitions are
    /// paused until their state is restored from the changelog.
    pub fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        wall: EventTime,
    ) {
        let mut paused = TopicPartitionList::new();
        for element in list.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            let index = self.partitions.index(topic, partition);
            self.partitions.set_owned(index, true);
            self.engine.assign(index, wall);
            if matches!(self.routes.get(topic), Some(Route::Touchpoints(_))) {
                self.restorer.start(index, topic, partition);
                paused.add_partition(topic, partition);
            }
        }
        if paused.count() > 0
            && let Err(error) = consumer.pause(&paused)
        {
            // Records fetched anyway are handed back (`handle`) and read
            // again once the restore is complete.
            tracing::warn!(%error, "Cannot pause partitions while their state is restored.");
        }
    }

    /// Partitions are being revoked. Those still restoring are dropped at
    /// once. For the others: deliver everything in flight, write and
    /// deliver the final changelog drain, commit synchronously (with the
    /// erasure partitions that follow them), and only then drop their
    /// customers, timers and buffered touchpoints, which the next owner
    /// rebuilds from the changelog and the commit.
    pub fn revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        flush_timeout: std::time::Duration,
        wall: EventTime,
    ) {
        let mut settled = Vec::new();
        for element in list.elements() {
            let index = self.partitions.index(element.topic(), element.partition());
            if self.restorer.cancel(index) {
                self.drop_partition(index);
            } else {
                settled.push(index);
            }
        }
        if !settled.is_empty() {
            self.flush_and_commit(consumer, flush_timeout, wall);
        }
        self.forget_followers(list);
        for index in settled {
            // A failed transaction rewinds and restores every partition,
            // these included.
            self.restorer.cancel(index);
            self.drop_partition(index);
        }
    }

    /// Partitions were *lost*: the group gave them to another member while
    /// this one was cut off from it (it missed its session timeout: the
    /// process was frozen, starved or partitioned away), so the new owner
    /// may be writing their state already. Unlike [`Pipeline::revoke`],
    /// nothing of theirs is written any more: no flush, no changelog
    /// drain, no commit. A changelog record written now would land after
    /// the new owner's, win compaction and roll its customers back; an
    /// offset committed now would move the new owner's position back.
    /// Their customers, timers and buffered touchpoints are dropped, and
    /// changelog records of theirs that the producer reports failed are
    /// not sent again ([`Pipeline::drain_deliveries`]).
    ///
    /// In exactly-once mode the open transaction may hold their records:
    /// it is aborted, and the partitions still owned are rewound to the
    /// last commit as after any abort. (Records the producer had already
    /// sent in at-least-once mode cannot be called back; exactly-once mode
    /// is the one that fences a member that lost its partitions.)
    pub fn lose<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        wall: EventTime,
    ) {
        for element in list.elements() {
            let index = self.partitions.index(element.topic(), element.partition());
            self.restorer.cancel(index);
            self.drop_partition(index);
        }
        self.forget_followers(list);
        self.abort_after_loss(consumer, wall);
    }

    /// Forgets a revoked partition's customers, checkpoints, position and
    /// held records (the next owner reads them again).
    fn drop_partition(&mut self, index: u32) {
        self.awaiting.drop_partition(index);
        let dropped = self.engine.revoke(index);
        self.partitions.set_owned(index, false);
        self.forget_commit(index);
        self.changelog.forget_partition(index);
        self.partitions.revoked(index);
        self.forget_transaction_partition(index);
        if let Some((topic, partition)) = self.partitions.name(index) {
            tracing::debug!(
                topic,
                partition,
                customers = dropped,
                "Dropped a revoked partition's state."
            );
        }
    }

    /// Final flush, changelog drain and synchronous commit on shutdown.
    pub fn shutdown<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        timeout: std::time::Duration,
        wall: EventTime,
    ) {
        self.flush_and_commit(consumer, timeout, wall);
    }

    /// Delivers the outputs in flight, then the pending drain, then a
    /// final drain of every change so far, and commits synchronously; all
    /// within about `timeout`. When outputs are not delivered in time the
    /// newest state is not written and the commit stays where the
    /// delivered ones allow.
    fn flush_and_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        timeout: std::time::Duration,
        wall: EventTime,
    ) {
        if self.transaction.is_some() {
            // Committing a transaction delivers everything in it first.
            return self.commit_transaction(consumer, wall);
        }
        let clock = Stopwatch::start();
        let left = || timeout.saturating_sub(clock.elapsed());
        // Outputs, then the pending drain they held back.
        self.flush(left());
        self.flush(left());
        if self.changelog.is_pending() {
            tracing::warn!(
                "Outputs were not all delivered in time: the newest customer state is not                  written, and the commit stays behind it."
            );
        } else {
            self.capture(wall);
            self.drain_deliveries();
            self.flush(left());
        }
        self.commit_committable(consumer, CommitMode::Sync);
    }

    /// Waits for the producer's queue to empty (or `timeout`), then
    /// applies the delivery reports.
    fn flush(&mut self, timeout: std::time::Duration) {
        if let Err(error) = self.sink.flush(timeout) {
            tracing::warn!(%error, "Not every record was delivered before the timeout.");
        }
        self.drain_deliveries();
    }
}

/// The consumer's rebalance callbacks ([`crate::source::kafka`]) drive the
/// pipeline through this.
impl PartitionOwner for Pipeline {
    fn assign(&mut self, consumer: &Source, list: &TopicPartitionList, wall: EventTime) {
        Pipeline::assign(self, consumer, list, wall);
    }

    fn revoke(
        &mut self,
        consumer: &Source,
        list: &TopicPartitionList,
        flush_timeout: std::time::Duration,
        wall: EventTime,
    ) {
        Pipeline::revoke(self, consumer, list, flush_timeout, wall);
    }

    fn lose(&mut self, consumer: &Source, list: &TopicPartitionList, wall: EventTime) {
        Pipeline::lose(self, consumer, list, wall);
    }

    fn commit_failed(&mut self) {
        Pipeline::commit_failed(self);
    }

    fn take_erasure_rewinds(&mut self) -> Vec<(i32, i64)> {
        Pipeline::take_erasure_rewinds(self)
    }
}

/// Offsets to commit, `(engine partition, offset, checkpoint)`, as Kafka
/// wants them: by topic and partition, each checkpoint in the metadata.
fn offsets_list(
    partitions: &PartitionMap,
    offsets: &[(u32, i64, CommitMeta)],
) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for &(index, offset, checkpoint) in offsets {
        let Some((topic, partition)) = partitions.name(index) else {
            continue;
        };
        let mut element = list.add_partition(topic, partition);
        if element.set_offset(Offset::Offset(offset)).is_err() {
            continue;
        }
        if let Some(checkpoint) = checkpoint {
            element.set_metadata(encode_checkpoint(&checkpoint));
        }
    }
    list
}
