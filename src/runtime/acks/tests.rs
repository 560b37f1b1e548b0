//! Unit tests for each rule of the commit tracker, and property tests that
//! hold it against a model keeping every output and checkpoint in plain
//! vectors.

use proptest::prelude::*;
use proptest::sample::Index;

use super::{CommitTracker, OutputId, Position};

fn at(partition: u32, next_offset: i64, buffered_low: Option<i64>) -> Position {
    Position {
        partition,
        next_offset,
        buffered_low,
    }
}

fn drain(tracker: &mut CommitTracker) -> Vec<(u32, i64)> {
    let mut out = Vec::new();
    tracker.committable(&mut out);
    out
}

#[test]
fn ids_are_dense_and_increasing() {
    let mut tracker = CommitTracker::new();
    let ids: Vec<OutputId> = (0..130).map(|_| tracker.sent()).collect();
    assert_eq!(ids, (0..130).collect::<Vec<_>>());
    assert_eq!(tracker.resend(5), 130);
    assert_eq!(tracker.in_flight(), 131);
}

#[test]
fn metadata_comes_back_with_its_offset_through_merges() {
    let mut tracker: CommitTracker<char> = CommitTracker::with_pending_limit(2);
    let mut commits = Vec::new();
    let first = tracker.sent();
    tracker.checkpoint_with([(at(0, 10, None), 'a')]);
    let second = tracker.sent();
    tracker.checkpoint_with([(at(0, 12, None), 'b')]);
    tracker.sent();
    // The queue is full: the newest entry takes the higher offset with
    // its metadata, and keeps its own against a lower offset.
    tracker.checkpoint_with([(at(0, 15, None), 'c')]);
    tracker.checkpoint_with([(at(0, 14, None), 'd')]);
    assert!(!tracker.settled_before(tracker.next_id()));
    tracker.acked(first);
    tracker.committable_with(|p, o, m| commits.push((p, o, m)));
    assert_eq!(commits, [(0, 10, 'a')]);
    tracker.acked(second);
    tracker.acked(second + 1);
    assert!(tracker.settled_before(tracker.next_id()));
    tracker.committable_with(|p, o, m| commits.push((p, o, m)));
    assert_eq!(commits, [(0, 10, 'a'), (0, 15, 'c')]);
}

#[test]
fn commit_offset_is_held_back_by_the_buffer() {
    assert_eq!(at(0, 42, None).commit_offset(), 42);
    assert_eq!(at(0, 42, Some(40)).commit_offset(), 40);
    assert_eq!(at(0, 42, Some(50)).commit_offset(), 42);
}

#[test]
fn settling_all_voids_outputs_and_checkpoints_and_keeps_ids_increasing() {
    let mut tracker = CommitTracker::new();
    let (a, b) = (tracker.sent(), tracker.sent());
    tracker.checkpoint([at(0, 10, None)]);
    let c = tracker.resend(a);
    tracker.settle_all();
    assert_eq!((tracker.in_flight(), tracker.pending_checkpoints()), (0, 0));
    assert!(
        !tracker.acked(b) && !tracker.acked(c),
        "reports of void outputs are ignored"
    );
    let d = tracker.sent();
    assert!(d > c);
    assert!(tracker.settled_before(d) && !tracker.settled_before(d + 1));
    tracker.checkpoint([at(0, 12, None)]);
    let mut out = Vec::new();
    tracker.committable(&mut out);
    assert!(out.is_empty(), "waits for the new output");
    assert!(tracker.acked(d));
    tracker.committable(&mut out);
    assert_eq!(out, [(0, 12)]);
}

#[test]
fn checkpoint_without_outputs_is_committable_at_once() {
    let mut tracker = CommitTracker::new();
    tracker.checkpoint([at(0, 10, None), at(3, 7, Some(5))]);
    assert_eq!(drain(&mut tracker), [(0, 10), (3, 5)]);
}

#[test]
fn checkpoint_waits_for_every_output_sent_before_it() {
    let mut tracker = CommitTracker::new();
    let first = tracker.sent();
    let second = tracker.sent();
    tracker.checkpoint([at(0, 10, None)]);
    tracker.acked(second);
    assert!(drain(&mut tracker).is_empty());
    tracker.acked(first);
    assert_eq!(drain(&mut tracker), [(0, 10)]);
}

#[test]
fn outputs_sent_after_a_checkpoint_do_not_block_it() {
    let mut tracker = CommitTracker::new();
    let before = tracker.sent();
    tracker.checkpoint([at(0, 10, None)]);
    let _after = tracker.sent();
    tracker.acked(before);
    assert_eq!(drain(&mut tracker), [(0, 10)]);
    assert_eq!(tracker.in_flight(), 1);
}

#[test]
fn every_output_blocks_every_partition() {
    let mut tracker = CommitTracker::new();
    let timer_output = tracker.sent();
    tracker.checkpoint([at(0, 10, None), at(1, 20, None)]);
    assert!(drain(&mut tracker).is_empty());
    tracker.acked(timer_output);
    assert_eq!(drain(&mut tracker), [(0, 10), (1, 20)]);
}

#[test]
fn out_of_order_acks_release_checkpoints_in_order() {
    let mut tracker = CommitTracker::new();
    let ids: Vec<OutputId> = (0..3).map(|_| tracker.sent()).collect();
    tracker.checkpoint([at(0, 1, None)]);
    let last = tracker.sent();
    tracker.checkpoint([at(0, 2, None)]);
    for id in [last, ids[2], ids[1]] {
        tracker.acked(id);
        assert!(drain(&mut tracker).is_empty());
    }
    tracker.acked(ids[0]);
    assert_eq!(drain(&mut tracker), [(0, 2)]);
}

#[test]
fn committable_offsets_never_go_backwards_or_repeat() {
    let mut tracker = CommitTracker::new();
    tracker.checkpoint([at(0, 10, None)]);
    assert_eq!(drain(&mut tracker), [(0, 10)]);
    assert!(drain(&mut tracker).is_empty());
    tracker.checkpoint([at(0, 10, None), at(1, 3, None)]);
    tracker.checkpoint([at(0, 8, None)]);
    assert_eq!(drain(&mut tracker), [(1, 3)]);
}

#[test]
fn failed_output_blocks_until_its_resend_is_acked() {
    let mut tracker = CommitTracker::new();
    let failed = tracker.sent();
    let other = tracker.sent();
    tracker.checkpoint([at(0, 10, None)]);
    let retry = tracker.resend(failed);
    tracker.acked(other);
    assert!(drain(&mut tracker).is_empty());
    assert_eq!(tracker.in_flight(), 2);
    assert!(tracker.acked(retry));
    assert_eq!(drain(&mut tracker), [(0, 10)]);
    assert_eq!(tracker.in_flight(), 0);
}

#[test]
fn resend_of_a_resend_keeps_the_chain_blocking() {
    let mut tracker = CommitTracker::new();
    let failed = tracker.sent();
    tracker.checkpoint([at(0, 10, None)]);
    let retry = tracker.resend(failed);
    let again = tracker.resend(retry);
    assert!(drain(&mut tracker).is_empty());
    tracker.acked(again);
    assert_eq!(drain(&mut tracker), [(0, 10)]);
    assert_eq!(tracker.in_flight(), 0);
}

#[test]
fn late_ack_of_a_failed_output_settles_it() {
    let mut tracker = CommitTracker::new();
    let failed = tracker.sent();
    tracker.checkpoint([at(0, 10, None)]);
    let retry = tracker.resend(failed);
    tracker.checkpoint([at(0, 11, None)]);
    assert!(tracker.acked(failed));
    assert_eq!(drain(&mut tracker), [(0, 10)]);
    assert!(tracker.acked(retry));
    assert_eq!(drain(&mut tracker), [(0, 11)]);
}

#[test]
fn duplicate_and_unknown_acks_are_ignored() {
    let mut tracker = CommitTracker::new();
    let id = tracker.sent();
    assert!(!tracker.acked(id + 1));
    assert!(tracker.acked(id));
    assert!(!tracker.acked(id));
    assert!(!tracker.acked(u64::MAX));
    assert_eq!(tracker.in_flight(), 0);
}

#[test]
fn forget_partition_drops_pending_and_history() {
    let mut tracker = CommitTracker::new();
    tracker.checkpoint([at(0, 10, None)]);
    assert_eq!(drain(&mut tracker), [(0, 10)]);
    let id = tracker.sent();
    tracker.checkpoint([at(0, 12, None), at(1, 4, None)]);
    tracker.forget_partition(0);
    assert_eq!(tracker.pending_checkpoints(), 1);
    tracker.acked(id);
    assert_eq!(drain(&mut tracker), [(1, 4)]);
    tracker.checkpoint([at(0, 6, None)]);
    assert_eq!(drain(&mut tracker), [(0, 6)]);
}

#[test]
fn same_barrier_checkpoints_merge() {
    let mut tracker = CommitTracker::new();
    tracker.sent();
    for offset in 1..=5 {
        tracker.checkpoint([at(0, offset, None)]);
    }
    assert_eq!(tracker.pending_checkpoints(), 1);
}

#[test]
fn full_queue_merges_into_the_newest_entry() {
    let mut tracker = CommitTracker::with_pending_limit(0);
    let first = tracker.sent();
    tracker.checkpoint([at(0, 1, None)]);
    let second = tracker.sent();
    tracker.checkpoint([at(0, 2, None)]);
    let third = tracker.sent();
    tracker.checkpoint([at(0, 3, None)]);
    assert_eq!(tracker.pending_checkpoints(), 2);
    tracker.acked(first);
    assert_eq!(drain(&mut tracker), [(0, 1)]);
    tracker.acked(second);
    assert!(drain(&mut tracker).is_empty());
    tracker.acked(third);
    assert_eq!(drain(&mut tracker), [(0, 3)]);
}

#[test]
fn ring_spans_many_words() {
    let mut tracker = CommitTracker::new();
    let ids: Vec<OutputId> = (0..300).map(|_| tracker.sent()).collect();
    tracker.checkpoint([at(0, 300, None)]);
    for &id in ids.iter().rev().filter(|&&id| id != 3) {
        assert!(tracker.acked(id));
    }
    assert_eq!(tracker.in_flight(), 1);
    assert!(drain(&mut tracker).is_empty());
    tracker.acked(ids[3]);
    assert_eq!(drain(&mut tracker), [(0, 300)]);
    assert_eq!(tracker.sent(), 300);
    tracker.checkpoint([at(0, 301, None)]);
    tracker.acked(300);
    assert_eq!(drain(&mut tracker), [(0, 301)]);
}

#[test]
fn commits_keep_moving_under_sustained_load() {
    // A limit of 1 is raised to 2: one slot could be replaced forever.
    let mut tracker = CommitTracker::with_pending_limit(1);
    let mut commits = Vec::new();
    for offset in 1..=100 {
        let id = tracker.sent();
        tracker.checkpoint([at(0, offset, None)]);
        if id >= 3 {
            tracker.acked(id - 3);
        }
        tracker.committable(&mut commits);
    }
    assert!(commits.len() >= 20, "{commits:?}");
    assert!(commits.last().is_some_and(|&(_, offset)| offset >= 90));
}

/// One call on the tracker.
#[derive(Clone, Debug)]
enum Op {
    Send,
    /// Acknowledge one of the ids sent so far (possibly again).
    Ack(Index),
    /// Acknowledge an id never handed out.
    AckUnknown(u8),
    /// Delivery of one of the ids sent so far failed for good.
    Resend(Index),
    Checkpoint(Vec<Position>),
    Committable,
    Forget(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let position = (0..3u32, 0..60i64, proptest::option::of(0..60i64))
        .prop_map(|(p, next, low)| at(p, next, low));
    prop_oneof![
        4 => Just(Op::Send),
        4 => any::<Index>().prop_map(Op::Ack),
        1 => any::<u8>().prop_map(Op::AckUnknown),
        1 => any::<Index>().prop_map(Op::Resend),
        3 => proptest::collection::vec(position, 0..4).prop_map(Op::Checkpoint),
        2 => Just(Op::Committable),
        1 => (0..3u32).prop_map(Op::Forget),
    ]
}

/// The obvious bookkeeping: every output and checkpoint ever made.
#[derive(Default)]
struct Model {
    /// Per output id: acknowledged, and the failed id it re-sends.
    outputs: Vec<(bool, Option<OutputId>)>,
    /// `(barrier, partition, offset, forgotten)` in the order taken.
    checkpoints: Vec<(OutputId, u32, i64, bool)>,
    /// The last offset returned per partition since it was last forgotten.
    returned: [Option<i64>; 3],
}

impl Model {
    fn settled(&self, id: OutputId) -> bool {
        let (acked, _) = self.outputs[id as usize];
        acked
            || (id as usize + 1..self.outputs.len())
                .any(|n| self.outputs[n].1 == Some(id) && self.settled(n as OutputId))
    }

    fn unsettled(&self) -> usize {
        let ids = 0..self.outputs.len() as OutputId;
        ids.filter(|&id| !self.settled(id)).count()
    }

    /// The highest offset per partition whose every earlier output is settled.
    fn allowed(&self) -> [Option<i64>; 3] {
        let mut allowed = [None; 3];
        for &(barrier, p, offset, forgotten) in &self.checkpoints {
            if !forgotten && (0..barrier).all(|id| self.settled(id)) {
                allowed[p as usize] = allowed[p as usize].max(Some(offset));
            }
        }
        allowed
    }
}

/// The outcome of one step of a property test.
type Check = Result<(), TestCaseError>;

/// Runs `ops` on a tracker and the model. With `exact`, every result must
/// equal the model's; otherwise (a small pending limit) results must be
/// safe and monotone, and everything must be committed once all is acked.
fn check(ops: &[Op], limit: usize, exact: bool) -> Check {
    let mut tracker = CommitTracker::with_pending_limit(limit);
    let mut model = Model::default();
    for op in ops {
        apply(&mut tracker, &mut model, op, exact)?;
        prop_assert_eq!(tracker.in_flight(), model.unsettled());
    }
    for id in 0..model.outputs.len() {
        tracker.acked(id as OutputId);
        model.outputs[id].0 = true;
    }
    apply(&mut tracker, &mut model, &Op::Committable, exact)?;
    prop_assert_eq!(tracker.in_flight(), 0);
    prop_assert_eq!(model.returned, model.allowed());
    Ok(())
}

fn apply(tracker: &mut CommitTracker, model: &mut Model, op: &Op, exact: bool) -> Check {
    let sent = model.outputs.len();
    match op {
        Op::Send => {
            prop_assert_eq!(tracker.sent(), sent as OutputId);
            model.outputs.push((false, None));
        }
        Op::Ack(index) if sent > 0 => {
            let id = index.index(sent) as OutputId;
            prop_assert_eq!(tracker.acked(id), !model.settled(id));
            model.outputs[id as usize].0 = true;
        }
        Op::AckUnknown(k) => {
            prop_assert!(!tracker.acked((sent + usize::from(*k)) as OutputId));
        }
        Op::Resend(index) if sent > 0 => {
            let failed = index.index(sent) as OutputId;
            prop_assert_eq!(tracker.resend(failed), sent as OutputId);
            model.outputs.push((false, Some(failed)));
        }
        Op::Checkpoint(positions) => {
            tracker.checkpoint(positions.iter().copied());
            let take = |p: &Position| (sent as OutputId, p.partition, p.commit_offset(), false);
            model.checkpoints.extend(positions.iter().map(take));
        }
        Op::Committable => committable(tracker, model, exact)?,
        Op::Forget(p) => {
            tracker.forget_partition(*p);
            model.returned[*p as usize] = None;
            let of_p = model.checkpoints.iter_mut().filter(|c| c.1 == *p);
            of_p.for_each(|c| c.3 = true);
        }
        Op::Ack(_) | Op::Resend(_) => {}
    }
    Ok(())
}

fn committable(tracker: &mut CommitTracker, model: &mut Model, exact: bool) -> Check {
    let got = drain(tracker);
    let allowed = model.allowed();
    let mut expected = Vec::new();
    for (p, &offset) in allowed.iter().enumerate() {
        if offset > model.returned[p] {
            expected.push((p as u32, offset.unwrap_or_default()));
        }
    }
    if exact {
        prop_assert_eq!(&got, &expected);
    }
    for &(p, offset) in &got {
        let p = p as usize;
        prop_assert!(Some(offset) <= allowed[p], "past an unsettled output");
        prop_assert!(Some(offset) > model.returned[p], "backwards or repeated");
        model.returned[p] = Some(offset);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tracker_matches_the_model(ops in proptest::collection::vec(op(), 0..120)) {
        check(&ops, usize::MAX, true)?;
    }

    #[test]
    fn small_pending_limit_is_safe_and_live(
        ops in proptest::collection::vec(op(), 0..120),
        limit in 0..4usize,
    ) {
        check(&ops, limit, false)?;
    }
}
