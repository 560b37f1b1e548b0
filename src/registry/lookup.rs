//! Writer schemas for Confluent-framed input: those loaded at start-up
//! (`schema_registry.schemas_dir`), and those looked up in the registry the
//! first time a record carries their id.
//!
//! [`SchemaSource::resolve`] is the one call the pipeline makes before
//! decoding a framed record. For an id already known it is a header read
//! and a map look-up: no allocation, no I/O. Otherwise, with a registry
//! configured, the id is looked up once and its schema kept for good (ids
//! never change their schema). What happens when that fails:
//!
//! - **The registry does not know the id** (404), or its schema cannot be
//!   read (not Avro, references, invalid): the record is dead-lettered as
//!   `unknown_schema_id`, and the id is remembered as unknown for
//!   [`LookupPolicy::unknown_ttl`] (at most [`LookupPolicy::max_unknown`]
//!   ids), so a stream of such records costs one request per id and TTL.
//! - **The registry cannot be reached** (connection refused, timeout, 5xx)
//!   or refuses journeyd (401, 403): the look-up is retried with backoff
//!   for `schema_registry.retry_for`, the processing thread waiting as it
//!   does for backpressure. Then the record is dead-lettered as
//!   `unknown_schema_id` with a detail saying the registry was unreachable,
//!   and for [`LookupPolicy::probe_interval`] further unknown ids are
//!   dead-lettered without asking; after that one request at a time probes
//!   the registry until it answers. Records with known ids flow on
//!   throughout. This is the choice of Kafka Connect's
//!   `errors.retry.timeout` with a dead-letter queue: a registry outage
//!   delays the partition by a bounded time and never stalls it, and every
//!   record it affects is in the dead-letter topic, with its original bytes
//!   and source offset, to be replayed once the registry is back.
//! - **A flood of distinct unknown ids** (garbage that happens to start
//!   with a zero byte): at most [`LookupPolicy::max_lookups_per_second`]
//!   ids are looked up per second of wall time; the rest are dead-lettered
//!   without asking, and not remembered, so a real id is looked up on its
//!   next record.
//!
//! Every look-up is counted in `journeyd_schema_lookups_total{result}`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::client::RegistryClient;
use super::error::RegistryError;
use super::retry::Retry;
use crate::clock::Stopwatch;
use crate::codec::confluent::{self, WriterSchemas};
use crate::codec::{Invalid, InvalidReason};
use crate::model::EventTime;
use crate::telemetry::Metrics;
use crate::telemetry::events::{
    InternalEvent, SchemaFetched, SchemaLookup, SchemaRegistryRecovered, SchemaRegistryUnreachable,
};

/// Where schemas are fetched from: the registry client, or a fake in tests.
pub trait FetchSchema: Send {
    /// The schema text of `id`.
    fn fetch(&self, id: u32) -> Result<String, RegistryError>;
}

impl FetchSchema for RegistryClient {
    fn fetch(&self, id: u32) -> Result<String, RegistryError> {
        self.schema(id)
    }
}

/// How one look-up of an id not known locally ended; a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupResult {
    /// The schema was fetched and is now known.
    Fetched,
    /// The registry does not know the id or its schema cannot be read
    /// (now, or remembered from an earlier look-up): dead-lettered.
    Unknown,
    /// The registry could not be reached or refused: dead-lettered.
    Unavailable,
    /// Too many unknown ids this second; not looked up: dead-lettered.
    Throttled,
}

impl LookupResult {
    /// Every result, for pre-resolving metric handles.
    pub const ALL: [LookupResult; 4] = [
        LookupResult::Fetched,
        LookupResult::Unknown,
        LookupResult::Unavailable,
        LookupResult::Throttled,
    ];

    /// The stable metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            LookupResult::Fetched => "fetched",
            LookupResult::Unknown => "unknown",
            LookupResult::Unavailable => "unavailable",
            LookupResult::Throttled => "throttled",
        }
    }
}

/// The bounds of look-ups; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupPolicy {
    /// How a registry that cannot be reached is retried.
    pub retry: Retry,
    /// How long an id the registry does not know is remembered as unknown.
    pub unknown_ttl: Duration,
    /// How many unknown ids are remembered, at most.
    pub max_unknown: usize,
    /// After the registry was found unreachable: how long unknown ids are
    /// dead-lettered without asking, before one request probes it again.
    pub probe_interval: Duration,
    /// Ids looked up per second of wall time, at most.
    pub max_lookups_per_second: u32,
}

impl LookupPolicy {
    /// The defaults, retrying an unreachable registry for `retry_for`.
    pub const fn new(retry_for: Duration) -> LookupPolicy {
        LookupPolicy {
            retry: Retry::new(retry_for),
            unknown_ttl: Duration::from_secs(60),
            max_unknown: 10_000,
            probe_interval: Duration::from_secs(10),
            max_lookups_per_second: 20,
        }
    }
}

/// Writer schemas by id, with an optional registry behind them.
pub struct SchemaSource {
    /// Every schema known so far.
    known: WriterSchemas,
    /// Looks up ids not in `known`; `None` without a registry.
    registry: Option<Lookup>,
}

impl SchemaSource {
    /// Only the given schemas: unknown ids are dead-lettered.
    pub fn local(known: WriterSchemas) -> SchemaSource {
        SchemaSource {
            known,
            registry: None,
        }
    }

    /// The given schemas first, then `fetch` for the others.
    pub fn with_registry(
        known: WriterSchemas,
        fetch: Box<dyn FetchSchema>,
        policy: LookupPolicy,
        metrics: Arc<Metrics>,
    ) -> SchemaSource {
        let registry = Lookup {
            fetch,
            policy,
            unknown: UnknownIds::default(),
            outage: None,
            throttle: Throttle::default(),
            metrics,
        };
        SchemaSource {
            known,
            registry: Some(registry),
        }
    }

    /// The schemas to decode `framed` with, once its schema id is known;
    /// or why the record must be dead-lettered. A record that is not
    /// framed at all passes through: the decoder says what is wrong.
    pub fn resolve(&mut self, framed: &[u8], wall: EventTime) -> Result<&WriterSchemas, Invalid> {
        let Some(id) = confluent::schema_id(framed) else {
            return Ok(&self.known);
        };
        if !self.known.contains(id)
            && let Some(registry) = &mut self.registry
        {
            registry.fetch_into(id, wall, &mut self.known)?;
        }
        Ok(&self.known)
    }

    /// The schemas known so far.
    pub fn known(&self) -> &WriterSchemas {
        &self.known
    }
}

/// Why the registry was last found unreachable, and until when it is not
/// asked again.
#[derive(Clone, Debug)]
struct Outage {
    /// The last error; the detail of the records dead-lettered meanwhile.
    error: String,
    /// When one request may probe the registry again.
    probe_at: EventTime,
}

/// Look-ups in a registry, with their bounds.
struct Lookup {
    /// The registry.
    fetch: Box<dyn FetchSchema>,
    /// The bounds of look-ups.
    policy: LookupPolicy,
    /// Ids the registry does not know, for a while.
    unknown: UnknownIds,
    /// Set while the registry is unreachable.
    outage: Option<Outage>,
    /// Look-ups this second.
    throttle: Throttle,
    /// Where look-ups are counted.
    metrics: Arc<Metrics>,
}

/// A failed look-up: its metric label and the dead-letter detail.
struct Failure {
    /// How the look-up ended.
    result: LookupResult,
    /// Why the record is dead-lettered: `journeyd.error.detail`.
    detail: String,
}

impl Lookup {
    /// Looks `id` up and adds its schema to `known`, counting the look-up.
    fn fetch_into(
        &mut self,
        id: u32,
        wall: EventTime,
        known: &mut WriterSchemas,
    ) -> Result<(), Invalid> {
        let outcome = self.look_up(id, wall, known);
        let result = outcome
            .as_ref()
            .map_or_else(|f| f.result, |()| LookupResult::Fetched);
        SchemaLookup { id, result }.emit(&self.metrics);
        outcome.map_err(|f| Invalid::new(InvalidReason::UnknownSchemaId, f.detail))
    }

    fn look_up(
        &mut self,
        id: u32,
        wall: EventTime,
        known: &mut WriterSchemas,
    ) -> Result<(), Failure> {
        if self.unknown.contains(id, wall) {
            return Err(unknown(
                id,
                "no usable schema in the schema registry at the last look-up",
            ));
        }
        let retry = match &self.outage {
            Some(outage) if wall < outage.probe_at => {
                return Err(Failure {
                    result: LookupResult::Unavailable,
                    detail: format!(
                        "schema id {id}: not looked up, the schema registry was unreachable at \
                         the last attempt ({})",
                        outage.error
                    ),
                });
            }
            Some(_) => Retry::ONCE,
            None => self.policy.retry,
        };
        if !self
            .throttle
            .admit(wall, self.policy.max_lookups_per_second)
        {
            return Err(Failure {
                result: LookupResult::Throttled,
                detail: format!(
                    "schema id {id}: not looked up, more than {} unknown schema ids this second",
                    self.policy.max_lookups_per_second
                ),
            });
        }
        let clock = Stopwatch::start();
        let fetched = retry.run(|| self.fetch.fetch(id));
        let now = wall.plus_ms(i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX));
        self.settle(id, fetched, now, clock, known)
    }

    /// Applies the answer of the registry (or its absence).
    fn settle(
        &mut self,
        id: u32,
        fetched: Result<String, RegistryError>,
        now: EventTime,
        clock: Stopwatch,
        known: &mut WriterSchemas,
    ) -> Result<(), Failure> {
        let text = match fetched {
            Ok(text) => text,
            Err(error @ (RegistryError::Unavailable(_) | RegistryError::Refused { .. })) => {
                return Err(self.unreachable(id, &error, now, clock));
            }
            Err(error) => {
                self.answered();
                self.unknown.insert(id, now, &self.policy);
                return Err(unknown(id, &error.to_string()));
            }
        };
        self.answered();
        if let Err(error) = known.insert_json(id, &text) {
            self.unknown.insert(id, now, &self.policy);
            let error = Invalid::from_avro(&error).detail;
            return Err(unknown(id, &format!("not a valid Avro schema: {error}")));
        }
        SchemaFetched { id }.emit(&self.metrics);
        Ok(())
    }

    /// The registry answered: an outage, if any, is over.
    fn answered(&mut self) {
        if self.outage.take().is_some() {
            SchemaRegistryRecovered.emit(&self.metrics);
        }
    }

    /// The registry could not be reached: no more requests for a while.
    fn unreachable(
        &mut self,
        id: u32,
        error: &RegistryError,
        now: EventTime,
        clock: Stopwatch,
    ) -> Failure {
        let probe_in = self.policy.probe_interval;
        if self.outage.is_none() {
            SchemaRegistryUnreachable {
                error,
                retried_for: clock.elapsed(),
                probe_in,
            }
            .emit(&self.metrics);
        }
        let probe_at = now.plus_ms(i64::try_from(probe_in.as_millis()).unwrap_or(i64::MAX));
        self.outage = Some(Outage {
            error: error.to_string(),
            probe_at,
        });
        Failure {
            result: LookupResult::Unavailable,
            detail: format!("schema id {id}: the schema registry is unreachable ({error})"),
        }
    }
}

/// An `unknown` failure for `id`.
fn unknown(id: u32, why: &str) -> Failure {
    Failure {
        result: LookupResult::Unknown,
        detail: format!("schema id {id}: {why}"),
    }
}

/// Ids the registry does not know, each until its expiry; bounded, the
/// oldest forgotten first.
#[derive(Debug, Default)]
struct UnknownIds {
    /// Id -> when it may be looked up again.
    until: HashMap<u32, EventTime>,
    /// Insertion order (hence expiry order, the TTL being fixed), with the
    /// expiry each entry was inserted with.
    order: VecDeque<(u32, EventTime)>,
}

impl UnknownIds {
    /// Whether `id` is remembered as unknown at `now`.
    fn contains(&self, id: u32, now: EventTime) -> bool {
        self.until.get(&id).is_some_and(|&until| now < until)
    }

    /// Remembers `id` as unknown from `now` for the policy's TTL.
    fn insert(&mut self, id: u32, now: EventTime, policy: &LookupPolicy) {
        let ttl = i64::try_from(policy.unknown_ttl.as_millis()).unwrap_or(i64::MAX);
        while let Some(&(old, expiry)) = self.order.front() {
            if expiry > now && self.order.len() < policy.max_unknown {
                break;
            }
            self.order.pop_front();
            if self.until.get(&old) == Some(&expiry) {
                self.until.remove(&old);
            }
        }
        if policy.max_unknown == 0 {
            return;
        }
        let until = now.plus_ms(ttl);
        self.until.insert(id, until);
        self.order.push_back((id, until));
    }

    /// How many ids are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.len()
    }
}

/// Look-ups per second of wall time.
#[derive(Debug, Default)]
struct Throttle {
    /// The current second since the epoch.
    second: i64,
    /// Look-ups in it so far.
    used: u32,
}

impl Throttle {
    /// Whether one more look-up fits in `now`'s second.
    fn admit(&mut self, now: EventTime, max: u32) -> bool {
        let second = now.millis().div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.used = 0;
        }
        if self.used >= max {
            return false;
        }
        self.used += 1;
        true
    }
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
