//! A stand-in for the service around the engine's changelog API: the
//! compacted changelog topic as a map, offset commits carrying the
//! partition's newest event time, and a restart from both.

use std::collections::BTreeMap;

use journeyd::config::Config;
use journeyd::engine::{Checkpoint, Engine};
use journeyd::model::{EventTime, Output};

use super::streams::Read;

/// The changelog topic after compaction: the latest value per customer id,
/// with the partition it was written to.
pub type Changelog = BTreeMap<String, (u32, Vec<u8>)>;

/// What the service commits per partition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Commit {
    /// The offset to read from after a restart.
    pub offset: i64,
    /// Where the partition's event time stood (in the commit's metadata).
    pub checkpoint: Option<Checkpoint>,
}

/// Commits per partition.
pub type Commits = BTreeMap<u32, Commit>;

/// Feeds one read to the engine.
pub fn ingest(engine: &mut Engine, read: &Read, out: &mut Vec<Output>) {
    engine.ingest_at(
        read.partition,
        read.offset,
        &read.ev.touchpoint(),
        EventTime(0),
        out,
    );
}

/// Takes the engine's changes into the changelog; returns the drained keys
/// in order, each with whether it was a tombstone.
pub fn drain(engine: &mut Engine, changelog: &mut Changelog) -> Vec<(String, bool)> {
    let mut keys = Vec::new();
    engine.take_dirty(|change| {
        let key = change.customer_id.to_owned();
        keys.push((key.clone(), change.value.is_none()));
        match change.value {
            Some(value) => changelog.insert(key, (change.partition, value.to_vec())),
            None => changelog.remove(&key),
        };
    });
    keys
}

/// What the service commits after a drain, having read `reads`: per
/// partition the lowest offset still buffered, or else the next to read.
pub fn checkpoint(engine: &Engine, reads: &[Read]) -> Commits {
    let mut commits = Commits::new();
    for read in reads {
        let next = read.offset + 1;
        let commit = commits.entry(read.partition).or_insert(Commit {
            offset: next,
            checkpoint: None,
        });
        commit.offset = commit.offset.max(next);
    }
    for (&partition, commit) in &mut commits {
        if let Some(low) = engine.buffered_low(partition) {
            commit.offset = commit.offset.min(low);
        }
        commit.checkpoint = engine.checkpoint(partition, EventTime(0));
    }
    commits
}

/// A new engine with `changelog` restored and the committed partitions resumed.
pub fn restart(config: &Config, changelog: &Changelog, commits: &Commits) -> Engine {
    let mut engine = Engine::new(config).unwrap();
    engine.track_changes(true);
    for &partition in commits.keys() {
        engine.assign(partition, EventTime(0));
    }
    for (id, (partition, value)) in changelog {
        engine
            .restore(*partition, id, Some(value))
            .expect("the engine reads its own changelog");
    }
    engine.resume(
        commits
            .iter()
            .filter_map(|(&p, c)| c.checkpoint.map(|cp| (p, cp))),
    );
    engine
}

/// The reads a restarted engine gets: each partition from its commit.
pub fn reread<'a>(reads: &'a [Read], commits: &'a Commits) -> impl Iterator<Item = &'a Read> {
    reads.iter().filter(|r| {
        let from = commits.get(&r.partition).map_or(0, |c| c.offset);
        r.offset >= from
    })
}

/// Identifies a per-customer output: topic, customer, sequence.
pub type OutputKey = (&'static str, String, u64);

/// The per-customer outputs, as JSON, in order. Funnel windows aggregate
/// every customer of an instance, are not customer state, and are left out.
pub fn customer_outputs(outputs: &[Output]) -> Vec<(OutputKey, String)> {
    outputs
        .iter()
        .filter_map(|o| {
            let key = match o {
                Output::StageChanged(s) => ("stage", s.customer_id.to_string(), s.sequence),
                Output::ChurnRiskChanged(c) => ("churn", c.customer_id.to_string(), c.sequence),
                Output::FunnelWindow(_) => return None,
            };
            Some((key, serde_json::to_string(o).unwrap()))
        })
        .collect()
}

/// What matters of every customer held, by id.
pub fn summary(engine: &Engine) -> BTreeMap<String, [i64; 6]> {
    engine
        .customers()
        .map(|c| {
            let fields = [
                i64::from(c.stage),
                i64::from(c.stage_seq),
                i64::from(c.churn_seq),
                i64::from(c.touchpoints),
                i64::from(c.purchases),
                c.last_seen.millis(),
            ];
            (c.id.to_string(), fields)
        })
        .collect()
}
