//! Per-customer de-duplication memory: which touchpoints were applied.
//!
//! A redelivered `event_id` (a producer retry, input read again after a
//! crash upstream) must not be applied twice however many touchpoints of
//! the customer came in between, as long as it is within `dedupe_horizon`
//! of event time of the customer's newest touchpoint. The memory for it
//! is a fixed number of words per customer:
//!
//! ```text
//! [ floor | entry | entry | ... ]     limits.dedupe_per_customer entries
//!   entry = (event time in ms since 2000 + 1) << 22 | top 22 bits of the
//!           event id's 64-bit fingerprint;  0 = empty
//! ```
//!
//! An entry sorts by event time, then fingerprint: the order in which a
//! partition's reorder buffer releases touchpoints. A redelivery carries
//! the original's `occurred_at`, so it is found only when both time and
//! fingerprint match: two different events are taken for one only when
//! they happened in the same millisecond and share 22 fingerprint bits.
//!
//! When the entries are full, the smallest entry is forgotten, and the
//! *floor* rises to it, unless it is already beyond the horizon. So:
//!
//! > every applied touchpoint whose entry is above the floor and within
//! > the horizon is remembered.
//!
//! A touchpoint not remembered whose entry is above the floor is new. One
//! at or below the floor, within the horizon, cannot be told from a
//! redelivery of a forgotten one: it is refused ([`Verdict::Unverified`],
//! [`Reason::Memory`]) — the promise is that duplicates within the horizon
//! are never applied twice. One older than the newest entry minus the
//! horizon is beyond the promise: it is applied as the late touchpoint it
//! most likely is, and counted ([`Reason::Horizon`]).
//!
//! Which touchpoints reach the floor? The check runs when a touchpoint is
//! applied, and a partition's reorder buffer applies touchpoints in entry
//! order, so entries only grow and the floor stays below every touchpoint
//! in time: any arrival order within the allowed lateness gives the same
//! verdicts. Only a touchpoint that arrives behind its partition's
//! watermark can fall to the floor, when the customer had more than
//! `dedupe_per_customer` touchpoints after it within the horizon.
//!
//! A worked example, 2 entries, horizon 24 h (times in hours, `h` hashes):
//!
//! | applied      | entries after  | floor  | verdict                     |
//! |--------------|----------------|--------|-----------------------------|
//! | a @ 1        | a1             | 0      | new                         |
//! | b @ 2        | a1 b2          | 0      | new                         |
//! | c @ 3        | b2 c3          | a1     | new (a forgotten)           |
//! | a @ 1 again  | b2 c3          | a1     | unverified, memory: refused |
//! | d @ 2.5 late | c3 d2.5        | b2     | new: above the floor        |
//! | e @ 40       | c3 e40         | b2     | new (d2.5 forgotten beyond  |
//! |              |                |        | the horizon: floor stays)   |
//! | b @ 2 again  | c3 e40         | b2     | unverified, horizon: applied|

use crate::model::EventTime;

/// 2000-01-01T00:00:00Z in milliseconds since the Unix epoch: entry times
/// count from here (earlier touchpoints are refused at the input).
const EPOCH_2000_MS: i64 = 946_684_800_000;
/// Bits of the fingerprint kept in an entry.
const HASH_BITS: u32 = 22;
/// The largest entry time (ms since 2000, plus 1): the year 2139.
const MAX_TIME: u64 = (1 << (64 - HASH_BITS)) - 1;

/// What the memory says about a touchpoint about to be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not applied before: apply it (now remembered).
    New,
    /// Applied before: ignore it.
    Duplicate,
    /// Not remembered, and too old to be sure it is new.
    Unverified(Reason),
}

/// Why a touchpoint could not be verified as new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Older than the customer's newest touchpoint minus the horizon:
    /// applied, counted.
    Horizon,
    /// Within the horizon, but the customer's memory overflowed since:
    /// refused, counted.
    Memory,
}

impl Reason {
    /// Every reason, in the order of the metric's handles.
    pub const ALL: [Reason; 2] = [Reason::Horizon, Reason::Memory];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Horizon => "horizon",
            Reason::Memory => "memory",
        }
    }
}

/// The entry of a touchpoint at `at` whose event id has `fingerprint`.
pub fn entry(at: EventTime, fingerprint: u64) -> u64 {
    let time =
        at.0.saturating_sub(EPOCH_2000_MS)
            .clamp(0, MAX_TIME as i64 - 1) as u64
            + 1;
    time << HASH_BITS | fingerprint >> (64 - HASH_BITS)
}

/// The event time of an entry, in ms since 2000 plus 1.
fn time_of(entry: u64) -> u64 {
    entry >> HASH_BITS
}

/// Checks `key` against `words` (`[floor, entries...]`, as in the module
/// docs) and remembers it unless it is refused or a duplicate.
pub fn check(words: &mut [i64], key: u64, horizon_ms: u64) -> Verdict {
    let (floor, entries) = words.split_first_mut().expect("a floor and entries");
    if entries.iter().any(|&e| e as u64 == key) {
        return Verdict::Duplicate;
    }
    let newest = entries
        .iter()
        .map(|&e| time_of(e as u64))
        .max()
        .unwrap_or(0);
    let newest = newest.max(time_of(key));
    let verdict = if time_of(key).saturating_add(horizon_ms) < newest {
        Verdict::Unverified(Reason::Horizon)
    } else if key <= *floor as u64 {
        return Verdict::Unverified(Reason::Memory);
    } else {
        Verdict::New
    };
    let forgotten = insert(entries, key);
    if forgotten != 0 && time_of(forgotten).saturating_add(horizon_ms) >= newest {
        *floor = (*floor as u64).max(forgotten) as i64;
    }
    verdict
}

/// Puts `key` in an empty place, or in place of the smallest entry if that
/// is smaller. Returns the entry forgotten (`key` itself if it is the
/// smallest), or 0.
fn insert(entries: &mut [i64], key: u64) -> u64 {
    let Some(smallest) = (0..entries.len()).min_by_key(|&i| entries[i] as u64) else {
        return key;
    };
    let old = entries[smallest] as u64;
    if old != 0 && old > key {
        return key;
    }
    entries[smallest] = key as i64;
    old
}

/// The words of a state restored from a format that kept bare 64-bit
/// fingerprints (the most recent ones, with no times): each becomes an
/// entry at `last_seen`, and everything older than `last_seen` is below
/// the floor — it may have been forgotten, so it cannot be verified.
pub fn from_fingerprints(fingerprints: &[u64], last_seen: EventTime) -> (u64, Vec<u64>) {
    if last_seen == EventTime::MIN {
        // Nothing applied yet: the ids were of touchpoints still waiting,
        // which are read again (and checked) after the restore.
        return (0, vec![0; fingerprints.len()]);
    }
    let entries = (fingerprints.iter())
        .map(|&fp| if fp == 0 { 0 } else { entry(last_seen, fp) })
        .collect();
    let floor = entry(last_seen, 0).saturating_sub(1);
    (floor, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: u64 = 24 * 3_600_000;
    const BASE: i64 = 1_767_225_600_000;

    fn key(hours: f64, fp: u64) -> u64 {
        entry(EventTime(BASE + (hours * HOUR as f64) as i64), fp << 42)
    }

    #[test]
    fn the_worked_example() {
        let mut words = [0i64; 3];
        let mut check = |h: f64, fp: u64| check(&mut words, key(h, fp), DAY);
        use Verdict::*;
        assert_eq!(check(1.0, 1), New);
        assert_eq!(check(2.0, 2), New);
        assert_eq!(check(3.0, 3), New);
        assert_eq!(check(1.0, 1), Unverified(Reason::Memory));
        assert_eq!(check(2.0, 2), Duplicate);
        assert_eq!(check(2.5, 4), New);
        assert_eq!(check(40.0, 5), New);
        assert_eq!(check(2.0, 2), Unverified(Reason::Horizon));
        assert_eq!(check(3.0, 3), Duplicate, "remembered however old");
    }

    #[test]
    fn entries_order_by_time_then_fingerprint() {
        let t = EventTime(BASE);
        assert!(entry(t, 5 << 42) < entry(t, 6 << 42));
        assert!(entry(t, u64::MAX) < entry(t.plus_ms(1), 0));
        assert_ne!(entry(EventTime(0), 0), 0, "never the empty value");
        assert_eq!(time_of(entry(EventTime(i64::MAX), 0)), MAX_TIME);
    }

    #[test]
    fn in_order_touchpoints_are_never_refused() {
        let mut words = [0i64; 3];
        for i in 0..1_000u64 {
            // Ties in time, fingerprints ascending: the release order.
            let k = entry(EventTime(BASE + (i / 10) as i64), i << 44);
            assert_eq!(check(&mut words, k, DAY), Verdict::New, "{i}");
        }
    }

    #[test]
    fn an_old_format_memory_refuses_only_what_it_may_have_forgotten() {
        let last = EventTime(BASE);
        let (floor, entries) = from_fingerprints(&[7 << 42, 0], last);
        let mut words = [floor as i64, entries[0] as i64, entries[1] as i64];
        assert_eq!(
            check(&mut words, entry(last, 7 << 42), DAY),
            Verdict::Duplicate
        );
        let older = entry(last.minus_ms(1), 9 << 42);
        assert_eq!(
            check(&mut words, older, DAY),
            Verdict::Unverified(Reason::Memory)
        );
        assert_eq!(check(&mut words, entry(last, 8 << 42), DAY), Verdict::New);
    }
}
