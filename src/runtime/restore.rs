//! Restoring assigned partitions' customers from the changelog, a bounded
//! batch at a time between polls (docs/guarantees.md#restore).
//!
//! On assignment the pipeline pauses each new input partition in the group
//! consumer and hands it to the [`Restorer`]; the partitions that stay keep
//! flowing. The restorer reads changelog partition p, for input partition
//! p, from its beginning until the consumer reports the partition's end,
//! with a consumer of its own (manual assignment, no group,
//! `isolation.level = read_committed`), and feeds every record to
//! [`Engine::restore`] in log order, tombstones included. The end reported
//! is the high watermark of the fetch that reached it, which is at or past
//! the high watermark when the partition was assigned: everything the
//! previous owner wrote before it let the partition go (its final drain
//! included) is read. It may lie past the last record (compaction removes
//! old tombstones, even the newest record's), which an end offset
//! compared with the last record read would wait for in vain. A partition
//! being read is never repositioned: each is assigned for one pass and
//! unassigned after it, since a consumer moved within a partition may be
//! handed records fetched for the old position. It reads at most
//! [`BATCH_RECORDS`] records or [`BATCH_TIME`] per [`Restorer::step`], so
//! the driver keeps polling the group consumer (and serving the partitions
//! it already has) while state loads.
//!
//! Before a partition's changelog is read, the restorer reads its committed
//! offset with its metadata from the group coordinator. The group consumer
//! reads `read_committed`, so librdkafka asks for *stable* offsets (KIP-447):
//! the coordinator answers only once a transaction that commits offsets of
//! the partition has completed. Offsets first, then the changelog to its
//! end (its last stable offset, read `read_committed` too), is the order in
//! which nothing committed with an offset can be missing from the state
//! read: a transaction that completes in between adds state newer than the
//! offset, which the customers' fences tell apart (input read again at or
//! below a fence was applied before), never an offset newer than the state.
//! While the offsets cannot be read, the pass waits.
//!
//! When every partition being restored is complete, the restorer resumes
//! their event time from the checkpoints in those offsets' metadata in one
//! [`Engine::resume`] call, and resumes them in the group consumer, which
//! reads on from the committed offsets. Partitions assigned while others
//! restore join the same round, so partitions assigned together resume
//! together. The committed offsets are handed to the pipeline
//! ([`Restorer::take_resumed`]): in exactly-once mode every transaction
//! carries an offset for every partition it owns, read or not.
//!
//! A record carries the input topic its customer came from in a header;
//! with several input topics, restoring `(topic, p)` takes the records of
//! changelog partition p written for that topic only. A customer held here
//! for a partition that is not being restored is left alone: the changelog
//! record is older than what is in memory. A record that cannot be decoded
//! is skipped, logged and counted: the customer starts afresh.
//!
//! A partition's funnel record (its share of the open funnel windows,
//! under a key of its own: [`super::changelog::FUNNEL_KEY_PREFIX`]) goes to
//! [`Engine::restore_funnel`]. It ends its partition's part of every drain,
//! so the records after the last one belong to a drain its writer did not
//! finish: they are held while the pass reads on and superseded at its end
//! rather than restored ([`held`]).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::clock::Stopwatch;
use crate::config::Config;
use crate::engine::{Checkpoint, Engine, RestoreError};
use crate::kafka::{ConsumerHooks, Context, Hooks};
use crate::model::EventTime;
use crate::telemetry::Metrics;
use crate::telemetry::events::{
    ConsumeFailed, InternalEvent, RestoreCompleted, RestoreRecordSkipped,
};
use crate::telemetry::{KafkaLog, Readiness};

use super::changelog::{INPUT_TOPIC_HEADER, decode_checkpoint, funnel_record_topic};
use super::partitions::PartitionMap;

mod held;

use held::Held;

/// A partition's commit in the group: its offset, and the checkpoint in
/// the offset's metadata (`None`: none, or not journeyd's).
pub type Commit = (i64, Option<Checkpoint>);

/// Records read per step, at most.
pub const BATCH_RECORDS: usize = 2_000;

/// Time spent reading per step, at most (checked between records).
pub const BATCH_TIME: Duration = Duration::from_millis(20);

/// How long a step waits for the first record when none is ready.
const FIRST_RECORD_WAIT: Duration = Duration::from_millis(10);

/// How long the look-up of committed offsets may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One changelog partition being read: one pass from its beginning to
/// its end.
#[derive(Debug)]
struct Job {
    /// The changelog partition (= the input partitions' number).
    partition: i32,
    /// The engine partitions this pass restores, with their input topics.
    targets: Vec<(u32, String)>,
    /// Engine partitions assigned during this pass: the next pass is
    /// theirs.
    later: Vec<(u32, String)>,
    /// Per target engine partition, its records after its last funnel
    /// record so far.
    held: Vec<(u32, Held)>,
    /// Whether the pass has started: the partition is assigned.
    reading: bool,
    /// The next offset to read.
    next: i64,
    /// Records read in this pass.
    records: u64,
    /// Since this pass was asked for.
    started: Stopwatch,
}

impl Job {
    fn new(partition: i32, targets: Vec<(u32, String)>) -> Job {
        Job {
            partition,
            held: targets.iter().map(|(i, _)| (*i, Held::default())).collect(),
            targets,
            later: Vec::new(),
            reading: false,
            next: 0,
            records: 0,
            started: Stopwatch::start(),
        }
    }
}

/// Restores partitions from the changelog; see the module docs.
pub struct Restorer {
    /// The changelog consumer: manual assignment, no group, no commits.
    consumer: BaseConsumer<RestoreContext>,
    /// `runtime.changelog_topic`.
    topic: String,
    /// Changelog partitions being read.
    jobs: Vec<Job>,
    /// Input partitions of the current round: paused, resumed together.
    round: Vec<u32>,
    /// The round's partitions whose commit has been read: offset (`None`:
    /// never committed) and checkpoint.
    committed: Vec<(u32, Option<i64>, Option<Checkpoint>)>,
    /// Partitions resumed since the pipeline last asked, with their
    /// commits.
    resumed: Vec<(u32, Option<Commit>)>,
    metrics: std::sync::Arc<Metrics>,
    readiness: Readiness,
}

impl Restorer {
    /// A restorer reading `runtime.changelog_topic` with the connection
    /// settings of the group consumer.
    pub fn new(
        config: &Config,
        metrics: std::sync::Arc<Metrics>,
        readiness: Readiness,
    ) -> Result<Restorer, KafkaError> {
        Ok(Restorer {
            consumer: restore_consumer_config(config)
                .create_with_context(Context::new(KafkaLog::new(&config.kafka), RestoreHooks))?,
            topic: config.runtime.changelog_topic.clone(),
            jobs: Vec::new(),
            round: Vec::new(),
            committed: Vec::new(),
            resumed: Vec::new(),
            metrics,
            readiness,
        })
    }

    /// Whether engine partition `index` is waiting for its state.
    pub fn is_restoring(&self, index: u32) -> bool {
        self.round.contains(&index)
    }

    /// Whether any partition is waiting for its state.
    pub fn is_active(&self) -> bool {
        !self.round.is_empty()
    }

    /// Starts restoring engine partition `index`, input `(topic,
    /// partition)`, which the caller has paused. When changelog partition
    /// `partition` is already being read for another input topic, it is
    /// read once more for this one afterwards: a partition being read is
    /// never repositioned.
    pub fn start(&mut self, index: u32, topic: &str, partition: i32) {
        if self.is_restoring(index) {
            return;
        }
        self.round.push(index);
        let target = (index, topic.to_owned());
        match self.jobs.iter_mut().find(|j| j.partition == partition) {
            Some(job) if !job.reading => {
                job.held.push((index, Held::default()));
                job.targets.push(target);
            }
            Some(job) => job.later.push(target),
            None => self.jobs.push(Job::new(partition, vec![target])),
        }
        self.publish_progress();
    }

    /// Engine partition `index` was revoked: stop restoring it. Returns
    /// whether it was being restored.
    pub fn cancel(&mut self, index: u32) -> bool {
        if !self.is_restoring(index) {
            return false;
        }
        self.round.retain(|&i| i != index);
        self.committed.retain(|&(i, ..)| i != index);
        for job in &mut self.jobs {
            job.targets.retain(|(i, _)| *i != index);
            job.held.retain(|(i, _)| *i != index);
            job.later.retain(|(i, _)| *i != index);
        }
        let mut i = 0;
        while i < self.jobs.len() {
            if self.jobs[i].targets.is_empty() {
                self.end_pass(i);
            } else {
                i += 1;
            }
        }
        self.publish_progress();
        true
    }

    /// Reads the next batch of changelog records into `engine`; when the
    /// round is complete, resumes its partitions (in `engine` and in the
    /// group `consumer`). Meanwhile the round's partitions do not go idle
    /// in `engine` at wall time `wall`: their input is paused, not quiet.
    /// Cheap when nothing is being restored.
    pub fn step<C: ConsumerContext>(
        &mut self,
        engine: &mut Engine,
        (partitions, consumer): (&PartitionMap, &BaseConsumer<C>),
        wall: EventTime,
    ) {
        if self.round.is_empty() {
            return;
        }
        for &index in &self.round {
            engine.hold(index, wall);
        }
        if !self.read_commits(partitions, consumer) {
            return;
        }
        self.start_passes();
        if self.jobs.iter().any(|j| j.reading) {
            self.read_batch(engine);
        }
        if self.jobs.is_empty() {
            self.finish_round(engine, partitions, consumer);
        }
    }

    /// Starts the pass of every job that has not started: assigns its
    /// partition from the beginning. One that cannot be assigned is tried
    /// again at the next step.
    fn start_passes(&mut self) {
        for job in self.jobs.iter_mut().filter(|j| !j.reading) {
            let mut list = TopicPartitionList::new();
            let added = list.add_partition_offset(&self.topic, job.partition, Offset::Beginning);
            match added.and_then(|()| self.consumer.incremental_assign(&list)) {
                Ok(()) => {
                    job.reading = true;
                    job.next = 0;
                    job.records = 0;
                }
                Err(error) => tracing::warn!(
                    %error,
                    partition = job.partition,
                    "Cannot assign a changelog partition; trying again."
                ),
            }
        }
    }

    /// Reads up to [`BATCH_RECORDS`] records or for [`BATCH_TIME`].
    fn read_batch(&mut self, engine: &mut Engine) {
        let clock = Stopwatch::start();
        let mut read = 0;
        let mut wait = FIRST_RECORD_WAIT;
        while read < BATCH_RECORDS && clock.elapsed() < BATCH_TIME && !self.jobs.is_empty() {
            let complete = match self.consumer.poll(wait) {
                None => break,
                Some(Ok(message)) => {
                    read += 1;
                    let ctx = (self.topic.as_str(), self.metrics.as_ref());
                    apply(&mut self.jobs, &message, engine, ctx);
                    None
                }
                // The end: see the module docs.
                Some(Err(KafkaError::PartitionEOF(partition))) => self
                    .jobs
                    .iter()
                    .position(|j| j.partition == partition && j.reading),
                Some(Err(error)) => {
                    ConsumeFailed { error: &error }.emit(&self.metrics);
                    break;
                }
            };
            if let Some(i) = complete {
                self.complete(i, engine);
            }
            wait = Duration::ZERO;
        }
        self.readiness.add_restored_records(read as u64);
    }

    /// Job `i`'s pass has read everything: supersedes the records of an
    /// unfinished drain, reports its partitions, then ends the pass.
    fn complete(&mut self, i: usize, engine: &mut Engine) {
        supersede_held(&mut self.jobs[i], engine);
        let job = &self.jobs[i];
        for (index, topic) in &job.targets {
            let customers = engine.partition_customers(*index);
            RestoreCompleted {
                topic,
                partition: job.partition,
                records: job.records,
                customers: customers as u64,
                elapsed: job.started.elapsed(),
            }
            .emit(&self.metrics);
        }
        self.end_pass(i);
    }

    /// Ends job `i`'s pass: its partition is unassigned, and the job is
    /// dropped unless partitions wait for a pass of their own.
    fn end_pass(&mut self, i: usize) {
        let job = &mut self.jobs[i];
        if job.reading {
            let mut list = TopicPartitionList::new();
            list.add_partition(&self.topic, job.partition);
            if let Err(error) = self.consumer.incremental_unassign(&list) {
                tracing::warn!(%error, partition = job.partition, "Cannot unassign a changelog partition.");
            }
        }
        if job.later.is_empty() {
            self.jobs.swap_remove(i);
        } else {
            let later = std::mem::take(&mut job.later);
            *job = Job::new(job.partition, later);
        }
    }

    /// Every job is complete: resume the round's partitions from their
    /// committed checkpoints, and let the group consumer read them.
    fn finish_round<C: ConsumerContext>(
        &mut self,
        engine: &mut Engine,
        partitions: &PartitionMap,
        consumer: &BaseConsumer<C>,
    ) {
        let mut list = TopicPartitionList::new();
        for &index in &self.round {
            if let Some((topic, partition)) = partitions.name(index) {
                list.add_partition(topic, partition);
            }
        }
        let round = &self.round;
        let commits = self.committed.iter().filter(|(i, ..)| round.contains(i));
        let checkpoints: Vec<(u32, Checkpoint)> = commits
            .clone()
            .filter_map(|&(index, _, checkpoint)| Some((index, checkpoint?)))
            .collect();
        self.resumed
            .extend(commits.map(|&(index, offset, checkpoint)| {
                (index, offset.map(|offset| (offset, checkpoint)))
            }));
        self.committed.retain(|(i, ..)| !round.contains(i));
        tracing::debug!(
            partitions = list.count(),
            checkpoints = checkpoints.len(),
            "Restored partitions resume."
        );
        engine.resume(checkpoints);
        if let Err(error) = consumer.resume(&list) {
            tracing::error!(%error, "Cannot resume restored partitions.");
        }
        self.round.clear();
        self.publish_progress();
    }

    /// The partitions resumed since the last call, with their committed
    /// offsets and checkpoints (`None`: never committed).
    pub fn take_resumed(&mut self) -> Vec<(u32, Option<Commit>)> {
        std::mem::take(&mut self.resumed)
    }

    /// Reads the commits of the round's partitions not read yet (see the
    /// module docs); whether every one is known.
    fn read_commits<C: ConsumerContext>(
        &mut self,
        partitions: &PartitionMap,
        consumer: &BaseConsumer<C>,
    ) -> bool {
        let mut list = TopicPartitionList::new();
        for &index in &self.round {
            if !self.committed.iter().any(|&(i, ..)| i == index)
                && let Some((topic, partition)) = partitions.name(index)
            {
                list.add_partition(topic, partition);
            }
        }
        if list.count() == 0 {
            return true;
        }
        let found = match consumer.committed_offsets(list, LOOKUP_TIMEOUT) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "Cannot read the committed offsets of partitions being restored; their \
                     changelog is read once they are known."
                );
                return false;
            }
        };
        for element in found.elements() {
            let Some(index) = partitions.find(element.topic(), element.partition()) else {
                continue;
            };
            let offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            let checkpoint = decode_checkpoint(element.metadata());
            self.committed.push((index, offset, checkpoint));
        }
        // Not in the answer (it cannot be, but a round must end): no commit.
        for &index in &self.round {
            if !self.committed.iter().any(|&(i, ..)| i == index) {
                self.committed.push((index, None, None));
            }
        }
        true
    }

    fn publish_progress(&self) {
        self.readiness
            .set_restoring_partitions(self.round.len() as u64);
    }
}

/// Restores one changelog record into the job reading its partition, if
/// one still needs it.
fn apply(
    jobs: &mut [Job],
    message: &BorrowedMessage<'_>,
    engine: &mut Engine,
    (topic, metrics): (&str, &Metrics),
) {
    let (partition, offset) = (message.partition(), message.offset());
    let found = jobs
        .iter_mut()
        .find(|j| j.partition == partition && j.reading && offset >= j.next);
    let Some(job) = found else {
        return;
    };
    job.next = offset + 1;
    job.records += 1;
    if let Some(index) = target_of(job, message) {
        let report = |error: RecordError, offset: i64| {
            RestoreRecordSkipped {
                reason: error.reason(),
                error: &error,
                topic,
                partition,
                offset,
            }
            .emit(metrics)
        };
        let record = (offset, message.key(), message.payload());
        restore_record(engine, job, index, record, report);
    }
}

/// The engine partition a record is for: its header's input topic among
/// the job's targets, or the first target for a record without one.
fn target_of(job: &Job, message: &BorrowedMessage<'_>) -> Option<u32> {
    let header = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == INPUT_TOPIC_HEADER)
            .and_then(|h| h.value)
    });
    match header {
        None => job.targets.first().map(|(index, _)| *index),
        Some(topic) => job
            .targets
            .iter()
            .find(|(_, t)| t.as_bytes() == topic)
            .map(|(index, _)| *index),
    }
}

/// Restores, holds or releases one record (offset, key, value) of engine
/// partition `index` (see [`held`]); a bad record is skipped and handed to
/// `report` with its offset.
fn restore_record(
    engine: &mut Engine,
    job: &mut Job,
    index: u32,
    (offset, key, value): (i64, Option<&[u8]>, Option<&[u8]>),
    mut report: impl FnMut(RecordError, i64),
) {
    let Some(held) = job
        .held
        .iter_mut()
        .find(|(i, _)| *i == index)
        .map(|(_, h)| h)
    else {
        return;
    };
    let targets = &job.targets;
    let restoring = |held_by: u32| targets.iter().any(|(i, _)| *i == held_by);
    let mut restore = |offset: i64, key: Option<&[u8]>, value: Option<&[u8]>| {
        if let Err(error) = restore_value(engine, index, restoring, key, value) {
            report(error, offset);
        }
    };
    let funnel = key.and_then(funnel_record_topic).is_some();
    if funnel {
        held.release(|offset, key, value| restore(offset, Some(key), value));
        restore(offset, key, value);
    } else if held.holds() {
        held.hold(offset, key.unwrap_or_default(), value);
    } else {
        restore(offset, key, value);
    }
}

/// The records still held at the end of `job`'s pass belong to a drain
/// that was not finished: the engine keeps what the complete drains left
/// and writes it over them with its next drain.
fn supersede_held(job: &mut Job, engine: &mut Engine) {
    let targets = &job.targets;
    for (index, held) in &mut job.held {
        let records = held.len();
        held.drain(|_, key, _| {
            let Ok(id) = std::str::from_utf8(key) else {
                return;
            };
            let elsewhere = engine
                .customer(id)
                .is_some_and(|c| !targets.iter().any(|(i, _)| *i == u32::from(c.partition)));
            if !elsewhere {
                engine.supersede(*index, id);
            }
        });
        if records > 0 {
            tracing::info!(
                partition = job.partition,
                records,
                "Changelog records of an unfinished drain are superseded by the state before it."
            );
        }
    }
}

/// What the restorer does with one changelog record of engine partition
/// `index`, once read: a funnel record goes to [`Engine::restore_funnel`];
/// otherwise the key is checked, and the value (or tombstone) goes to
/// [`Engine::restore`], unless the customer is held here for an
/// engine partition that is not being restored (`restoring` says which
/// are): then the record is older than what is in memory and is ignored.
/// This is all the work a record costs besides reading it from Kafka;
/// `benches/restore.rs` measures it.
pub fn restore_value(
    engine: &mut Engine,
    index: u32,
    restoring: impl Fn(u32) -> bool,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), RecordError> {
    if key.and_then(funnel_record_topic).is_some() {
        // A funnel record is never deleted; an empty value restores nothing.
        return match value {
            Some(value) => Ok(engine.restore_funnel(index, value)?),
            None => Ok(()),
        };
    }
    let key = std::str::from_utf8(key.unwrap_or_default())?;
    if key.is_empty() {
        return Err(RecordError::EmptyKey);
    }
    if let Some(held) = engine.customer(key)
        && !restoring(u32::from(held.partition))
    {
        return Ok(());
    }
    Ok(engine.restore(index, key, value)?)
}

/// Why a changelog record was skipped.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record has no customer id as its key.
    #[error("the record has no key")]
    EmptyKey,
    /// The key is not a customer id.
    #[error(transparent)]
    KeyNotUtf8(#[from] std::str::Utf8Error),
    /// The value is not a state this engine can hold.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

impl RecordError {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            RecordError::EmptyKey | RecordError::KeyNotUtf8(_) => "invalid_key",
            RecordError::Restore(error) => error.reason(),
        }
    }
}

/// The changelog consumer's hooks: reaching the end of a partition is
/// what it is for, not an error to log.
struct RestoreHooks;

type RestoreContext = Context<RestoreHooks>;

impl Hooks for RestoreHooks {
    fn error(&self, _log: &KafkaLog, error: KafkaError, reason: &str) {
        match error {
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(reason, "The changelog consumer reached a partition's end.");
            }
            error => tracing::warn!(%error, reason, "Changelog consumer error."),
        }
    }
}

impl ConsumerHooks for RestoreHooks {}

/// The changelog consumer: the group consumer's connection and security
/// properties, manual assignment, committed records only, never commits.
fn restore_consumer_config(config: &Config) -> ClientConfig {
    let kafka = &config.kafka;
    let mut client = ClientConfig::new();
    for (name, value) in kafka.client_properties(&kafka.consumer_properties) {
        client.set(name, value);
    }
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("client.id", format!("{}-restore", kafka.client_id))
        .set("group.id", format!("{}-restore", kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true");
    client
}
