//! Dense indices for `(topic, partition)` pairs, and how far each was read.
//!
//! The engine knows partitions as small integers; this map hands them out
//! on first sight and keeps them for the life of the process, so a
//! partition that is revoked and later assigned again gets its old index.
//! Lookups by `&str` allocate nothing.

use std::collections::HashMap;

/// `(topic, partition)` <-> engine partition index, plus read positions.
#[derive(Debug, Default)]
pub struct PartitionMap {
    /// Per topic, per Kafka partition number, the index.
    by_topic: HashMap<String, Vec<Option<u32>>>,
    /// Per index, the topic and partition.
    names: Vec<(String, i32)>,
    /// Per index, one past the last offset read since assignment.
    next_offset: Vec<Option<i64>>,
    /// Per index, the first offset read since assignment (or since a
    /// rewind): where reading started.
    first_offset: Vec<Option<i64>>,
    /// Per index, whether the group has it assigned to this instance now.
    owned: Vec<bool>,
}

impl PartitionMap {
    /// The index of `(topic, partition)`, allocated on first sight.
    pub fn index(&mut self, topic: &str, partition: i32) -> u32 {
        let slot = usize::try_from(partition).unwrap_or(0);
        if let Some(&Some(index)) = self.by_topic.get(topic).and_then(|p| p.get(slot)) {
            return index;
        }
        let index = self.names.len() as u32;
        self.names.push((topic.to_owned(), partition));
        self.next_offset.push(None);
        self.first_offset.push(None);
        self.owned.push(false);
        let partitions = self.by_topic.entry(topic.to_owned()).or_default();
        if partitions.len() <= slot {
            partitions.resize(slot + 1, None);
        }
        partitions[slot] = Some(index);
        index
    }

    /// The index of `(topic, partition)` if it has one.
    pub fn find(&self, topic: &str, partition: i32) -> Option<u32> {
        let slot = usize::try_from(partition).ok()?;
        *self.by_topic.get(topic)?.get(slot)?
    }

    /// The topic and partition of an index.
    pub fn name(&self, index: u32) -> Option<(&str, i32)> {
        self.names
            .get(index as usize)
            .map(|(t, p)| (t.as_str(), *p))
    }

    /// A record at `offset` of partition `index` was read.
    pub fn consumed(&mut self, index: u32, offset: i64) {
        let i = index as usize;
        if let Some(next) = self.next_offset.get_mut(i) {
            *next = Some(offset + 1);
        }
        if let Some(first @ None) = self.first_offset.get_mut(i) {
            *first = Some(offset);
        }
    }

    /// The first offset read from partition `index` since its assignment
    /// (or since [`PartitionMap::revoked`]).
    pub fn first_offset(&self, index: u32) -> Option<i64> {
        self.first_offset.get(index as usize).copied().flatten()
    }

    /// The partition was revoked (or is read again from an earlier
    /// offset): it has no read position any more.
    pub fn revoked(&mut self, index: u32) {
        let i = index as usize;
        if let Some(next) = self.next_offset.get_mut(i) {
            *next = None;
        }
        if let Some(first) = self.first_offset.get_mut(i) {
            *first = None;
        }
    }

    /// Partition `index` is assigned to this instance (`true`) or no
    /// longer is (`false`).
    pub fn set_owned(&mut self, index: u32, owned: bool) {
        if let Some(slot) = self.owned.get_mut(index as usize) {
            *slot = owned;
        }
    }

    /// The partitions assigned to this instance.
    pub fn owned(&self) -> impl Iterator<Item = u32> + '_ {
        (self.owned.iter().enumerate()).filter_map(|(i, &owned)| owned.then_some(i as u32))
    }

    /// Whether partition `index` is assigned to this instance.
    pub fn is_owned(&self, index: u32) -> bool {
        self.owned.get(index as usize).copied().unwrap_or(false)
    }

    /// Whether some owned partition has the Kafka partition number
    /// `partition`: changelog partition p belongs to input partitions p.
    pub fn owns_number(&self, partition: i32) -> bool {
        (self.names.iter().zip(&self.owned)).any(|((_, p), &owned)| owned && *p == partition)
    }

    /// The indices of every topic's partition numbered `partition`.
    pub fn numbered(&self, partition: i32) -> impl Iterator<Item = u32> + '_ {
        (self.names.iter().enumerate())
            .filter_map(move |(i, (_, p))| (*p == partition).then_some(i as u32))
    }

    /// `(index, next offset)` of every partition read since its assignment.
    pub fn consumed_positions(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.next_offset
            .iter()
            .enumerate()
            .filter_map(|(i, next)| next.map(|n| (i as u32, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_stable() {
        let mut map = PartitionMap::default();
        assert_eq!(map.index("a", 3), 0);
        assert_eq!(map.index("b", 0), 1);
        assert_eq!(map.index("a", 3), 0);
        assert_eq!(map.name(1), Some(("b", 0)));
        assert_eq!(
            (map.find("b", 0), map.find("b", 1), map.find("c", 0)),
            (Some(1), None, None)
        );
        assert!(!map.is_owned(1) && !map.owns_number(0));
        map.set_owned(1, true);
        assert!(map.is_owned(1) && map.owns_number(0) && !map.owns_number(3));
        map.index("b", 3);
        assert_eq!(map.numbered(3).collect::<Vec<_>>(), [0, 2]);
        map.consumed(0, 41);
        map.consumed(0, 44);
        assert_eq!(map.consumed_positions().collect::<Vec<_>>(), [(0, 45)]);
        assert_eq!(map.first_offset(0), Some(41));
        map.revoked(0);
        assert_eq!(map.consumed_positions().count(), 0);
        assert_eq!(map.first_offset(0), None);
        assert_eq!(
            map.index("a", 3),
            0,
            "a partition assigned again keeps its index"
        );
    }
}
