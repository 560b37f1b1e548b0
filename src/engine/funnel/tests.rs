use super::*;
use crate::config::Config;
use crate::engine::snapshot::FunnelState;

fn rules() -> Rules {
    Rules::compile(&Config::default()).unwrap()
}

fn close(funnel: &mut Funnel, rules: &Rules, at: i64) -> Vec<FunnelWindow> {
    let mut out = Vec::new();
    funnel.close_until(EventTime(at), rules, &mut |w| out.push(w));
    out
}

#[test]
fn windows_close_in_order_and_exclude_late_counts() {
    let rules = rules();
    let mut funnel = Funnel::new(60_000, &rules);
    assert_eq!(funnel.entry(0, EventTime(10_000), 1), Counted::InWindow);
    let _ = funnel.dropoff(0, EventTime(70_000), 1);
    let _ = funnel.conversion(0, EventTime(75_000), 1, 90_000);
    let mut out = close(&mut funnel, &rules, 65_000);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].window_start, out[0].entries[1].count), (0, 1));
    funnel.set_late_item(true);
    funnel.begin_item();
    assert_eq!(funnel.late(0, EventTime(20_000)), Counted::Late);
    assert_eq!(
        funnel.entry(0, EventTime(20_000), 1),
        Counted::Excluded,
        "window 0 is closed, and the item was counted late"
    );
    funnel.begin_item();
    assert_eq!(
        funnel.dropoff(0, EventTime(30_000), 1),
        Counted::Late,
        "a timer's drop-off behind the closed window counts as late"
    );
    funnel.set_late_item(false);
    out.extend(close(&mut funnel, &rules, 120_000));
    let second = &out[1];
    assert_eq!((second.window_start, second.late_events), (60_000, 2));
    assert_eq!(second.pairs[1].dropoff_ratio, Some(0.5));
    assert_eq!(funnel.totals().entries[1], 2, "totals include late entries");
}

#[test]
fn a_window_sums_its_partitions() {
    let rules = rules();
    let mut funnel = Funnel::new(60_000, &rules);
    let _ = funnel.entry(0, EventTime(1_000), 1);
    let _ = funnel.entry(3, EventTime(2_000), 1);
    let scales = Scales::new(&Config::default().journey.scores);
    let touch = |active, revenue| Touch {
        active,
        revenue,
        channel: crate::model::Channel::Web,
        score: None,
    };
    funnel.touchpoint(3, EventTime(3_000), touch(false, Some(0.1)), &scales);
    funnel.touchpoint(0, EventTime(4_000), touch(false, Some(0.2)), &scales);
    funnel.touchpoint(0, EventTime(5_000), touch(true, None), &scales);
    funnel.touchpoint(3, EventTime(5_000), touch(true, None), &scales);
    let out = close(&mut funnel, &rules, 60_000);
    assert_eq!(out.len(), 1);
    let w = &out[0];
    assert_eq!((w.entries[1].count, w.active_customers), (2, 2));
    assert_eq!(w.revenue, 0.3, "summed in millionths: exactly 0.3");
    assert_eq!(funnel.open_windows(), 0);
}

/// What a drain writes of `partition`, decoded back.
fn capture(funnel: &Funnel, rules: &Rules, partition: u32) -> FunnelState {
    let mut state = FunnelState::default();
    funnel.capture(partition, rules, &mut state);
    state
}

#[test]
fn a_restored_part_emits_what_its_partition_had_counted() {
    let rules = rules();
    let mut before = Funnel::new(60_000, &rules);
    before.track_changes(true);
    before.entry(0, EventTime(61_000), 2);
    before.entry(1, EventTime(62_000), 2);
    close(&mut before, &rules, 60_000);
    assert!(before.changed(0) && before.changed(1));
    let (p0, p1) = (capture(&before, &rules, 0), capture(&before, &rules, 1));
    assert_eq!(p0.floor, Some(60_000));
    before.drained(|_| true);
    assert!(!before.changed(0));

    let mut after = Funnel::new(60_000, &rules);
    after.install(0, &p0, &rules);
    after.install(1, &p1, &rules);
    after.settle_restored();
    assert_ne!(
        after.entry(1, EventTime(59_000), 2),
        Counted::InWindow,
        "below the floor"
    );
    let _ = after.entry(1, EventTime(63_000), 2);
    let out = close(&mut after, &rules, 120_000);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].window_start, out[0].entries[2].count), (60_000, 3));
}

#[test]
fn one_writers_floors_are_settled_together() {
    let rules = rules();
    let record = |writer, floor: i64, starts: &[i64]| FunnelState {
        writer,
        window_ms: 60_000,
        floor: Some(floor),
        stages: rules.stages.iter().map(|s| s.ordinal).collect(),
        windows: (starts.iter())
            .map(|&s| {
                let mut counts = Accumulator::new(rules.stages.len(), 0);
                counts.entries[1] = 1;
                (s, counts)
            })
            .collect(),
        ..FunnelState::default()
    };
    let mut funnel = Funnel::new(60_000, &rules);
    funnel.install(0, &record(7, 60_000, &[60_000, 120_000]), &rules);
    funnel.install(1, &record(7, 120_000, &[120_000]), &rules);
    funnel.install(2, &record(9, 0, &[60_000]), &rules);
    funnel.settle_restored();
    let out = close(&mut funnel, &rules, 180_000);
    let counts: Vec<(i64, u64)> = out
        .iter()
        .map(|w| (w.window_start, w.entries[1].count))
        .collect();
    assert_eq!(
        counts,
        [(60_000, 1), (120_000, 2)],
        "writer 7's window 60 000 was emitted (floor 120 000); writer 9's was not"
    );
}

#[test]
fn a_lagging_part_emits_the_windows_the_instance_closed_as_it_catches_up() {
    let rules = rules();
    let mut funnel = Funnel::new(60_000, &rules);
    let _ = funnel.entry(0, EventTime(200_000), 1);
    assert_eq!(close(&mut funnel, &rules, 240_000).len(), 1);
    let taken_over = FunnelState {
        window_ms: 60_000,
        floor: Some(60_000),
        stages: rules.stages.iter().map(|s| s.ordinal).collect(),
        windows: vec![(60_000, {
            let mut counts = Accumulator::new(rules.stages.len(), 0);
            counts.entries[1] = 1;
            counts
        })],
        ..FunnelState::default()
    };
    funnel.reset_part(1);
    funnel.install(1, &taken_over, &rules);
    funnel.settle_restored();
    assert!(funnel.is_lagging());
    assert_eq!(
        funnel.entry(1, EventTime(130_000), 1),
        Counted::InWindow,
        "counts on behind the instance"
    );
    assert_ne!(
        funnel.entry(0, EventTime(130_000), 1),
        Counted::InWindow,
        "but not in step"
    );
    let mut out = Vec::new();
    funnel.catch_up(1, EventTime(125_000), &rules, &mut |w| out.push(w));
    funnel.catch_up(1, EventTime(500_000), &rules, &mut |w| out.push(w));
    let counts: Vec<(i64, u64)> = out
        .iter()
        .map(|w| (w.window_start, w.entries[1].count))
        .collect();
    assert_eq!(counts, [(60_000, 1), (120_000, 1)]);
    assert!(!funnel.is_lagging());
}

#[test]
fn counts_applied_again_in_windows_their_writer_emitted_are_dropped() {
    let rules = rules();
    let mut before = Funnel::new(60_000, &rules);
    before.track_changes(true);
    before.entry(0, EventTime(61_000), 1);
    before.entry(1, EventTime(62_000), 1);
    let p1 = capture(&before, &rules, 1);
    before.drained(|_| true);
    // Window 60 000 closes, and only partition 0's record is written again.
    close(&mut before, &rules, 120_000);
    let p0 = capture(&before, &rules, 0);

    let mut after = Funnel::new(60_000, &rules);
    after.install(0, &p0, &rules);
    after.install(1, &p1, &rules);
    after.settle_restored();
    assert!(
        after.is_closed(1, EventTime(63_000)),
        "emitted before the crash"
    );
    after.late(1, EventTime(63_000));
    after.set_late_item(true);
    after.late(1, EventTime(64_000));
    after.set_late_item(false);
    let out = close(&mut after, &rules, 180_000);
    let got: Vec<(i64, u64, u64)> = (out.iter())
        .map(|w| (w.window_start, w.entries[1].count, w.late_events))
        .collect();
    assert_eq!(got, [(120_000, 0, 1)], "in time: counted then; late: late");
}

#[test]
fn a_partition_whose_records_were_lost_takes_the_floor_claimed_for_it() {
    let rules = rules();
    let mut before = Funnel::new(60_000, &rules);
    before.track_changes(true);
    for partition in 0..3 {
        before.reset_part(partition);
    }
    before.drop_part(2);
    let _ = before.entry(0, EventTime(1_000), 1);
    let _ = before.entry(1, EventTime(2_000), 1);
    assert_eq!(close(&mut before, &rules, 60_000).len(), 1);
    // Partition 0's first drain is lost in the crash; partition 1's is not.
    let p1 = capture(&before, &rules, 1);
    assert_eq!(
        p1.claims,
        [(0, 60_000)],
        "the revoked partition 2 is not claimed"
    );

    let mut after = Funnel::new(60_000, &rules);
    after.track_changes(true);
    for partition in 0..2 {
        after.reset_part(partition);
    }
    after.install(1, &p1, &rules);
    after.settle_restored();
    assert!(
        after.is_closed(0, EventTime(1_000)),
        "emitted before the crash, with partition 0's count"
    );
    assert!(
        after.changed(0),
        "the raised floor is written with the next drain"
    );
    let _ = after.entry(0, EventTime(1_000), 1);
    assert_eq!(
        close(&mut after, &rules, 120_000).len(),
        0,
        "not emitted again"
    );
}

#[test]
fn a_revoked_partition_whose_customers_leave_with_deadlines_stays_unclaimed() {
    let rules = rules();
    let mut funnel = Funnel::new(60_000, &rules);
    funnel.reset_part(0);
    funnel.reset_part(1);
    funnel.in_flight(1, 0, 1, Some(EventTime(1_000)));
    funnel.drop_part(1);
    // The revocation drops partition 1's customers, ending their count.
    funnel.in_flight(1, 0, -1, None);
    let claims = capture(&funnel, &rules, 0).claims;
    assert!(claims.iter().all(|&(p, _)| p != 1), "claims {claims:?}");
    assert_eq!(funnel.totals().in_flight[0], 0);
}
