//! Snapshot and restore mid-stream against an uninterrupted run: engine A
//! reads everything; engine B reads a prefix, writing its changes to a
//! changelog and committing offsets as the service would; engine C starts
//! from that changelog and those commits and reads the rest again from the
//! committed offsets. B's outputs and C's together must be A's: the
//! per-customer events and the funnel windows, each window the same
//! whether B or C emitted it (or both, the same, after a crash). Except
//! when B evicted a customer before its drain: a restart that reads the
//! evicted customer's touchpoints again starts a new journey for them
//! (the fence went with the tombstone), and counts them again.

use crate::common;

use std::collections::BTreeSet;

use common::restore::*;
use common::streams::{Arrival, Read, arrival, reads, stream};
use common::*;
use journeyd::config::Config;
use journeyd::engine::Engine;
use journeyd::model::{EventTime, Output};
use proptest::prelude::*;

/// Engine A: every read, then the end of input.
fn straight(config: &Config, reads: &[Read]) -> (Vec<Output>, Engine) {
    let mut engine = Engine::new(config).unwrap();
    let mut out = Vec::new();
    for read in reads {
        ingest(&mut engine, read, &mut out);
    }
    engine.finish(&mut out);
    (out, engine)
}

/// Engine C: restarted from `changelog` and `commits`, reads again from
/// the commits, then the end of input.
fn resumed(
    config: &Config,
    changelog: &Changelog,
    commits: &Commits,
    reads: &[Read],
) -> (Vec<Output>, Engine) {
    let mut engine = restart(config, changelog, commits);
    let mut out = Vec::new();
    for read in reread(reads, commits) {
        ingest(&mut engine, read, &mut out);
    }
    engine.finish(&mut out);
    (out, engine)
}

/// Partition 0 read straight through, without the end of input (which
/// would move it to the newest time of every partition).
fn uninterrupted(config: &Config, reads: &[Read]) -> (Vec<Output>, Engine) {
    let mut engine = Engine::new(config).unwrap();
    let mut out = Vec::new();
    for read in reads {
        ingest(&mut engine, read, &mut out);
    }
    (out, engine)
}

/// Engine A of a takeover: half of `ahead` (partition 1) first, then
/// partition 0 restored and resumed from `changelog` and `commits` and
/// read again from its commit, alternating with the rest of `ahead`.
fn taken_over(
    config: &Config,
    (changelog, commits): (&Changelog, &Commits),
    p0: &[Read],
    ahead: &[Read],
) -> (Vec<Output>, Engine) {
    let mut engine = Engine::new(config).unwrap();
    engine.track_changes(true);
    let mut out = Vec::new();
    let (before, after) = ahead.split_at(ahead.len() / 2);
    engine.assign(1, EventTime(0));
    for read in before {
        ingest(&mut engine, read, &mut out);
    }
    engine.assign(0, EventTime(0));
    changelog.restore_into(&mut engine);
    engine.resume(
        commits
            .iter()
            .filter_map(|(&p, c)| c.checkpoint.map(|cp| (p, cp))),
    );
    let mut rest = after.iter();
    for read in reread(p0, commits) {
        ingest(&mut engine, read, &mut out);
        if let Some(read) = rest.next() {
            ingest(&mut engine, read, &mut out);
        }
    }
    (out, engine)
}

/// A workload: events, how each arrives, where the run is cut, and how
/// often engine B drains its changes.
fn workload() -> impl Strategy<Value = (Vec<Read>, usize, usize)> {
    (stream(80), prop::collection::vec(arrival(), 80)).prop_flat_map(|(events, arrivals)| {
        let reads = reads(&events, &arrivals);
        let n = reads.len();
        (Just(reads), 0..=n, 1..12usize)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Drained and committed at the cut: C continues exactly where B
    /// stopped, the outputs of B then C are A's, byte for byte.
    #[test]
    fn a_restore_at_a_commit_continues_exactly((reads, cut, every) in workload()) {
        let config = event_config();
        let (a_out, a) = straight(&config, &reads);

        let mut b = Engine::new(&config).unwrap();
        b.track_changes(true);
        let (mut b_out, mut changelog) = (Vec::new(), Changelog::new());
        for (i, read) in reads[..cut].iter().enumerate() {
            ingest(&mut b, read, &mut b_out);
            if i % every == 0 {
                drain(&mut b, &mut changelog);
            }
        }
        drain(&mut b, &mut changelog);
        let commits = checkpoint(&b, &reads[..cut]);
        let evicted = b.stats().evicted;

        let (c_out, c) = resumed(&config, &changelog, &commits, &reads);
        // Per customer, in sequence order: outputs of different customers
        // at the same event time may interleave differently after a
        // restore (they are keyed apart downstream; nothing promises their
        // order), but every output keeps its sequence and content.
        let mut joined = customer_outputs(&b_out);
        joined.extend(customer_outputs(&c_out));
        joined.sort();
        let mut expected = customer_outputs(&a_out);
        expected.sort();
        prop_assert_eq!(joined, expected);
        prop_assert_eq!(summary(&c), summary(&a));
        if evicted == 0 {
            let windows = funnel_windows([&b_out[..], &c_out[..]]);
            prop_assert_eq!(windows, funnel_windows([&a_out[..]]));
        }
    }

    /// A crash between commits: the changelog holds what was drained up to
    /// the last drain, the commits are from an earlier one, and B's work
    /// after the last drain is lost. C repeats some of B's outputs, each
    /// with its sequence and content unchanged, and together they are A's.
    #[test]
    fn a_crash_after_a_commit_repeats_outputs_unchanged(
        (reads, cut, every) in workload(),
        pick in any::<prop::sample::Index>(),
    ) {
        let config = event_config();
        let (a_out, a) = straight(&config, &reads);

        let mut b = Engine::new(&config).unwrap();
        b.track_changes(true);
        let (mut b_out, mut changelog) = (Vec::new(), Changelog::new());
        let mut checkpoints = vec![Commits::new()];
        let mut drained_changelog = Changelog::new();
        let mut evicted = 0;
        for (i, read) in reads[..cut].iter().enumerate() {
            ingest(&mut b, read, &mut b_out);
            if i % every == every - 1 {
                drain(&mut b, &mut changelog);
                checkpoints.push(checkpoint(&b, &reads[..=i]));
                drained_changelog = changelog.clone();
                evicted = b.stats().evicted;
            }
        }
        let commits = &checkpoints[pick.index(checkpoints.len())];

        let (c_out, c) = resumed(&config, &drained_changelog, commits, &reads);
        // Sequences start again after an eviction: the content identifies an output.
        let json = |outputs: &[Output]| -> Vec<String> {
            customer_outputs(outputs).into_iter().map(|(_, json)| json).collect()
        };
        let expected: BTreeSet<String> = json(&a_out).into_iter().collect();
        let repeated: BTreeSet<String> = json(&c_out).into_iter().collect();
        prop_assert_eq!(repeated.len(), json(&c_out).len(), "C emitted an output twice");
        prop_assert_eq!(summary(&c), summary(&a));
        // A customer evicted before the drain is tombstoned with their
        // fence: reading their touchpoints again from an earlier commit
        // starts a new journey (the limit the changelog docs state).
        if evicted == 0 {
            for output in json(&b_out).iter().chain(&repeated) {
                prop_assert!(expected.contains(output), "not an output of A: {}", output);
            }
            let mut seen: BTreeSet<String> = json(&b_out).into_iter().collect();
            seen.extend(repeated);
            prop_assert_eq!(seen.len(), expected.len(), "an output of A is missing");
            let windows = funnel_windows([&b_out[..], &c_out[..]]);
            prop_assert_eq!(windows, funnel_windows([&a_out[..]]));
        }
    }

    /// A crash while a drain is being written (at-least-once mode): the
    /// changelog holds every earlier drain and, of the last one, any
    /// prefix of each partition's records; the commit is the last complete
    /// drain's or an earlier one's. C restores as the service does (each
    /// partition up to its last funnel record, superseding the rest) and
    /// reads again from the commits. Every output C repeats is unchanged,
    /// funnel windows included, and together B's and C's are A's (but for
    /// the windows' late counts: which window counts a late touchpoint that
    /// a partition restored from the older drain reads again depends on how
    /// far B had closed windows when it first came).
    #[test]
    fn a_crash_while_a_drain_is_written_repeats_outputs_unchanged(
        (reads, cut, every) in workload(),
        written in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        pick in any::<prop::sample::Index>(),
    ) {
        let config = event_config();
        let (a_out, a) = straight(&config, &reads);

        let mut b = Engine::new(&config).unwrap();
        b.track_changes(true);
        let (mut b_out, mut log) = (Vec::new(), Vec::new());
        let mut checkpoints = vec![Commits::new()];
        for (i, read) in reads[..cut].iter().enumerate() {
            ingest(&mut b, read, &mut b_out);
            if i % every == every - 1 {
                log.extend(drain_records(&mut b));
                checkpoints.push(checkpoint(&b, &reads[..=i]));
            }
        }
        let last = drain_records(&mut b);
        let evicted = b.stats().evicted;
        for (partition, kept) in [(0, written.0), (1, written.1)] {
            let of_partition: Vec<&Record> = last.iter().filter(|r| r.partition == partition).collect();
            let n = kept.index(of_partition.len() + 1);
            log.extend(of_partition[..n].iter().map(|&r| r.clone()));
        }
        let commits = &checkpoints[pick.index(checkpoints.len())];

        let mut c = Engine::new(&config).unwrap();
        c.track_changes(true);
        for partition in 0..2 {
            c.assign(partition, EventTime(0));
        }
        restore_log(&mut c, &log);
        c.resume(commits.iter().filter_map(|(&p, c)| c.checkpoint.map(|cp| (p, cp))));
        let mut c_out = Vec::new();
        for read in reread(&reads, commits) {
            ingest(&mut c, read, &mut c_out);
        }
        c.finish(&mut c_out);

        let json = |outputs: &[Output]| -> BTreeSet<String> {
            customer_outputs(outputs).into_iter().map(|(_, json)| json).collect()
        };
        prop_assert_eq!(summary(&c), summary(&a));
        if evicted == 0 {
            let mut seen = json(&b_out);
            seen.extend(json(&c_out));
            prop_assert_eq!(seen, json(&a_out));
            let windows = funnel_counts([&b_out[..], &c_out[..]]);
            prop_assert_eq!(windows, funnel_counts([&a_out[..]]));
        }
    }

    /// A takeover mid-catch-up: B reads partition 0 up to the cut and
    /// commits; A, whose partition 1 is 200 days ahead, takes partition 0
    /// over and reads it again from the commit, alternating with partition
    /// 1. Partition 0's customers go on in partition 0's time: B's outputs
    /// and then A's are exactly an uninterrupted run of partition 0's.
    #[test]
    fn a_partition_taken_over_behind_the_instance_continues_exactly(
        (reads, cut, every) in workload(),
    ) {
        let config = event_config();
        let (p0, p1): (Vec<Read>, Vec<Read>) = reads.into_iter().partition(|r| r.partition == 0);
        let cut = cut.min(p0.len());
        let (u_out, u) = uninterrupted(&config, &p0);

        let mut b = Engine::new(&config).unwrap();
        b.track_changes(true);
        let (mut b_out, mut changelog) = (Vec::new(), Changelog::new());
        for (i, read) in p0[..cut].iter().enumerate() {
            ingest(&mut b, read, &mut b_out);
            if i % every == 0 {
                drain(&mut b, &mut changelog);
            }
        }
        drain(&mut b, &mut changelog);
        let commits = checkpoint(&b, &p0[..cut]);

        let ahead: Vec<Read> = p1
            .into_iter()
            .map(|mut r| {
                r.ev.at = r.ev.at.plus_ms(200 * DAY);
                r.ev.customer = format!("ahead-{}", r.ev.customer);
                r
            })
            .collect();
        let (a_out, a) = taken_over(&config, (&changelog, &commits), &p0, &ahead);
        let mut joined = customer_outputs(&b_out);
        joined.extend(customer_outputs(&a_out).into_iter().filter(|(k, _)| !k.1.starts_with("ahead-")));
        joined.sort();
        let mut expected = customer_outputs(&u_out);
        expected.sort();
        prop_assert_eq!(joined, expected);
        let mut held = summary(&a);
        held.retain(|id, _| !id.starts_with("ahead-"));
        prop_assert_eq!(held, summary(&u));
    }

    /// Whatever the engine does between drains, a drain holds at most one
    /// record per customer, a tombstone only for a customer no longer held.
    #[test]
    fn a_drain_holds_one_record_per_customer(
        events in stream(120),
        erase_at in prop::collection::vec((0..120usize, 0..6usize), 0..6),
        every in 1..20usize,
    ) {
        let mut config = event_config();
        config.time.lapse_after = std::time::Duration::from_secs(5 * 86_400);
        config.time.state_ttl = std::time::Duration::from_secs(10 * 86_400);
        let mut engine = Engine::new(&config).unwrap();
        engine.track_changes(true);
        let (mut out, mut changelog) = (Vec::new(), Changelog::new());
        let arrivals = vec![Arrival::OnTime(0); events.len()];
        for (i, read) in reads(&events, &arrivals).iter().enumerate() {
            ingest(&mut engine, read, &mut out);
            for &(at, customer) in &erase_at {
                if at == i {
                    engine.erase(&format!("c{customer}"));
                }
            }
            if i % every == 0 {
                let bound = engine.dirty_len();
                let keys = drain(&mut engine, &mut changelog);
                let unique: BTreeSet<&String> = keys.iter().map(|(k, _)| k).collect();
                prop_assert_eq!(unique.len(), keys.len(), "{:?}", keys);
                prop_assert!(keys.len() <= bound);
                for (key, tombstone) in &keys {
                    prop_assert_eq!(*tombstone, engine.customer(key).is_none());
                }
                prop_assert_eq!(engine.dirty_len(), 0);
            }
        }
    }

    /// The engine refuses bytes that are not a state, without panicking.
    #[test]
    fn restoring_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let mut engine = Engine::new(&event_config()).unwrap();
        if engine.restore(0, "x", Some(&bytes)).is_err() {
            prop_assert!(engine.customer("x").is_none(), "a refused value changes nothing");
        }
        // With a version byte, some values decode: odd states must not panic either.
        let mut versioned = vec![1u8];
        versioned.extend_from_slice(&bytes);
        let _ = engine.restore(0, "x", Some(&versioned));
        let mut out = Vec::new();
        engine.tick(EventTime(0), &mut out);
        let ev = Ev::new("e", "x", BASE, "page_view");
        engine.ingest_at(0, 0, &ev.touchpoint(), EventTime(0), &mut out);
        engine.finish(&mut out);
    }
}

/// A workload where some touchpoints are consent touchpoints: per event,
/// 0 leaves it, 1 makes it a grant, 2 a withdrawal (for the purpose).
fn consent_workload() -> impl Strategy<Value = (Vec<Read>, usize, usize)> {
    (
        stream(80),
        prop::collection::vec(arrival(), 80),
        prop::collection::vec(
            prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
            80,
        ),
    )
        .prop_flat_map(|(mut events, arrivals, consent)| {
            for (ev, kind) in events.iter_mut().zip(consent) {
                let action = match kind {
                    1 => "consent_granted",
                    2 => "consent_withdrawn",
                    _ => continue,
                };
                ev.action = action.to_owned();
                ev.purpose = Some("analytics".to_owned());
            }
            let reads = reads(&events, &arrivals);
            let n = reads.len();
            (Just(reads), 0..=n, 1..12usize)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// With consent on, a restore at a commit continues exactly: the
    /// consent goes through the changelog with the rest of the state, so
    /// B's outputs (erasure confirmations included) then C's are A's.
    #[test]
    fn with_consent_a_restore_at_a_commit_continues_exactly(
        (reads, cut, every) in consent_workload(),
        opt_in in any::<bool>(),
    ) {
        let mut config = event_config();
        config.consent.mode = match opt_in {
            true => journeyd::config::ConsentMode::OptIn,
            false => journeyd::config::ConsentMode::OptOut,
        };
        let (a_out, a) = straight(&config, &reads);

        let mut b = Engine::new(&config).unwrap();
        b.track_changes(true);
        let (mut b_out, mut changelog) = (Vec::new(), Changelog::new());
        for (i, read) in reads[..cut].iter().enumerate() {
            ingest(&mut b, read, &mut b_out);
            if i % every == 0 {
                drain(&mut b, &mut changelog);
            }
        }
        drain(&mut b, &mut changelog);
        let commits = checkpoint(&b, &reads[..cut]);
        let evicted = b.stats().evicted;

        let (c_out, c) = resumed(&config, &changelog, &commits, &reads);
        let mut joined = customer_outputs(&b_out);
        joined.extend(customer_outputs(&c_out));
        joined.sort();
        let mut expected = customer_outputs(&a_out);
        expected.sort();
        prop_assert_eq!(joined, expected);
        prop_assert_eq!(summary(&c), summary(&a));
        let consent = |e: &Engine| -> Vec<(String, &'static str, i64)> {
            e.customers().map(|c| (c.id.to_string(), c.consent.as_str(), c.consent_at.millis())).collect()
        };
        let (mut in_c, mut in_a) = (consent(&c), consent(&a));
        in_c.sort();
        in_a.sort();
        prop_assert_eq!(in_c, in_a);
        prop_assert!(c.stats().without_consent + b.stats().without_consent >= a.stats().without_consent);
        if evicted == 0 {
            let windows = funnel_windows([&b_out[..], &c_out[..]]);
            prop_assert_eq!(windows, funnel_windows([&a_out[..]]));
        }
    }
}
