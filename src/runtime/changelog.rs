//! Writing customer state to the changelog topic, and the commit checkpoint
//! that goes with each offset commit (docs/guarantees.md#write-order, at-least-once).
//!
//! # The write path
//!
//! Once per commit interval the pipeline *captures* a drain: the engine's
//! changed customers ([`Engine::take_dirty`]: one record per customer, its
//! encoded state or a tombstone) are copied into a reused buffer, together
//! with every read partition's commit position and [`Checkpoint`], and the
//! id of the next output as the drain's *barrier*. The drain is *sent*
//! once every output below the barrier is acknowledged: each record goes
//! to changelog partition p for input partition p, keyed by customer id,
//! through the same producer and the same commit tracker as the derived
//! outputs; then the positions are handed to the tracker as one
//! checkpoint, which becomes committable (with the checkpoints in the
//! commit metadata) once the changelog records are acknowledged too.
//!
//! ```text
//! capture D: take_dirty ─► buffer, positions P, barrier B = next output id
//!   ... processing goes on ...
//! outputs < B all acked ─► send D's records (ids B'..B'') ─► tracker.checkpoint(P)
//! outputs < B'' all acked ─► commit P (offsets + checkpoints)
//! ```
//!
//! # Why a kill -9 at any instant loses nothing and applies nothing twice
//!
//! 1. *A state is written only after the outputs it reflects.* D's records
//!    encode states that have emitted exactly the outputs below B; they
//!    are sent only when those are acknowledged. So whatever subset of
//!    changelog records a crash leaves behind, every derived event a
//!    stored state reflects is in Kafka. (Sending them together would not
//!    do: the producer orders records within a partition only, and a
//!    state could land while an output it reflects is lost.)
//! 2. *An offset is committed only after the states covering it.* The
//!    positions P of D become committable once D's records and every
//!    output before them are acknowledged. Every touchpoint below P's
//!    offset was applied before D (the offset is at most the lowest one
//!    still in the reorder buffer), and every customer that changed before
//!    D is in D or in an earlier drain. So after a crash, the committed
//!    offsets' effects are all in the changelog.
//! 3. *Reading again is idempotent.* A restart restores each customer from
//!    its newest changelog record (from D or a later drain that was
//!    partly written) and reads again from the committed offset. Each
//!    state carries its fence (the newest offset it ingested) and the
//!    offsets it still had buffered: a touchpoint the state has applied is
//!    skipped, one it had not is applied (see [`crate::engine::changelog`]).
//!    So no touchpoint is applied twice, and none is lost.
//! 4. *What is repeated is identical.* A touchpoint applied again after a
//!    crash starts from the state the changelog holds, which is the state
//!    it met the first time, so the outputs it derives carry the same
//!    sequence numbers and the same content (in `event` time mode byte for
//!    byte; in `hybrid` mode `detected_at` is the new wall time). A
//!    consumer de-duplicates by `(customer_id, sequence)`.
//!
//! 5. *Funnel windows are state too.* Each drain ends, per input
//!    partition, with the partition's funnel record: its share of the open
//!    windows ([`crate::engine::funnel`]). Its records go to one changelog
//!    partition in the order captured, through an idempotent producer, so
//!    the log holds a prefix of them: a funnel record there means the
//!    partition's customers of its drain are there too. A restore takes the
//!    records up to a partition's last funnel record and supersedes the
//!    ones after it ([`super::restore`]), so the windows it restores count
//!    exactly the touchpoints the restored customers will not apply again.
//!    A drain is sent only once the one before it is acknowledged, so only
//!    the last drain can be incomplete.
//!
//! A funnel record's key is [`FUNNEL_KEY_PREFIX`] and the input topic's
//! name: one record per input partition, kept by compaction, and never a
//! customer id, which is UTF-8 (the prefix's first byte never occurs in
//! UTF-8). Its value names this process as its writer
//! ([`Engine::set_writer`]).
//!
//! One drain is in flight at a time: while D waits for its barrier, the
//! next interval captures nothing, and the engine keeps collecting changes
//! (one entry per customer), so each customer gets at most one changelog
//! record per commit interval.
//!
//! A record the producer refuses outright (not a full queue: a partition
//! or topic that does not exist) cannot be made durable; its input
//! partition stops committing until it is revoked or journeyd restarts,
//! which start-up refuses with a partition count mismatch. Lag alerts
//! then show it, and nothing is lost.

use std::ops::Range;

use rdkafka::message::{Header, OwnedHeaders};

use crate::clock::Stopwatch;
use crate::engine::{Checkpoint, Engine};
use crate::model::EventTime;
use crate::runtime::acks::{CommitTracker, OutputId, Position};
use crate::sink::kafka::{Outgoing, OutputMeta, Sink};
use crate::telemetry::Metrics;
use crate::telemetry::events::{InternalEvent, OutputDeliveryFailed};

use super::partitions::PartitionMap;

/// The header naming the input topic a changelog record's customer was
/// read from, so that a restore gives the customer to the right input
/// partition when several input topics share a changelog partition.
pub const INPUT_TOPIC_HEADER: &str = "journeyd.input.topic";

/// The start of a funnel record's key; the input topic's name follows.
/// A customer id never starts with it: byte `0xff` is not UTF-8.
pub const FUNNEL_KEY_PREFIX: &[u8] = b"\xffjourneyd.funnel/";

/// What the commit tracker carries with each checkpointed offset.
pub type CommitMeta = Option<Checkpoint>;

/// One customer's record in a captured drain, as ranges of the drain's
/// byte buffer.
#[derive(Clone, Debug)]
struct Record {
    /// The engine partition (input topic and partition) it belongs to.
    input: u32,
    /// The customer id; empty for a funnel record.
    key: Range<usize>,
    /// A funnel record: its key is made from the input topic when sent.
    funnel: bool,
    /// The encoded state; `None` for a tombstone.
    value: Option<Range<usize>>,
}

/// The changelog side of the pipeline: the captured drain waiting for its
/// barrier, and partitions that can no longer commit. See the module docs.
#[derive(Debug)]
pub struct ChangelogWriter {
    /// `runtime.changelog_topic`.
    topic: String,
    /// Whether a captured drain waits to be sent.
    pending: bool,
    /// Outputs below this id must be acknowledged before the drain is sent.
    barrier: OutputId,
    /// The drain's records; reused.
    records: Vec<Record>,
    /// Keys and values of the records, back to back; reused.
    bytes: Vec<u8>,
    /// Commit positions and checkpoints taken with the drain; reused.
    positions: Vec<(Position, CommitMeta)>,
    /// Per engine partition: a changelog record of it was refused, so its
    /// offsets are not committed any more.
    stuck: Vec<bool>,
    /// This process's id on the funnel records it writes.
    writer: u64,
    /// The key of the funnel record being sent; reused.
    funnel_key: Vec<u8>,
}

impl ChangelogWriter {
    /// The changelog topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A writer to `topic`.
    pub fn new(topic: &str) -> ChangelogWriter {
        ChangelogWriter {
            topic: topic.to_owned(),
            pending: false,
            barrier: 0,
            records: Vec::new(),
            bytes: Vec::new(),
            positions: Vec::new(),
            stuck: Vec::new(),
            writer: writer_id(),
            funnel_key: Vec::new(),
        }
    }

    /// Whether a captured drain waits for its barrier.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Captures a drain: the engine's changes, the commit `positions` of the
    /// read partitions with their checkpoints at wall time `wall`, and the
    /// `barrier` (the id of the next output). Does nothing while another
    /// drain is pending. Returns the records captured.
    pub fn capture(
        &mut self,
        engine: &mut Engine,
        positions: impl Iterator<Item = Position>,
        barrier: OutputId,
        wall: EventTime,
    ) -> usize {
        if self.pending {
            return 0;
        }
        self.records.clear();
        self.bytes.clear();
        engine.set_writer(self.writer);
        let (records, bytes) = (&mut self.records, &mut self.bytes);
        let taken = engine.take_dirty(|change| {
            let id = change.customer_id().unwrap_or_default();
            let key = append(bytes, id.as_bytes());
            let value = change.value.map(|v| append(bytes, v));
            records.push(Record {
                input: change.partition,
                key,
                funnel: change.customer_id().is_none(),
                value,
            });
        });
        self.positions.clear();
        for position in positions {
            if !self.is_stuck(position.partition) {
                let checkpoint = engine.checkpoint(position.partition, wall);
                self.positions.push((position, checkpoint));
            }
        }
        self.barrier = barrier;
        self.pending = true;
        taken
    }

    /// Sends the pending drain if every output below its barrier is
    /// acknowledged, then hands its positions to `tracker` as a checkpoint.
    /// Returns whether it was sent.
    pub fn send_ready(
        &mut self,
        tracker: &mut CommitTracker<CommitMeta>,
        sink: &Sink,
        partitions: &PartitionMap,
        metrics: &Metrics,
    ) -> bool {
        if !self.pending || !tracker.settled_before(self.barrier) {
            return false;
        }
        self.send_records(tracker, sink, partitions, metrics);
        let stuck = &self.stuck;
        let positions = self.positions.drain(..);
        tracker.checkpoint_with(positions.filter(|(p, _)| !is_stuck(stuck, p.partition)));
        self.pending = false;
        true
    }

    /// Exactly-once mode: sends the pending drain at once, into the open
    /// transaction, which makes its records visible together with the
    /// outputs before it, or none of them. Its positions are not handed
    /// to the tracker: the transaction carries the offsets.
    pub fn send_now(
        &mut self,
        tracker: &mut CommitTracker<CommitMeta>,
        sink: &Sink,
        partitions: &PartitionMap,
        metrics: &Metrics,
    ) {
        if self.pending {
            self.send_records(tracker, sink, partitions, metrics);
            self.positions.clear();
            self.pending = false;
        }
    }

    /// Sends every record of the pending drain.
    fn send_records(
        &mut self,
        tracker: &mut CommitTracker<CommitMeta>,
        sink: &Sink,
        partitions: &PartitionMap,
        metrics: &Metrics,
    ) {
        for i in 0..self.records.len() {
            let record = self.records[i].clone();
            self.send(&record, tracker, sink, partitions, metrics);
        }
    }

    /// Sends one record of the pending drain.
    fn send(
        &mut self,
        record: &Record,
        tracker: &mut CommitTracker<CommitMeta>,
        sink: &Sink,
        partitions: &PartitionMap,
        metrics: &Metrics,
    ) {
        let Some((input_topic, partition)) = partitions.name(record.input) else {
            tracing::error!(
                partition = record.input,
                "A changed customer belongs to no known partition; its state is not written."
            );
            return;
        };
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: INPUT_TOPIC_HEADER,
            value: Some(input_topic),
        });
        let id = tracker.sent();
        let meta = Box::new(OutputMeta {
            id,
            event_time: None,
            polled: Stopwatch::start(),
        });
        let key = if record.funnel {
            self.funnel_key.clear();
            self.funnel_key.extend_from_slice(FUNNEL_KEY_PREFIX);
            self.funnel_key.extend_from_slice(input_topic.as_bytes());
            &self.funnel_key[..]
        } else {
            &self.bytes[record.key.clone()]
        };
        let out = Outgoing {
            topic: &self.topic,
            partition: Some(partition),
            key: Some(key),
            payload: record.value.clone().map(|v| &self.bytes[v]),
            headers: Some(headers),
        };
        if let Err(error) = sink.send_record(out, meta) {
            OutputDeliveryFailed {
                topic: &self.topic,
                error: &error,
            }
            .emit(metrics);
            tracing::error!(
                %error,
                topic = self.topic.as_str(),
                partition,
                input_topic,
                "The producer refused a changelog record; the input partition stops committing."
            );
            tracker.acked(id);
            self.set_stuck(record.input);
        }
    }

    /// `partition` was revoked: its records and position in the pending
    /// drain are dropped (its changelog belongs to the next owner now,
    /// who reads from the last commit), and it may commit again when
    /// assigned again.
    pub fn forget_partition(&mut self, partition: u32) {
        self.records.retain(|r| r.input != partition);
        self.positions.retain(|(p, _)| p.partition != partition);
        if let Some(stuck) = self.stuck.get_mut(partition as usize) {
            *stuck = false;
        }
    }

    /// Whether a changelog record of `partition` was refused, so that its
    /// offsets are not committed any more.
    pub fn is_stuck(&self, partition: u32) -> bool {
        is_stuck(&self.stuck, partition)
    }

    fn set_stuck(&mut self, partition: u32) {
        let i = partition as usize;
        if self.stuck.len() <= i {
            self.stuck.resize(i + 1, false);
        }
        self.stuck[i] = true;
    }
}

fn is_stuck(stuck: &[bool], partition: u32) -> bool {
    stuck.get(partition as usize).copied().unwrap_or(false)
}

/// An id for this process's funnel records: its start time and process
/// id, so that two processes of a group never share one.
fn writer_id() -> u64 {
    let started = crate::clock::wall_now().0 as u64;
    started ^ (u64::from(std::process::id()) << 44)
}

/// The input topic a changelog key is the funnel record of, if it is one.
pub fn funnel_record_topic(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(FUNNEL_KEY_PREFIX)
}

/// Appends `data` to `bytes`; returns where it is.
fn append(bytes: &mut Vec<u8>, data: &[u8]) -> Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(data);
    start..bytes.len()
}

/// The prefix of a checkpoint in the offset commit's metadata, with the
/// format version.
const METADATA_PREFIX: &str = "journeyd/1 ";

/// A checkpoint as offset commit metadata:
/// `journeyd/1 <max_seen ms> <committed_at ms>`.
pub fn encode_checkpoint(checkpoint: &Checkpoint) -> String {
    format!(
        "{METADATA_PREFIX}{} {}",
        checkpoint.max_seen.0, checkpoint.committed_at.0
    )
}

/// The checkpoint in an offset commit's metadata; `None` for metadata
/// journeyd did not write (empty, or another tool's).
pub fn decode_checkpoint(metadata: &str) -> Option<Checkpoint> {
    let rest = metadata.strip_prefix(METADATA_PREFIX)?;
    let (max_seen, committed_at) = rest.split_once(' ')?;
    Some(Checkpoint {
        max_seen: EventTime(max_seen.parse().ok()?),
        committed_at: EventTime(committed_at.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_survive_the_commit_metadata() {
        let checkpoint = Checkpoint {
            max_seen: EventTime(1_767_225_600_000),
            committed_at: EventTime(-5),
        };
        let text = encode_checkpoint(&checkpoint);
        assert_eq!(text, "journeyd/1 1767225600000 -5");
        assert_eq!(decode_checkpoint(&text), Some(checkpoint));
    }

    #[test]
    fn foreign_metadata_is_no_checkpoint() {
        for metadata in [
            "",
            "journeyd/1",
            "journeyd/1 12",
            "journeyd/1 a b",
            "journeyd/2 1 2",
            "1 2",
        ] {
            assert_eq!(decode_checkpoint(metadata), None, "{metadata:?}");
        }
    }

    #[test]
    fn appended_ranges_point_at_their_bytes() {
        let mut bytes = Vec::new();
        let a = append(&mut bytes, b"ann");
        let b = append(&mut bytes, b"\x01\x02");
        assert_eq!((&bytes[a], &bytes[b]), (&b"ann"[..], &b"\x01\x02"[..]));
    }
}
