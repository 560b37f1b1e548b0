//! The Kafka consumer protocol's `Assignment`, as a group's description
//! carries each member's: only the partitions of one topic are read.

/// A member assignment that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed consumer protocol assignment at byte {0}")]
pub struct MalformedAssignment(usize);

/// The partitions of `topic` in a member's assignment, as the group's
/// description carries it: the Kafka consumer protocol's `Assignment`
/// (every version so far: `int16` version, an array of `(string topic,
/// array of int32 partition)`, then user data, which is not read).
pub fn assigned_partitions(bytes: &[u8], topic: &str) -> Result<Vec<i32>, MalformedAssignment> {
    let mut reader = Reader { bytes, at: 0 };
    let mut partitions = Vec::new();
    if bytes.is_empty() {
        return Ok(partitions); // a member that has no assignment yet
    }
    reader.take(2)?; // version
    for _ in 0..reader.count()? {
        let name = reader.string()?;
        for _ in 0..reader.count()? {
            let partition = reader.i32()?;
            if name == topic.as_bytes() {
                partitions.push(partition);
            }
        }
    }
    Ok(partitions)
}

/// A cursor over big-endian Kafka protocol fields.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MalformedAssignment> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(MalformedAssignment(self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn i32(&mut self) -> Result<i32, MalformedAssignment> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array's length; a null array (-1) is empty.
    fn count(&mut self) -> Result<usize, MalformedAssignment> {
        let at = self.at;
        match self.i32()? {
            -1 => Ok(0),
            n => usize::try_from(n).map_err(|_| MalformedAssignment(at)),
        }
    }

    fn string(&mut self) -> Result<&'a [u8], MalformedAssignment> {
        let b = self.take(2)?;
        let len = i16::from_be_bytes([b[0], b[1]]);
        let len = usize::try_from(len).map_err(|_| MalformedAssignment(self.at - 2))?;
        self.take(len)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An `Assignment` of `version` with `topics`, and user data.
    pub(in crate::source::group) fn assignment(version: i16, topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        bytes.extend(3i32.to_be_bytes());
        bytes.extend(b"xyz");
        bytes
    }

    #[test]
    fn assignments_of_every_version_give_the_topics_partitions() {
        for version in 0..=3 {
            let bytes = assignment(version, &[("other", &[0, 1]), ("touchpoints", &[4, 1])]);
            assert_eq!(assigned_partitions(&bytes, "touchpoints"), Ok(vec![4, 1]));
            assert_eq!(assigned_partitions(&bytes, "other"), Ok(vec![0, 1]));
            assert_eq!(assigned_partitions(&bytes, "none"), Ok(vec![]));
        }
        assert_eq!(assigned_partitions(&[], "touchpoints"), Ok(vec![]));
        let mut null_array = 0i16.to_be_bytes().to_vec();
        null_array.extend((-1i32).to_be_bytes());
        assert_eq!(assigned_partitions(&null_array, "touchpoints"), Ok(vec![]));
    }

    #[test]
    fn malformed_assignments_are_errors_not_panics() {
        let bytes = assignment(1, &[("touchpoints", &[4, 1])]);
        for cut in 1..bytes.len() - 7 {
            assert!(
                assigned_partitions(&bytes[..cut], "touchpoints").is_err(),
                "cut at {cut}"
            );
        }
        let mut negative = 0i16.to_be_bytes().to_vec();
        negative.extend((-5i32).to_be_bytes());
        assert_eq!(
            assigned_partitions(&negative, "t"),
            Err(MalformedAssignment(2))
        );
        let huge = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(assigned_partitions(&huge, "t").is_err());
    }
}
