//! A realistic state changelog, for the restore benchmarks: the generator's
//! stream through an engine, its customers taken as the service writes
//! them.
//!
//! Every valid generated touchpoint goes to the engine as `journeyd run`
//! would hand it over: from the input partition its customer id hashes to,
//! at that partition's next offset. Then every customer's state is taken
//! with [`Engine::take_dirty`], one record per customer as after a
//! compaction: stage, sequences, purchases, windowed signals, the
//! de-duplication ring, the fence and the touchpoints still waiting for the
//! watermark, encoded in the changelog format of
//! [`crate::engine::snapshot`]. Keys and values are kept back to back in
//! one buffer, as a consumer's fetch holds them.
//!
//! The same generator config always gives the same records.

use std::hash::BuildHasher;
use std::ops::Range;

use crate::config::{Config, ConfigError};
use crate::engine::{Change, Engine, RecordKey};
use crate::model::Output;
use crate::tools::{GeneratedRecord, Generator, GeneratorConfig};

/// Seed of the hash that spreads customers over partitions.
const PARTITION_SEED: u64 = 0x6368_616e_6765_6c6f;

/// One record: where its key and value are in the buffer.
#[derive(Clone, Debug)]
struct Entry {
    /// The input (and changelog) partition.
    partition: u32,
    /// The customer id.
    key: Range<usize>,
    /// The encoded state; `None` for a tombstone.
    value: Option<Range<usize>>,
}

/// A generated changelog; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct GeneratedChangelog {
    /// Keys and values, back to back.
    bytes: Vec<u8>,
    /// The records, in the order the engine yielded them.
    entries: Vec<Entry>,
    /// Valid touchpoints fed to the engine.
    touchpoints: u64,
}

impl GeneratedChangelog {
    /// Feeds the stream of `generator` to an engine configured by `config`,
    /// its customers spread over `partitions` input partitions (at least
    /// one), and takes the changelog records of every customer.
    pub fn build(
        config: &Config,
        generator: GeneratorConfig,
        partitions: u32,
    ) -> Result<GeneratedChangelog, ConfigError> {
        let partitions = partitions.max(1);
        let mut engine = Engine::new(config)?;
        engine.track_changes(true);
        for p in 0..partitions {
            engine.assign(p, generator.start);
        }
        let spread = foldhash::fast::FixedState::with_seed(PARTITION_SEED);
        let mut offsets = vec![0i64; partitions as usize];
        let mut out: Vec<Output> = Vec::new();
        let mut touchpoints = 0;
        for record in Generator::new(generator) {
            let GeneratedRecord::Valid(event) = record else {
                continue;
            };
            let p = (spread.hash_one(event.customer_id.as_str()) % u64::from(partitions)) as u32;
            let offset = &mut offsets[p as usize];
            let tp = event.touchpoint();
            engine.ingest_at(p, *offset, &tp, tp.occurred_at, &mut out);
            *offset += 1;
            touchpoints += 1;
            out.clear();
        }
        let mut changelog = GeneratedChangelog {
            touchpoints,
            ..GeneratedChangelog::default()
        };
        engine.take_dirty(|change| changelog.push(change));
        Ok(changelog)
    }

    /// Keeps a customer's record; the partitions' funnel records are
    /// left out (one per partition, nothing a restore spends time on).
    fn push(&mut self, change: Change<'_>) {
        let Some(id) = change.customer_id() else {
            return;
        };
        let key = self.append(id.as_bytes());
        let value = change.value.map(|v| self.append(v));
        self.entries.push(Entry {
            partition: change.partition,
            key,
            value,
        });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// The records, in log order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Change<'_>> + '_ {
        self.entries.iter().map(|e| Change {
            // Keys are copied from customer ids: UTF-8 by construction.
            key: RecordKey::Customer(
                std::str::from_utf8(&self.bytes[e.key.clone()]).unwrap_or_default(),
            ),
            partition: e.partition,
            value: e.value.clone().map(|v| &self.bytes[v]),
        })
    }

    /// Number of records (one per customer).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Valid touchpoints the engine was fed.
    pub fn touchpoints(&self) -> u64 {
        self.touchpoints
    }

    /// Bytes of every key.
    pub fn key_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.key.len()).sum()
    }

    /// Bytes of every value.
    pub fn value_bytes(&self) -> usize {
        self.entries
            .iter()
            .filter_map(|e| e.value.as_ref())
            .map(Range::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeMode;
    use crate::engine::snapshot;

    #[test]
    fn one_decodable_record_per_customer_restores_every_customer() {
        let mut config = Config::default();
        config.time.mode = TimeMode::Event;
        let generator = GeneratorConfig {
            customers: 300,
            seed: 3,
            ..GeneratorConfig::default()
        };
        let changelog = GeneratedChangelog::build(&config, generator, 4).unwrap();
        assert_eq!(changelog.len(), 300);
        assert!(changelog.touchpoints() > 300 * 5);
        let mut ids: Vec<&str> = changelog.iter().filter_map(|c| c.customer_id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 300);
        let states: Vec<_> = changelog
            .iter()
            .map(|c| snapshot::decode(c.value.unwrap()).unwrap())
            .collect();
        assert!(states.iter().any(|s| s.purchases > 0));
        assert!(states.iter().all(|s| s.fence.is_some()));
        assert!(changelog.iter().all(|c| c.partition < 4));

        let mut engine = Engine::new(&config).unwrap();
        for c in changelog.iter() {
            let id = c.customer_id().unwrap();
            engine.restore(c.partition, id, c.value).unwrap();
        }
        assert_eq!(engine.tracked_customers(), 300);
    }
}
