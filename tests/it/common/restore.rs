//! A stand-in for the service around the engine's changelog API: the
//! compacted changelog topic as a map (or, where the order of records
//! matters, as a log), offset commits carrying the partition's newest
//! event time, and a restart from both.

use std::collections::BTreeMap;

use journeyd::config::Config;
use journeyd::engine::{Change, Checkpoint, Engine};
use journeyd::model::{EventTime, FunnelWindow, Output};

use super::streams::Read;

/// The changelog topic after compaction: the latest value per customer id,
/// with the partition it was written to, and each partition's latest
/// funnel record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changelog {
    pub customers: BTreeMap<String, (u32, Vec<u8>)>,
    pub funnel: BTreeMap<u32, Vec<u8>>,
}

impl Changelog {
    pub fn new() -> Changelog {
        Changelog::default()
    }

    /// Writes one record over what the topic holds for its key.
    pub fn apply(&mut self, record: &Record) {
        match (&record.key, &record.value) {
            (Some(id), Some(value)) => {
                self.customers
                    .insert(id.clone(), (record.partition, value.clone()));
            }
            (Some(id), None) => {
                self.customers.remove(id);
            }
            (None, Some(value)) => {
                self.funnel.insert(record.partition, value.clone());
            }
            (None, None) => {}
        }
    }

    /// Restores every record into `engine` (its partitions assigned).
    pub fn restore_into(&self, engine: &mut Engine) {
        for (id, (partition, value)) in &self.customers {
            engine
                .restore(*partition, id, Some(value))
                .expect("the engine reads its own changelog");
        }
        for (partition, value) in &self.funnel {
            engine
                .restore_funnel(*partition, value)
                .expect("the engine reads its own funnel records");
        }
    }
}

/// One changelog record as written: a customer's (`key` = id) or a
/// partition's funnel record (`key` = `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub partition: u32,
    pub key: Option<String>,
    pub value: Option<Vec<u8>>,
}

impl Record {
    fn of(change: &Change<'_>) -> Record {
        Record {
            partition: change.partition,
            key: change.customer_id().map(str::to_owned),
            value: change.value.map(<[u8]>::to_vec),
        }
    }
}

/// One drain's records, in the order the engine gives them.
pub fn drain_records(engine: &mut Engine) -> Vec<Record> {
    let mut records = Vec::new();
    engine.take_dirty(|change| records.push(Record::of(&change)));
    records
}

/// Restores a changelog log (every record written, in order) as the
/// service does: per partition, the records up to its last funnel record
/// in order, and the ones after it (a drain not completely written) are
/// superseded instead.
pub fn restore_log(engine: &mut Engine, log: &[Record]) {
    let mut last_funnel: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, record) in log.iter().enumerate() {
        if record.key.is_none() {
            last_funnel.insert(record.partition, i);
        }
    }
    for (i, record) in log.iter().enumerate() {
        let complete = last_funnel
            .get(&record.partition)
            .is_none_or(|&last| i <= last);
        match (&record.key, &record.value) {
            (Some(id), value) if complete => engine
                .restore(record.partition, id, value.as_deref())
                .expect("the engine reads its own changelog"),
            (Some(id), _) => engine.supersede(record.partition, id),
            (None, Some(value)) => engine
                .restore_funnel(record.partition, value)
                .expect("the engine reads its own funnel records"),
            (None, None) => {}
        }
    }
}

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

/// The wall clock while the tests read: after every touchpoint's stamp
/// (a backlog read after the fact), so that in hybrid mode none is ahead
/// of it and each counts in full for its partition's time.
pub const READ_AT: EventTime = EventTime(super::BASE.0 + 1_000 * super::DAY);

/// Feeds one read to the engine, at [`READ_AT`].
pub fn ingest(engine: &mut Engine, read: &Read, out: &mut Vec<Output>) {
    engine.ingest_at(
        read.partition,
        read.offset,
        &read.ev.touchpoint(),
        READ_AT,
        out,
    );
}

/// Takes the engine's changes into the changelog; returns the drained
/// customers' keys in order, each with whether it was a tombstone.
pub fn drain(engine: &mut Engine, changelog: &mut Changelog) -> Vec<(String, bool)> {
    let mut keys = Vec::new();
    for record in drain_records(engine) {
        if let Some(key) = &record.key {
            keys.push((key.clone(), record.value.is_none()));
        }
        changelog.apply(&record);
    }
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
    changelog.restore_into(&mut engine);
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

/// The per-customer outputs, as JSON, in order; funnel windows are not
/// per customer and are left out ([`funnel_windows`] has them).
pub fn customer_outputs(outputs: &[Output]) -> Vec<(OutputKey, String)> {
    outputs
        .iter()
        .filter_map(|o| {
            let key = match o {
                Output::StageChanged(s) => ("stage", s.customer_id.to_string(), s.sequence),
                Output::ChurnRiskChanged(c) => ("churn", c.customer_id.to_string(), c.sequence),
                Output::FunnelWindow(_) => return None,
                Output::MomentCompleted(m) | Output::MomentAbandoned(m) => {
                    ("moment", m.customer_id.to_string(), m.sequence)
                }
                Output::CustomerEvicted(e) => {
                    ("evicted", e.customer_id.to_string(), e.evicted_at as u64)
                }
                Output::CustomerErased(e) => {
                    ("erased", e.customer_id.to_string(), e.requested_at as u64)
                }
            };
            Some((key, serde_json::to_string(o).unwrap()))
        })
        .collect()
}

/// The funnel windows, by start, as JSON without their sequence (which
/// counts one instance's windows since its start). A window emitted twice
/// (at-least-once mode, after a restart) must be emitted the same.
pub fn funnel_windows<'a>(
    runs: impl IntoIterator<Item = &'a [Output]>,
) -> Result<BTreeMap<i64, String>, String> {
    windows_by_start(runs, |_| true)
}

/// [`funnel_windows`] without their late counts (and without the windows
/// that held nothing else): which window counts a late touchpoint depends
/// on how far the instance had closed windows when it came, which a
/// restart does not always repeat.
pub fn funnel_counts<'a>(
    runs: impl IntoIterator<Item = &'a [Output]>,
) -> Result<BTreeMap<i64, String>, String> {
    windows_by_start(runs, |w| {
        w.late_events = 0;
        let pairs = w.pairs.iter().map(|p| p.conversions + p.dropoffs);
        let counts = w.entries.iter().map(|e| e.count).chain(pairs);
        counts.sum::<u64>() + w.active_customers > 0 || w.revenue != 0.0
    })
}

fn windows_by_start<'a>(
    runs: impl IntoIterator<Item = &'a [Output]>,
    keep: impl Fn(&mut FunnelWindow) -> bool,
) -> Result<BTreeMap<i64, String>, String> {
    let mut windows = BTreeMap::new();
    for outputs in runs {
        for output in outputs {
            let Output::FunnelWindow(w) = output else {
                continue;
            };
            let mut w = w.clone();
            w.sequence = 0;
            if !keep(&mut w) {
                continue;
            }
            let json = serde_json::to_string(&w).unwrap();
            if let Some(before) = windows.insert(w.window_start, json.clone())
                && before != json
            {
                return Err(format!(
                    "window emitted twice, differently:\n{before}\n{json}"
                ));
            }
        }
    }
    Ok(windows)
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
