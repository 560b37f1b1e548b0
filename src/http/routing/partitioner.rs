//! The partition of a customer id, computed the way the producer of the
//! touchpoints partitions its keys.
//!
//! journeyd assumes the touchpoints and its own erasure requests are keyed
//! by customer id and partitioned alike (docs/erasure.md#partitioning-the-erasure-topic):
//! by the partitioner its producer is configured with
//! (`kafka.producer_properties.partitioner`, librdkafka's default
//! `consistent_random` when unset). Every partitioner librdkafka offers that
//! depends on the key alone is here; for a non-empty key the `_random`
//! variants are their plain namesakes (they differ only for empty keys,
//! which no customer id is). `random` ignores the key: configuration
//! validation refuses it.

/// A key partitioner of librdkafka (and, for `murmur2`, of the Java client's
/// default partitioner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioner {
    /// `consistent` and `consistent_random` (librdkafka's default): CRC-32
    /// of the key, modulo the partition count.
    Crc32,
    /// `murmur2` and `murmur2_random`: the Java client's default.
    Murmur2,
    /// `fnv1a` and `fnv1a_random`: Sarama's (Go) hash partitioner.
    Fnv1a,
}

/// The values of librdkafka's `partitioner` property journeyd can follow.
pub const KEYED_PARTITIONERS: [&str; 6] = [
    "consistent_random",
    "consistent",
    "murmur2_random",
    "murmur2",
    "fnv1a_random",
    "fnv1a",
];

impl Partitioner {
    /// The partitioner librdkafka's `partitioner` property names (`None`:
    /// the property is unset, librdkafka's default); `None` for one that
    /// does not partition by key alone (`random`) or is unknown.
    pub fn from_property(value: Option<&str>) -> Option<Partitioner> {
        match value.unwrap_or("consistent_random") {
            "consistent_random" | "consistent" => Some(Partitioner::Crc32),
            "murmur2_random" | "murmur2" => Some(Partitioner::Murmur2),
            "fnv1a_random" | "fnv1a" => Some(Partitioner::Fnv1a),
            _ => None,
        }
    }

    /// The partition of `key` among `partitions` (at least 1).
    pub fn partition(self, key: &[u8], partitions: u32) -> u32 {
        let hash = match self {
            Partitioner::Crc32 => crc32(key),
            Partitioner::Murmur2 => murmur2(key) & 0x7fff_ffff,
            Partitioner::Fnv1a => fnv1a(key),
        };
        hash % partitions.max(1)
    }
}

/// CRC-32 (IEEE 802.3, reflected; zlib's and librdkafka's `rd_crc32`).
/// Bitwise: keys are short and this runs once per request, not per event.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// MurmurHash2 as the Java client's `Utils.murmur2` and librdkafka's
/// `rd_murmur2` compute it (seed `0x9747b28c`, little-endian words).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // The length is taken as a 32-bit int, as the Java client does.
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// 32-bit FNV-1a, then made non-negative as a signed integer, as
/// librdkafka's `rd_fnv1a` does (to match Sarama).
fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &byte in data {
        h ^= u32::from(byte);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h as i32).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"c-42"), 0x4BBF_F035);
    }

    #[test]
    fn murmur2_matches_the_java_clients_vectors() {
        // From the Java client's UtilsTest.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key) as i32, expected, "{key:?}");
        }
    }

    #[test]
    fn every_keyed_property_value_is_known_and_random_is_not() {
        for name in KEYED_PARTITIONERS {
            assert!(Partitioner::from_property(Some(name)).is_some(), "{name}");
        }
        assert_eq!(Partitioner::from_property(None), Some(Partitioner::Crc32));
        assert_eq!(Partitioner::from_property(Some("random")), None);
        assert_eq!(Partitioner::from_property(Some("crc32")), None);
    }

    #[test]
    fn partitions_are_within_the_count() {
        for partitioner in [Partitioner::Crc32, Partitioner::Murmur2, Partitioner::Fnv1a] {
            for n in 1..20u32 {
                let key = format!("customer-{n}");
                assert!(partitioner.partition(key.as_bytes(), n) < n);
            }
            assert_eq!(partitioner.partition(b"x", 0), 0, "no partitions: 0");
        }
    }
}
