//! Writer schemas for Confluent-framed input: those loaded at start-up
//! (`schema_registry.schemas_dir`), and those looked up in the registry the
//! first time a record carries their id.
//!
//! [`SchemaSource::try_resolve`] is the one call the pipeline makes before
//! decoding a framed record. For an id already known it is a header read
//! and a map look-up: no allocation, no I/O. Otherwise, with a registry
//! configured, the id is looked up once and its schema kept for good (ids
//! never change their schema).
//!
//! The look-up runs on a thread of its own, never on the processing
//! thread: `try_resolve` starts it and answers [`Resolved::Pending`], and
//! the record waits (the pipeline holds it and the records behind it in
//! its partition, while other partitions flow on). The processing thread
//! collects finished look-ups with [`SchemaSource::completed`], without
//! waiting, and tries the held records again. At most
//! [`LookupPolicy::max_concurrent`] ids are looked up at once; another new
//! id stays pending until one of them ends. ([`SchemaSource::resolve`]
//! waits instead, for callers with nothing else to do.) What happens when
//! a look-up fails:
//!
//! - **The registry does not know the id** (404), or its schema cannot be
//!   read (not Avro, references, invalid): the record is dead-lettered as
//!   `unknown_schema_id`, and the id is remembered as unknown for
//!   [`LookupPolicy::unknown_ttl`] (at most [`LookupPolicy::max_unknown`]
//!   ids), so a stream of such records costs one request per id and TTL.
//! - **The registry cannot be reached** (connection refused, timeout, 5xx)
//!   or refuses journeyd (401, 403): the look-up is retried with backoff
//!   for `schema_registry.retry_for`, the records waiting for it held
//!   meanwhile. Then they are dead-lettered as `unknown_schema_id` with a
//!   detail saying the registry was unreachable, and for
//!   [`LookupPolicy::probe_interval`] further unknown ids are dead-lettered
//!   without asking; after that one request at a time probes the registry
//!   until it answers (other new ids are dead-lettered while it is under
//!   way). Records with known ids flow on throughout. This is the choice
//!   of Kafka Connect's
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
//! Every look-up, and every record dead-lettered without one, is counted
//! in `journeyd_schema_lookups_total{result}`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use super::client::RegistryClient;
use super::error::RegistryError;
use super::retry::Retry;
use crate::clock::Stopwatch;
use crate::codec::confluent::{self, WriterSchemas};
use crate::codec::{Invalid, InvalidReason};
use crate::model::EventTime;
use crate::telemetry::events::{
    InternalEvent, SchemaFetched, SchemaLookup, SchemaRegistryRecovered, SchemaRegistryUnreachable,
};
use crate::telemetry::{LookupResult, Metrics};

/// Where schemas are fetched from: the registry client, or a fake in tests.
/// Shared with the threads that run look-ups.
pub trait FetchSchema: Send + Sync + 'static {
    /// The schema text of `id`.
    fn fetch(&self, id: u32) -> Result<String, RegistryError>;
}

impl FetchSchema for RegistryClient {
    fn fetch(&self, id: u32) -> Result<String, RegistryError> {
        self.schema(id)
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
    /// Ids looked up at the same time, at most (each on a thread of its
    /// own); at least one.
    pub max_concurrent: usize,
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
            max_concurrent: 4,
        }
    }
}

/// What [`SchemaSource::try_resolve`] found for a framed record.
#[derive(Debug)]
pub enum Resolved<'a> {
    /// Decode with these (a record that is not framed, or whose id is not
    /// known without a registry, is left to the decoder to refuse).
    Ready(&'a WriterSchemas),
    /// The schema id is being looked up, or waits for a free look-up: the
    /// record waits until [`SchemaSource::completed`] reports a look-up.
    Pending(u32),
}

/// A look-up that ended, as [`SchemaSource::completed`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Completed {
    /// The schema id looked up.
    pub id: u32,
    /// `Ok` when its schema is known now; otherwise why the records that
    /// waited for it are dead-lettered.
    pub outcome: Result<(), Invalid>,
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
        let (done, finished) = channel();
        let registry = Lookup {
            fetch: Arc::from(fetch),
            policy,
            unknown: UnknownIds::default(),
            outage: None,
            throttle: Throttle::default(),
            metrics,
            in_flight: Vec::new(),
            probing: false,
            done,
            finished,
        };
        SchemaSource {
            known,
            registry: Some(registry),
        }
    }

    /// The schemas to decode `framed` with, if its schema id is known;
    /// [`Resolved::Pending`] while it is looked up (the look-up is started
    /// here, on a thread of its own); or why the record must be
    /// dead-lettered. A record that is not framed at all passes through:
    /// the decoder says what is wrong. Never waits.
    pub fn try_resolve(&mut self, framed: &[u8], wall: EventTime) -> Result<Resolved<'_>, Invalid> {
        let Some(id) = confluent::schema_id(framed) else {
            return Ok(Resolved::Ready(&self.known));
        };
        match &mut self.registry {
            Some(registry) if !self.known.contains(id) => {
                registry.start(id, wall)?;
                Ok(Resolved::Pending(id))
            }
            _ => Ok(Resolved::Ready(&self.known)),
        }
    }

    /// The look-ups that ended since the last call, their schemas added to
    /// the known ones, at wall time `wall`. Never waits.
    pub fn completed(&mut self, wall: EventTime) -> Vec<Completed> {
        let mut completed = Vec::new();
        if let Some(registry) = &mut self.registry {
            while let Ok(finished) = registry.finished.try_recv() {
                completed.push(registry.settle(finished, wall, &mut self.known));
            }
        }
        completed
    }

    /// Whether some look-up is under way.
    pub fn looking_up(&self) -> bool {
        self.registry
            .as_ref()
            .is_some_and(|r| !r.in_flight.is_empty())
    }

    /// [`SchemaSource::try_resolve`], waiting for the look-up if there is
    /// one: for callers with nothing else to do meanwhile.
    pub fn resolve(&mut self, framed: &[u8], wall: EventTime) -> Result<&WriterSchemas, Invalid> {
        loop {
            let id = match self.try_resolve(framed, wall)? {
                Resolved::Ready(_) => return Ok(&self.known),
                Resolved::Pending(id) => id,
            };
            let Some(registry) = &mut self.registry else {
                return Ok(&self.known);
            };
            let Ok(finished) = registry.finished.recv() else {
                return Ok(&self.known);
            };
            let completed = registry.settle(finished, wall, &mut self.known);
            if completed.id == id {
                completed.outcome?;
            }
        }
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

/// A look-up's answer, sent back by the thread that ran it.
struct Finished {
    /// The schema id looked up.
    id: u32,
    /// The schema text, or the last error.
    fetched: Result<String, RegistryError>,
    /// How long the look-up took, retries included.
    took: Duration,
    /// Whether it was the one probe of an unreachable registry.
    probe: bool,
}

/// Look-ups in a registry, with their bounds.
struct Lookup {
    /// The registry, shared with the look-up threads.
    fetch: Arc<dyn FetchSchema>,
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
    /// Ids being looked up now, at most `policy.max_concurrent`.
    in_flight: Vec<u32>,
    /// Whether the one probe of an unreachable registry is under way.
    probing: bool,
    /// Given to each look-up thread for its answer.
    done: Sender<Finished>,
    /// The answers of look-up threads.
    finished: Receiver<Finished>,
}

/// A failed look-up: its metric label and the dead-letter detail.
struct Failure {
    /// How the look-up ended.
    result: LookupResult,
    /// Why the record is dead-lettered: `journeyd.error.detail`.
    detail: String,
}

impl Lookup {
    /// Starts looking `id` up unless it is under way already or no
    /// look-up is free (the record is pending then); or why the record is
    /// dead-lettered without one, counting it.
    fn start(&mut self, id: u32, wall: EventTime) -> Result<(), Invalid> {
        if self.in_flight.contains(&id) {
            return Ok(());
        }
        let started = match self.admit(id, wall) {
            Ok(Some(retry)) => self.spawn(id, retry),
            Ok(None) => Ok(()),
            Err(failure) => Err(failure),
        };
        started.map_err(|failure| {
            let result = failure.result;
            SchemaLookup { id, result }.emit(&self.metrics);
            Invalid::new(InvalidReason::UnknownSchemaId, failure.detail)
        })
    }

    /// How `id` is to be looked up now (`None`: not yet, every look-up is
    /// busy), or why it is not looked up at all.
    fn admit(&mut self, id: u32, wall: EventTime) -> Result<Option<Retry>, Failure> {
        if self.unknown.contains(id, wall) {
            return Err(unknown(
                id,
                "no usable schema in the schema registry at the last look-up",
            ));
        }
        let retry = match &self.outage {
            Some(outage) if wall < outage.probe_at || self.probing => {
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
        if self.in_flight.len() >= self.policy.max_concurrent.max(1) {
            return Ok(None);
        }
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
        Ok(Some(retry))
    }

    /// Looks `id` up on a thread of its own, which sends its answer to
    /// `finished`.
    fn spawn(&mut self, id: u32, retry: Retry) -> Result<(), Failure> {
        let probe = self.outage.is_some();
        let fetch = Arc::clone(&self.fetch);
        let done = self.done.clone();
        let spawned = std::thread::Builder::new()
            .name("schema-lookup".into())
            .spawn(move || {
                let clock = Stopwatch::start();
                let fetched = retry.run(|| fetch.fetch(id));
                let took = clock.elapsed();
                // The receiver lives as long as the pipeline.
                let _ = done.send(Finished {
                    id,
                    fetched,
                    took,
                    probe,
                });
            });
        match spawned {
            Ok(_) => {
                self.in_flight.push(id);
                self.probing |= probe;
                Ok(())
            }
            Err(error) => Err(Failure {
                result: LookupResult::Unavailable,
                detail: format!("schema id {id}: cannot start a look-up ({error})"),
            }),
        }
    }

    /// Applies a look-up's answer at wall time `now`, counting it.
    fn settle(
        &mut self,
        finished: Finished,
        now: EventTime,
        known: &mut WriterSchemas,
    ) -> Completed {
        let Finished {
            id,
            fetched,
            took,
            probe,
        } = finished;
        self.in_flight.retain(|&i| i != id);
        self.probing &= !probe;
        let outcome = self.apply(id, fetched, now, took, known);
        let result = outcome
            .as_ref()
            .map_or_else(|f| f.result, |()| LookupResult::Fetched);
        SchemaLookup { id, result }.emit(&self.metrics);
        Completed {
            id,
            outcome: outcome.map_err(|f| Invalid::new(InvalidReason::UnknownSchemaId, f.detail)),
        }
    }

    /// Applies the answer of the registry (or its absence).
    fn apply(
        &mut self,
        id: u32,
        fetched: Result<String, RegistryError>,
        now: EventTime,
        took: Duration,
        known: &mut WriterSchemas,
    ) -> Result<(), Failure> {
        let text = match fetched {
            Ok(text) => text,
            Err(error @ (RegistryError::Unavailable(_) | RegistryError::Refused { .. })) => {
                return Err(self.unreachable(id, &error, now, took));
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
        took: Duration,
    ) -> Failure {
        let probe_in = self.policy.probe_interval;
        if self.outage.is_none() {
            SchemaRegistryUnreachable {
                error,
                retried_for: took,
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
mod tests;
