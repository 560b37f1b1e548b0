//! Rewinding to a commit point (exactly-once mode, after an aborted
//! transaction): the engine reads a prefix and commits (drain, offsets,
//! commit point), reads on (the aborted transaction's work, whose changes
//! are drained and thrown away as the abort throws them away), then
//! rewinds, restores the committed changelog and reads again from the
//! committed offsets. What it derives the second time must be exactly
//! what it derived the first time: every output, funnel windows included,
//! in the same order and byte for byte.

use crate::common;

use common::restore::*;
use common::streams::{Read, arrival, reads, stream};
use common::*;
use journeyd::engine::Engine;
use journeyd::model::Output;
use proptest::prelude::*;

/// A workload, where the last commit is, and where the transaction that
/// aborts ends.
fn workload() -> impl Strategy<Value = (Vec<Read>, usize, usize)> {
    (stream(80), prop::collection::vec(arrival(), 80)).prop_flat_map(|(events, arrivals)| {
        let reads = reads(&events, &arrivals);
        let n = reads.len();
        (Just(reads), 0..=n).prop_flat_map(move |(reads, commit)| {
            let n = reads.len();
            (Just(reads), Just(commit), commit..=n)
        })
    })
}

fn json(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_rewind_derives_what_the_aborted_transaction_derived(
        (reads, commit, abort) in workload(),
    ) {
        let mut config = event_config();
        config.runtime.exactly_once = true;
        let mut engine = Engine::new(&config).unwrap();
        engine.track_changes(true);
        let (mut out, mut changelog) = (Vec::new(), Changelog::new());
        for read in &reads[..commit] {
            ingest(&mut engine, read, &mut out);
        }
        drain(&mut engine, &mut changelog);
        let commits = checkpoint(&engine, &reads[..commit]);
        let point = engine.commit_point();

        let mut aborted = Vec::new();
        for read in &reads[commit..abort] {
            ingest(&mut engine, read, &mut aborted);
        }
        drain(&mut engine, &mut Changelog::new());

        let partitions: Vec<u32> = (0..2).collect();
        engine.rewind(&point, &partitions);
        changelog.restore_into(&mut engine);
        engine.resume(None);
        let mut again = Vec::new();
        for read in reread(&reads[..abort], &commits) {
            ingest(&mut engine, read, &mut again);
        }
        prop_assert_eq!(json(&again), json(&aborted));
    }
}
