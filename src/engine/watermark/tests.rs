use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// `h:m:s` (UTC) on a fixed day.
fn at(h: i64, m: i64, s: i64) -> EventTime {
    EventTime(1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + ((h * 60 + m) * 60 + s) * 1000)
}

fn watermarks(mode: TimeMode) -> Watermarks {
    Watermarks::new(&TimeConfig {
        mode,
        allowed_lateness: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(60),
        ..TimeConfig::default()
    })
}

#[test]
fn the_minimum_over_partitions_minus_lateness() {
    let mut w = watermarks(TimeMode::Event);
    assert_eq!(w.current(), EventTime::MIN);
    w.observe(0, at(10, 0, 0), at(10, 0, 0));
    assert_eq!(w.current(), at(9, 59, 30));
    w.observe(1, at(10, 0, 40), at(10, 0, 0));
    assert_eq!(w.current(), at(9, 59, 30));
    w.observe(0, at(10, 1, 0), at(10, 0, 0));
    assert_eq!(w.current(), at(10, 0, 10));
    w.observe(7, at(10, 5, 0), at(10, 0, 0));
    assert_eq!(w.current(), at(10, 0, 10));
    w.observe(1, at(10, 2, 0), at(10, 0, 0));
    assert_eq!(w.current(), at(10, 0, 30));
}

#[test]
fn lateness_decides_what_is_late() {
    let mut w = watermarks(TimeMode::Event);
    w.observe(0, at(10, 0, 0), at(10, 0, 0));
    assert!(!w.is_late(at(9, 59, 30)));
    assert!(w.is_late(at(9, 59, 29)));
    w.observe(0, at(9, 59, 0), at(10, 0, 0));
    assert_eq!(w.current(), at(9, 59, 30), "a late event moves nothing");
}

#[test]
fn an_idle_partition_stops_holding_back() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.observe(0, at(10, 0, 0), at(10, 0, 0));
    w.observe(1, at(10, 0, 20), at(10, 0, 20));
    w.observe(1, at(10, 0, 50), at(10, 0, 50));
    assert_eq!(w.current(), at(9, 59, 30));
    w.tick(at(10, 0, 59));
    assert_eq!(w.current(), at(9, 59, 30));
    w.tick(at(10, 1, 0));
    assert_eq!(w.current(), at(10, 0, 20), "p0 idle: p1 alone counts");
    w.observe(0, at(10, 0, 5), at(10, 1, 1));
    assert_eq!(w.current(), at(10, 0, 20), "p0 back, but never backwards");
    w.observe(1, at(10, 1, 0), at(10, 1, 2));
    assert_eq!(w.current(), at(10, 0, 20), "p0 holds again");
}

#[test]
fn an_assigned_partition_without_data_holds_back_until_idle() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.assign(0, at(10, 0, 0));
    w.assign(1, at(10, 0, 0));
    w.observe(0, at(10, 0, 0), at(10, 0, 1));
    w.tick(at(10, 0, 59));
    assert_eq!(w.current(), EventTime::MIN);
    w.tick(at(10, 1, 0));
    assert_eq!(w.current(), at(9, 59, 30));

    let mut e = watermarks(TimeMode::Event);
    e.assign(0, at(10, 0, 0));
    e.assign(1, at(10, 0, 0));
    e.observe(0, at(10, 0, 0), at(10, 0, 1));
    assert_eq!(e.current(), at(9, 59, 30), "event mode: no data, no say");
}

#[test]
fn a_quiet_stream_follows_the_wall_clock_up_to_the_cap() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.observe(0, at(10, 0, 0), at(10, 0, 0));
    w.tick(at(10, 0, 50));
    assert_eq!(w.current(), at(9, 59, 30));
    w.tick(at(10, 1, 30));
    assert_eq!(w.current(), at(10, 0, 0), "idle since 10:01:00: +30 s");
    w.tick(at(10, 10, 0));
    assert_eq!(w.current(), at(10, 8, 30), "+8 min 30 s");
    // A watermark restored ahead of the wall clock: the cap binds.
    w.advance_to(at(10, 11, 30));
    w.tick(at(10, 12, 0));
    assert_eq!(w.current(), at(10, 11, 30), "cap 10:11:30, never backwards");
    w.tick(at(10, 13, 0));
    assert_eq!(w.current(), at(10, 12, 30), "+120 s capped at wall - 30 s");
}

#[test]
fn quiet_advance_does_not_depend_on_tick_frequency() {
    let quiet = |ticks: &[EventTime]| {
        let mut w = watermarks(TimeMode::Hybrid);
        w.observe(0, at(10, 0, 0), at(10, 0, 0));
        w.observe(1, at(10, 0, 20), at(10, 0, 20));
        // Restored ahead of the wall clock, so the cap binds.
        w.advance_to(at(10, 1, 30));
        for &t in ticks {
            w.tick(t);
        }
        w.current()
    };
    let end = at(10, 6, 0);
    let every_second: Vec<_> = (0..=360).map(|s| at(10, 0, s)).collect();
    let expected = quiet(&every_second);
    assert_eq!(quiet(&[at(10, 1, 20), end]), expected);
    assert_eq!(quiet(&[at(10, 3, 0), end]), expected);
    // All idle since 10:01:20, from 10:01:30: +4:40 is 10:06:10, capped at 10:05:30.
    assert_eq!(expected, at(10, 5, 30));
}

#[test]
fn a_restored_watermark_follows_the_wall_clock() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.tick(at(10, 0, 0));
    w.advance_to(at(9, 0, 0));
    w.tick(at(10, 0, 10));
    w.tick(at(10, 1, 10));
    assert_eq!(w.current(), at(9, 1, 0));
}

#[test]
fn a_resumed_partition_holds_from_its_checkpoint() {
    for mode in [TimeMode::Hybrid, TimeMode::Event] {
        let mut w = watermarks(mode);
        w.assign(0, at(10, 5, 0));
        w.assign(1, at(10, 5, 0));
        w.observe(0, at(10, 5, 0), at(10, 5, 1));
        assert_eq!(w.partition_max_seen(1), None);
        w.resume([(1, at(10, 2, 0), at(10, 5, 0))]);
        // Event mode: p1 had no say without data, and the watermark
        // never goes back.
        let expected = match mode {
            TimeMode::Hybrid => at(10, 1, 30),
            TimeMode::Event => at(10, 4, 30),
        };
        assert_eq!(w.current(), expected, "{mode:?}");
        assert_eq!(w.partition_max_seen(1), Some(at(10, 2, 0)));
        w.resume([(1, at(9, 0, 0), at(10, 5, 0))]);
        assert_eq!(w.partition_max_seen(1), Some(at(10, 2, 0)), "never lowered");
        w.observe(1, at(10, 6, 0), at(10, 6, 2));
        assert_eq!(w.current(), at(10, 4, 30));
    }
}

#[test]
fn partitions_resumed_together_hold_at_their_minimum() {
    let mut w = watermarks(TimeMode::Event);
    let wall = at(10, 6, 0);
    w.resume([
        (0, at(10, 5, 0), wall),
        (1, at(10, 2, 0), wall),
        (2, EventTime::MIN, wall),
    ]);
    assert_eq!(w.current(), at(10, 1, 30));
    assert_eq!(w.partition_max_seen(2), None);
}

#[test]
fn a_resumed_quiet_stream_counts_the_outage() {
    let mut w = watermarks(TimeMode::Hybrid);
    // Committed at 10:00:00 with events up to 09:59:50; back at 12:00.
    w.assign(0, at(12, 0, 0));
    w.resume([(0, at(9, 59, 50), at(10, 0, 0))]);
    assert_eq!(w.current(), at(9, 59, 20));
    w.tick(at(12, 0, 59));
    assert_eq!(
        w.current(),
        at(9, 59, 20),
        "not idle yet: a backlog may come"
    );
    w.tick(at(12, 1, 0));
    assert_eq!(
        w.current(),
        at(12, 0, 20),
        "09:59:20 plus 2 h 1 min since the commit"
    );

    let mut backlog = watermarks(TimeMode::Hybrid);
    backlog.assign(0, at(12, 0, 0));
    backlog.resume([(0, at(9, 59, 50), at(10, 0, 0))]);
    backlog.observe(0, at(10, 30, 0), at(12, 0, 1));
    backlog.tick(at(12, 1, 1));
    assert_eq!(
        backlog.current(),
        at(10, 29, 30),
        "data came: it was not quiet"
    );
    backlog.tick(at(12, 1, 31));
    assert_eq!(backlog.current(), at(10, 30, 0), "quiet from 12:01:01 only");
}

#[test]
fn nothing_seen_nothing_to_advance() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.tick(at(10, 0, 0));
    w.assign(0, at(10, 0, 0));
    w.tick(at(11, 0, 0));
    assert_eq!(w.current(), EventTime::MIN);
}

#[test]
fn revoking_the_slowest_partition_releases_the_watermark() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.observe(0, at(10, 0, 0), at(10, 5, 0));
    w.observe(1, at(10, 5, 0), at(10, 5, 0));
    assert_eq!(w.current(), at(9, 59, 30));
    w.revoke(0);
    assert_eq!(w.current(), at(10, 4, 30));
    w.revoke(9);
    w.assign(0, at(10, 5, 1));
    w.observe(0, at(10, 1, 0), at(10, 5, 2));
    assert_eq!(w.current(), at(10, 4, 30));
    assert!(w.is_late(at(10, 1, 0)));
}

#[test]
fn a_fast_clock_moves_its_partition_only_up_to_the_wall_clock() {
    for mode in [TimeMode::Hybrid, TimeMode::Event] {
        let hybrid = mode == TimeMode::Hybrid;
        let mut w = watermarks(mode);
        assert!(!w.observe(0, at(10, 0, 0), at(10, 0, 0)));
        assert!(!w.observe(1, at(10, 0, 0), at(10, 0, 0)));
        // A device clock 4 minutes fast.
        assert_eq!(w.observe(0, at(10, 4, 0), at(10, 0, 1)), hybrid);
        let own = if hybrid { at(9, 59, 31) } else { at(10, 3, 30) };
        assert_eq!(w.partition_time(0), own, "{mode:?}");
        assert!(!w.is_late(at(10, 0, 0)));
        w.observe(0, at(10, 0, 40), at(10, 0, 40));
        w.observe(1, at(10, 0, 40), at(10, 0, 40));
        let own = if hybrid { at(10, 0, 10) } else { at(10, 3, 30) };
        assert_eq!(w.partition_time(0), own, "{mode:?}: on time is not late");
        assert_eq!(w.current(), at(10, 0, 10), "{mode:?}");
        assert_eq!(w.max_seen(), at(10, 4, 0), "the newest stamp as it is");
        // Its own time passes the fast stamp once the wall clock does.
        w.observe(0, at(10, 4, 31), at(10, 4, 31));
        assert!(w.partition_time(0) > at(10, 4, 0), "{mode:?}");
    }
}

#[test]
fn event_mode_ignores_the_wall_clock() {
    let run = |walls: [i64; 3]| {
        let mut w = watermarks(TimeMode::Event);
        let mut seen = Vec::new();
        for (i, t) in [at(10, 0, 0), at(10, 0, 30), at(10, 0, 10)]
            .into_iter()
            .enumerate()
        {
            w.observe(i as u32 % 2, t, EventTime(walls[i]));
            w.tick(EventTime(walls[i]).plus_ms(3_600_000));
            seen.push(w.current());
        }
        seen.push(w.finish());
        seen
    };
    let a = run([0, 1, 2]);
    assert_eq!(a, run([5_000_000, 9_000_000_000, 9_100_000_000]));
    assert_eq!(
        a,
        [at(9, 59, 30), at(9, 59, 30), at(9, 59, 40), at(10, 0, 30)]
    );
}

#[test]
fn finish_moves_to_the_newest_event_time() {
    let mut w = watermarks(TimeMode::Event);
    assert_eq!(w.finish(), EventTime::MIN);
    w.observe(1, at(9, 0, 0), EventTime(0));
    w.observe(0, at(10, 0, 0), EventTime(0));
    w.revoke(0);
    assert_eq!(w.current(), at(8, 59, 30));
    assert_eq!(w.finish(), at(10, 0, 0));
    assert_eq!(w.max_seen(), at(10, 0, 0));
    w.advance_to(at(9, 0, 0));
    assert_eq!(w.current(), at(10, 0, 0));
}

/// The timeline in the module documentation, step by step.
#[test]
fn documented_timeline() {
    for mode in [TimeMode::Hybrid, TimeMode::Event] {
        let mut w = watermarks(mode);
        let hybrid = mode == TimeMode::Hybrid;
        let step = |w: &Watermarks, expect_hybrid: EventTime, expect_event: EventTime| {
            let expected = if hybrid { expect_hybrid } else { expect_event };
            assert_eq!(w.current(), expected, "{mode:?}");
        };
        let min = EventTime::MIN;
        w.assign(0, at(10, 0, 0));
        w.assign(1, at(10, 0, 0));
        step(&w, min, min);
        w.observe(0, at(10, 0, 0), at(10, 0, 1));
        step(&w, min, at(9, 59, 30));
        w.observe(1, at(9, 59, 50), at(10, 0, 2));
        step(&w, at(9, 59, 20), at(9, 59, 30));
        w.observe(1, at(10, 0, 4), at(10, 0, 5));
        step(&w, at(9, 59, 30), at(9, 59, 30));
        assert!(!w.is_late(at(9, 59, 40)));
        w.observe(0, at(9, 59, 40), at(10, 0, 6));
        step(&w, at(9, 59, 30), at(9, 59, 30));
        w.observe(0, at(10, 0, 9), at(10, 0, 10));
        step(&w, at(9, 59, 34), at(9, 59, 34));
        w.tick(at(10, 1, 5));
        step(&w, at(9, 59, 39), at(9, 59, 34));
        w.tick(at(10, 1, 10));
        step(&w, at(9, 59, 39), at(9, 59, 34));
        w.tick(at(10, 1, 40));
        step(&w, at(10, 0, 9), at(9, 59, 34));
        w.tick(at(10, 3, 0));
        step(&w, at(10, 1, 29), at(9, 59, 34));
        assert_eq!(w.observe(0, at(10, 5, 0), at(10, 3, 30)), hybrid);
        step(&w, at(10, 3, 0), at(9, 59, 34));
        w.tick(at(10, 4, 40));
        step(&w, at(10, 3, 10), at(9, 59, 34));
        w.tick(at(10, 5, 30));
        step(&w, at(10, 4, 0), at(9, 59, 34));
        assert!(!w.is_late(at(10, 4, 50)));
        w.observe(1, at(10, 4, 50), at(10, 5, 31));
        step(&w, at(10, 4, 20), at(10, 4, 20));
        assert_eq!(w.observe(1, at(10, 5, 40), at(10, 5, 32)), hybrid);
        step(&w, at(10, 5, 2), at(10, 4, 30));
        assert_eq!(w.finish(), at(10, 5, 40));
    }
}

/// The takeover in the module documentation, step by step.
#[test]
fn documented_partition_times() {
    let mut w = watermarks(TimeMode::Event);
    let times = |w: &Watermarks| [w.partition_time(0), w.partition_time(1), w.current()];
    w.observe(1, at(12, 0, 0), at(10, 0, 0));
    assert_eq!(times(&w), [at(11, 59, 30); 3]);
    w.assign(0, at(10, 0, 1));
    assert_eq!(times(&w), [EventTime::MIN, at(11, 59, 30), at(11, 59, 30)]);
    w.resume([(0, at(11, 0, 0), at(10, 0, 0))]);
    assert_eq!(times(&w), [at(10, 59, 30), at(11, 59, 30), at(11, 59, 30)]);
    w.observe(0, at(11, 0, 40), at(10, 0, 3));
    assert_eq!(times(&w), [at(11, 0, 10), at(11, 59, 30), at(11, 59, 30)]);
    w.observe(1, at(12, 10, 0), at(10, 0, 4));
    assert_eq!(times(&w), [at(11, 0, 10), at(12, 9, 30), at(11, 59, 30)]);
    w.observe(0, at(12, 5, 0), at(10, 0, 5));
    assert_eq!(times(&w), [at(12, 4, 30), at(12, 9, 30), at(12, 4, 30)]);
}

#[test]
fn an_idle_partitions_time_follows_the_watermark() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.observe(0, at(10, 0, 0), at(12, 0, 0));
    w.observe(1, at(11, 0, 0), at(12, 0, 30));
    assert_eq!(w.partition_time(0), at(9, 59, 30));
    w.tick(at(12, 1, 0));
    assert_eq!(w.current(), at(10, 59, 30), "p0 idle: p1 alone holds");
    assert_eq!(
        w.partition_time(0),
        at(10, 59, 30),
        "nothing of p0 is to come"
    );
    w.observe(0, at(10, 0, 10), at(12, 1, 1));
    assert_eq!(w.partition_time(0), at(9, 59, 40), "back: its own again");
    assert_eq!(w.partition_time(7), w.current(), "not assigned");
}

#[test]
fn a_held_partition_does_not_go_idle() {
    let mut w = watermarks(TimeMode::Hybrid);
    w.observe(1, at(11, 0, 0), at(11, 0, 0));
    w.assign(0, at(11, 0, 0));
    w.hold(0, at(11, 0, 50));
    w.hold(9, at(11, 0, 50));
    w.tick(at(11, 1, 40));
    assert_eq!(w.partition_time(0), EventTime::MIN, "restoring: not idle");
    w.resume([(0, at(10, 30, 0), at(9, 0, 0))]);
    assert_eq!(w.partition_time(0), at(10, 29, 30));
    w.tick(at(11, 1, 50));
    assert_eq!(
        w.partition_time(0),
        at(11, 1, 20),
        "idle 60 s after the last hold: the quiet stream's watermark"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Observe { partition: u32, occurred_s: i64 },
    Tick,
    Assign(u32),
    Revoke(u32),
    Finish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..5, 0i64..600).prop_map(|(partition, occurred_s)| Op::Observe { partition, occurred_s }),
        3 => Just(Op::Tick),
        1 => (0u32..5).prop_map(Op::Assign),
        1 => (0u32..5).prop_map(Op::Revoke),
        1 => Just(Op::Finish),
    ]
}

proptest! {
    #[test]
    fn never_decreases_nor_runs_ahead(
        hybrid in any::<bool>(),
        ops in proptest::collection::vec((op(), 0i64..90_000), 0..80),
    ) {
        let mut w = watermarks(if hybrid { TimeMode::Hybrid } else { TimeMode::Event });
        let mut wall = at(10, 0, 0);
        let mut finished = false;
        for (op, wall_step_ms) in ops {
            wall = wall.plus_ms(wall_step_ms);
            let before = w.current();
            match op {
                Op::Observe { partition, occurred_s } => {
                    let t = at(10, 0, 0).plus_ms(occurred_s * 1000);
                    w.observe(partition, t, wall);
                }
                Op::Tick => w.tick(wall),
                Op::Assign(p) => w.assign(p, wall),
                Op::Revoke(p) => w.revoke(p),
                Op::Finish => {
                    w.finish();
                    finished = true;
                }
            }
            prop_assert!(w.current() >= before);
            let mut fresh = w.clone();
            fresh.recompute();
            prop_assert_eq!(fresh.held_min, w.held_min, "cached minimum is stale");
            if !finished {
                // Hybrid: never past the wall clock, whatever the events' stamps.
                let bound = if hybrid { wall } else { w.max_seen() };
                prop_assert!(w.current() <= bound.minus_ms(30_000));
                for p in 0..5 {
                    let own = w.partition_time(p);
                    prop_assert!(own == w.current() || own <= bound.minus_ms(30_000));
                }
            }
        }
    }

    #[test]
    fn event_mode_is_a_function_of_the_events(
        ops in proptest::collection::vec((op(), 0i64..90_000, 0i64..90_000), 0..80),
    ) {
        let run = |pick_second: bool| {
            let mut w = watermarks(TimeMode::Event);
            let mut wall = at(10, 0, 0);
            let mut seen = Vec::new();
            for (op, a, b) in &ops {
                wall = wall.plus_ms(if pick_second { *b } else { *a });
                match *op {
                    Op::Observe { partition, occurred_s } => {
                        w.observe(partition, at(10, 0, 0).plus_ms(occurred_s * 1000), wall);
                    }
                    Op::Tick => w.tick(wall),
                    Op::Assign(p) => w.assign(p, wall),
                    Op::Revoke(p) => w.revoke(p),
                    Op::Finish => {
                        w.finish();
                    }
                }
                seen.push(w.current());
            }
            seen
        };
        prop_assert_eq!(run(false), run(true));
    }
}
