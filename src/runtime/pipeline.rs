//! The processing core of `journeyd run`: one consumed record in, derived
//! records out, offsets committed only behind acknowledged outputs
//! (docs/architecture.md walks one record through it).
//!
//! [`Pipeline`] puts four parts together and owns the state they share:
//!
//! - the [`Intake`] routes a consumed record by topic and decodes it (or
//!   describes its dead letter), holding Confluent-framed records whose
//!   schema is being looked up ([`super::intake`]);
//! - the engine turns touchpoints and time into derived outputs;
//! - the [`Outbox`] encodes and sends them, and applies the delivery
//!   reports to the commit tracker ([`super::outbox`]);
//! - the commit [`Mode`] (at-least-once or transactional) captures the
//!   changelog drains and commits what has been acknowledged
//!   ([`super::commit`]).
//!
//! Beside them it owns the changelog writer, the restorer and the
//! partition map. The driver thread calls it between polls, and the
//! consumer's rebalance callbacks (which librdkafka runs inside `poll`, on
//! the same thread) call it through [`crate::source::kafka::PartitionOwner`]
//! (`pipeline/rebalance.rs`).
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
//! Touchpoints of an input topic are decoded with its encoding (a
//! Confluent-framed record whose schema id is being looked up waits in its
//! partition's queue, with the records behind it); erasure requests (the
//! erasure topic, read by [`crate::source::erasure`]) erase the customer and
//! publish the audit record (`pipeline/erasure.rs`). Erasure partitions are
//! committed like input partitions, behind their audit records.

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use rdkafka::message::{BorrowedMessage, Message};

use crate::clock::Stopwatch;
use crate::codec::Invalid;
use crate::codec::output::OutputEncoder;
use crate::config::{Config, InputEncoding};
use crate::engine::Engine;
use crate::http::Holding;
use crate::model::{EventTime, Output};
use crate::registry::SchemaSource;
use crate::sink::kafka::{Delivery, Sink};
use crate::telemetry::{ConsumedCounters, Metrics};

use super::acks::Position;
use super::changelog::ChangelogWriter;
use super::commit::Mode;
use super::intake::{Decoded, Input, Intake, Route};
use super::outbox::Outbox;
use super::partitions::PartitionMap;
use super::restore::Restorer;

mod erasure;
mod held;
mod rebalance;

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
    pub(super) engine: Engine,
    /// Consumed records in: routes, decoding, held records.
    pub(super) intake: Intake,
    /// Records out, and their acknowledgements.
    pub(super) outbox: Outbox,
    /// At-least-once or transactional commits.
    pub(super) mode: Mode,
    /// Changed customers on their way to the changelog.
    pub(super) changelog: ChangelogWriter,
    /// Assigned partitions on their way back from the changelog.
    pub(super) restorer: Restorer,
    pub(super) partitions: PartitionMap,
    pub(super) metrics: Arc<Metrics>,
    /// Reused buffer of derived outputs.
    outputs: Vec<Output>,
    /// Reused: every read partition's position at the last capture.
    pub(super) positions: Vec<Position>,
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
        let mut engine = parts.engine;
        engine.track_changes(true);
        let mode = Mode::new(config, &engine);
        let outbox = Outbox::new(
            config,
            parts.sink,
            parts.deliveries,
            parts.encoder,
            parts.metrics.clone(),
            mode.failures(),
        );
        let intake = Intake::new(config, parts.schemas, parts.consumed, parts.metrics.clone());
        Pipeline {
            engine,
            intake,
            outbox,
            mode,
            changelog: ChangelogWriter::new(&config.runtime.changelog_topic),
            restorer: parts.restorer,
            partitions: PartitionMap::default(),
            metrics: parts.metrics,
            outputs: Vec::new(),
            positions: Vec::new(),
        }
    }

    /// The engine, for read-only questions (HTTP, metrics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Outputs sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.outbox.in_flight()
    }

    /// Records waiting for schema look-ups, over all partitions.
    pub fn held_records(&self) -> usize {
        self.intake.awaiting.len()
    }

    /// Whether this instance holds input partition number `partition`, for
    /// customer lookups: the group assigned the primary topic's partition
    /// here, and the state of every input partition of that number is
    /// restored.
    pub fn holding(&self, partition: i32) -> Holding {
        let primary = self.partitions.find(self.intake.primary(), partition);
        if !primary.is_some_and(|index| self.partitions.is_owned(index)) {
            return Holding::NotHeld;
        }
        let mut numbered = self.partitions.numbered(partition);
        match numbered.any(|index| self.restorer.is_restoring(index)) {
            true => Holding::Restoring,
            false => Holding::Held,
        }
    }

    /// Whether some assigned partition still waits for its state.
    pub fn is_restoring(&self) -> bool {
        self.restorer.is_active()
    }

    /// Why the pipeline cannot go on, once a record can never be
    /// delivered; the driver stops on it.
    pub fn fatal(&self) -> Option<&str> {
        self.outbox.fatal()
    }

    /// Processes one consumed record: a touchpoint, or an erasure request.
    /// A Confluent-framed record whose schema id is new is held, with the
    /// records of its partition behind it, until its registry look-up ends
    /// (`intake/awaiting.rs`, [`Pipeline::schemas_step`]). Returns `false`,
    /// leaving the record unread, when its partition's state is still being
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
        let route = self.intake.route(message.topic());
        let waits = !self.may_send()
            || match route {
                Route::Touchpoints(_) => {
                    self.restorer.is_restoring(index) || self.intake.awaiting.is_full(index)
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
        if self.intake.awaiting.holds(index)
            || self.process(&input, index, encoding, polled, wall) == Step::Wait
        {
            self.intake.awaiting.hold(index, &input, polled);
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
        match self.intake.decode(input, encoding, wall) {
            Decoded::Wait => return Step::Wait,
            Decoded::Touchpoint(tp) => {
                let action = self.engine.rules().action_id(&tp.action);
                self.intake.consumed(input.topic, action);
                let mut outputs = std::mem::take(&mut self.outputs);
                let ingested = self
                    .engine
                    .ingest_at(index, input.offset, &tp, wall, &mut outputs);
                self.outbox.send_outputs(&mut outputs, polled);
                self.outputs = outputs;
                if let Some(invalid) = Invalid::not_ingested(ingested) {
                    self.reject(input, invalid, polled);
                }
            }
            Decoded::Invalid(invalid) => self.reject(input, &invalid, polled),
        }
        Step::Done
    }

    /// Counts a rejected record and sends it to the dead-letter topic.
    fn reject(&mut self, input: &Input<'_>, invalid: &Invalid, polled: Stopwatch) {
        let letter = self.intake.dead_letter(input, invalid);
        self.outbox.send_dead_letter(&letter, polled);
    }

    /// Wall-clock progress with no record: idle partitions stop holding the
    /// watermark back and hybrid time moves on.
    pub fn tick(&mut self, wall: EventTime) {
        if !self.may_send() {
            return;
        }
        let mut outputs = std::mem::take(&mut self.outputs);
        self.engine.tick(wall, &mut outputs);
        self.outbox.send_outputs(&mut outputs, Stopwatch::start());
        self.outputs = outputs;
    }
}
