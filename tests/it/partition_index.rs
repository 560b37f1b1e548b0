//! The per-partition lists of customers, and the memory figures kept as
//! customers come and go, agree with a full scan whatever happens:
//! touchpoints from several partitions (new customers, customers moving),
//! evictions, erasures, revocations, rewinds and restores in any order.

use crate::common;

use common::*;
use journeyd::engine::Engine;
use journeyd::model::EventTime;
use proptest::prelude::*;

/// Partitions the operations touch.
const PARTITIONS: u32 = 4;

/// Customer ids, some too long to be held inline.
fn id(n: usize) -> String {
    if n.is_multiple_of(3) {
        format!("customer-with-a-long-identifier-{n}")
    } else {
        format!("c{n}")
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A touchpoint of customer `.0` from partition `.1`, `.2` ms after the
    /// previous one (a large step evicts customers past their TTL).
    Touch(usize, u32, i64),
    Erase(usize),
    Revoke(u32),
    /// A rewind of `.0` partitions, from partition 0 on.
    Rewind(u32),
    /// Customer `.0`'s current state restored as of partition `.1`.
    Restore(usize, u32),
    /// A tombstone for customer `.0` restored from partition `.1`.
    Tombstone(usize, u32),
}

fn op() -> impl Strategy<Value = Op> {
    let step = prop_oneof![4 => 0..60 * SECOND, 1 => Just(2 * HOUR)];
    prop_oneof![
        8 => (0..12usize, 0..PARTITIONS, step).prop_map(|(c, p, dt)| Op::Touch(c, p, dt)),
        1 => (0..12usize).prop_map(Op::Erase),
        1 => (0..PARTITIONS).prop_map(Op::Revoke),
        1 => (1..=PARTITIONS).prop_map(Op::Rewind),
        2 => (0..12usize, 0..PARTITIONS).prop_map(|(c, p)| Op::Restore(c, p)),
        1 => (0..12usize, 0..PARTITIONS).prop_map(|(c, p)| Op::Tombstone(c, p)),
    ]
}

/// What a full scan of the customers says each partition holds.
fn scanned(engine: &Engine) -> Vec<usize> {
    let mut counts = vec![0; PARTITIONS as usize];
    for c in engine.customers() {
        counts[usize::from(c.partition)] += 1;
    }
    counts
}

fn apply(engine: &mut Engine, op: &Op, at: &mut EventTime, n: usize) {
    let mut out = Vec::new();
    match *op {
        Op::Touch(c, p, dt) => {
            *at = at.plus_ms(dt);
            let ev = Ev::new(format!("e{n}"), &id(c), *at, "page_view");
            engine.ingest_at(p, n as i64, &ev.touchpoint(), EventTime(0), &mut out);
        }
        Op::Erase(c) => {
            engine.erase(&id(c));
        }
        Op::Revoke(p) => {
            engine.revoke(p);
            engine.assign(p, EventTime(0));
        }
        Op::Rewind(k) => {
            let point = engine.commit_point();
            let partitions: Vec<u32> = (0..k).collect();
            engine.rewind(&point, &partitions);
        }
        Op::Restore(c, p) => {
            if let Some(bytes) = engine.snapshot(&id(c)) {
                engine.restore(p, &id(c), Some(&bytes)).unwrap();
            }
        }
        Op::Tombstone(c, p) => engine.restore(p, &id(c), None).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_partition_index_equals_a_full_scan(ops in prop::collection::vec(op(), 1..120)) {
        let mut config = event_config();
        config.time.state_ttl = std::time::Duration::from_secs(3600);
        config.time.lapse_after = std::time::Duration::from_secs(1800);
        let mut engine = Engine::new(&config).unwrap();
        for p in 0..PARTITIONS {
            engine.assign(p, EventTime(0));
        }
        let mut at = BASE;
        for (n, op) in ops.iter().enumerate() {
            apply(&mut engine, op, &mut at, n);
            prop_assert_eq!(engine.check_index(), Ok(()), "after {:?}", op);
            let listed: Vec<usize> = (0..PARTITIONS).map(|p| engine.partition_customers(p)).collect();
            prop_assert_eq!(listed, scanned(&engine), "after {:?}", op);
        }
    }
}

/// A customer who moved keeps touchpoints in their first partition's
/// buffer: erasing them takes those out too.
#[test]
fn erasing_a_customer_who_moved_empties_both_buffers() {
    let mut engine = Engine::new(&event_config()).unwrap();
    let mut at = BASE;
    for (n, op) in [Op::Touch(1, 0, 0), Op::Touch(1, 2, SECOND), Op::Erase(1)]
        .iter()
        .enumerate()
    {
        apply(&mut engine, op, &mut at, n);
        assert_eq!(engine.check_index(), Ok(()), "after {op:?}");
    }
    assert_eq!(engine.buffered(), 0);
}
