//! The intake: what a consumed record is, decoded, or why it is rejected.
//!
//! ```text
//! consumed record ─► Intake::route (by topic) ─► Touchpoints(encoding) ─► Intake::decode ─► engine
//!                                              └► Erasure ─► Intake::decode_erasure ─► erase + audit record
//!                   invalid ─► Intake::dead_letter (codec::dlq) ─► outbox
//! ```
//!
//! [`Intake`] owns what turns bytes into input: the routes by topic, the
//! validator (one codec entry point per kind of record, which checks the
//! size once: [`crate::codec::Validator::decode_input`] and
//! [`crate::codec::Validator::decode_erasure`]), the writer schemas of
//! Confluent-framed records and their registry look-ups, the records held
//! while a look-up runs ([`awaiting`]), and the consumed-touchpoint
//! counters. A rejected record is counted and described as a
//! [`DeadLetter`], whose value and headers [`crate::codec::dlq`] defines;
//! the outbox sends it. It never talks to Kafka, and allocates nothing per
//! record except a copy of a record it holds.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Message};

use crate::codec::dlq::DeadLetter;
use crate::codec::erasure::ErasureRequest;
use crate::codec::{Invalid, Validator};
use crate::config::{Config, InputEncoding};
use crate::engine::rules::ActionId;
use crate::model::{EventTime, Touchpoint};
use crate::registry::{Resolved, SchemaSource};
use crate::telemetry::events::{InternalEvent, InvalidRecord};
use crate::telemetry::{ConsumedCounters, Metrics};

pub(super) mod awaiting;

use awaiting::Awaiting;

/// What the records of a consumed topic are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// Touchpoints in this encoding.
    Touchpoints(InputEncoding),
    /// Erasure requests ([`crate::codec::erasure`]).
    Erasure,
}

/// A consumed record, borrowed from the consumer or from a held copy.
#[derive(Clone, Copy, Debug)]
pub(super) struct Input<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl<'a> Input<'a> {
    /// The parts of a consumed message.
    pub fn of(message: &'a BorrowedMessage<'a>) -> Input<'a> {
        Input {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload().unwrap_or_default(),
        }
    }
}

/// What decoding a touchpoint record gave.
#[derive(Debug)]
pub(super) enum Decoded<'a> {
    /// A valid touchpoint.
    Touchpoint(Touchpoint<'a>),
    /// Its schema id is being looked up: it waits, and so do the records
    /// of its partition behind it.
    Wait,
    /// Rejected: it goes to the dead-letter topic.
    Invalid(Invalid),
}

/// Consumed records in, touchpoints or dead letters out; see the module
/// docs.
pub struct Intake {
    routes: HashMap<String, Route>,
    validator: Validator,
    schemas: SchemaSource,
    /// Records waiting for the look-up of their schema id, per partition.
    pub(super) awaiting: Awaiting,
    consumed: ConsumedCounters,
    metrics: Arc<Metrics>,
    /// The erasure topic: read, and written by HTTP erasure requests.
    erasure: String,
    /// The input topic whose partitions the erasure partitions follow.
    primary: String,
}

impl Intake {
    /// An intake for `config`'s topics.
    pub(super) fn new(
        config: &Config,
        schemas: SchemaSource,
        consumed: ConsumedCounters,
        metrics: Arc<Metrics>,
    ) -> Intake {
        let outputs = &config.outputs;
        Intake {
            routes: (config.inputs.iter())
                .map(|i| (i.topic.clone(), Route::Touchpoints(i.encoding)))
                .chain([(outputs.erasure.clone(), Route::Erasure)])
                .collect(),
            validator: Validator::from_config(config),
            schemas,
            awaiting: Awaiting::new(config.schema_registry.max_held_bytes),
            consumed,
            metrics,
            erasure: outputs.erasure.clone(),
            primary: (config.inputs.first())
                .map(|i| i.topic.clone())
                .unwrap_or_default(),
        }
    }

    /// What the records of `topic` are. Only subscribed topics arrive;
    /// JSON is the default encoding.
    pub(super) fn route(&self, topic: &str) -> Route {
        (self.routes.get(topic).copied()).unwrap_or(Route::Touchpoints(InputEncoding::Json))
    }

    /// Whether `topic` is an input topic (its partitions are restored).
    pub(super) fn is_input(&self, topic: &str) -> bool {
        matches!(self.routes.get(topic), Some(Route::Touchpoints(_)))
    }

    /// The primary input topic, whose partitions the erasure partitions
    /// follow.
    pub(super) fn primary(&self) -> &str {
        &self.primary
    }

    /// The erasure topic.
    pub(super) fn erasure_topic(&self) -> &str {
        &self.erasure
    }

    /// Decodes a touchpoint record of `encoding` at wall time `wall`: one
    /// codec call, with the writer schema of a Confluent-framed record
    /// found here (or the failure of its look-up, or a wait for it).
    pub(super) fn decode<'a>(
        &mut self,
        input: &Input<'a>,
        encoding: InputEncoding,
        wall: EventTime,
    ) -> Decoded<'a> {
        let (awaiting, schemas) = (&self.awaiting, &mut self.schemas);
        let decoded = self
            .validator
            .decode_input(encoding, input.payload, wall, |payload| {
                awaiting.failure(payload)?;
                match schemas.try_resolve(payload, wall)? {
                    Resolved::Ready(schemas) => Ok(Some(schemas)),
                    Resolved::Pending(_) => Ok(None),
                }
            });
        match decoded {
            Ok(Some(tp)) => Decoded::Touchpoint(tp),
            Ok(None) => Decoded::Wait,
            Err(invalid) => Decoded::Invalid(invalid),
        }
    }

    /// Decodes a record of the erasure topic.
    pub(super) fn decode_erasure<'a>(
        &self,
        message: &'a BorrowedMessage<'_>,
    ) -> Result<ErasureRequest<'a>, Invalid> {
        let payload = message.payload().unwrap_or_default();
        self.validator.decode_erasure(message.key(), payload)
    }

    /// Counts a touchpoint of `action` consumed from `topic`.
    pub(super) fn consumed(&self, topic: &str, action: ActionId) {
        self.consumed.inc(topic, action);
    }

    /// Counts a rejected record and describes its dead letter.
    pub(super) fn dead_letter<'a>(
        &self,
        input: &Input<'a>,
        invalid: &'a Invalid,
    ) -> DeadLetter<'a> {
        InvalidRecord {
            reason: invalid.reason,
            detail: &invalid.detail,
            topic: input.topic,
            partition: input.partition,
            offset: input.offset,
        }
        .emit(&self.metrics);
        DeadLetter {
            original: input.payload,
            key: input.key,
            source_topic: input.topic,
            partition: input.partition,
            offset: input.offset,
            reason: invalid.reason,
            detail: &invalid.detail,
        }
    }

    /// The look-ups that ended, for the held records to be released.
    pub(super) fn schemas_completed(&mut self, wall: EventTime) {
        self.awaiting.completed(self.schemas.completed(wall));
    }
}
