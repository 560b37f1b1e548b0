//! What a large population costs the paths that run often or at a
//! rebalance, which must not walk every customer held.
//!
//! `cargo bench --bench scans` builds one engine holding 5M customers
//! (one touchpoint each) spread evenly over 8 input partitions, then runs:
//! - `scans/metrics_tick`: one observation for the metrics, as the driver
//!   takes it every 100 ms ([`EngineSnapshot::of`] and
//!   [`Metrics::observe_engine`]);
//! - `scans/revoke_1_of_8`: [`Engine::revoke`] of one partition (its
//!   customers, timers and buffered touchpoints dropped); the partition's
//!   customers are put back, untimed, before the next revocation;
//! - `scans/revoke_small`: the revocation of a ninth partition holding
//!   1,000 customers besides the 5M, put back the same way: what a
//!   revocation costs beyond its own partition's customers.
//!
//! Set `JOURNEYD_BENCH_CUSTOMERS` to change the population (default 5M).

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use journeyd::config::{Config, TimeMode};
use journeyd::engine::Engine;
use journeyd::model::{Channel, EventTime, Touchpoint};
use journeyd::telemetry::{EngineSnapshot, Metrics};
use journeyd::tools::DEFAULT_START;

/// Input partitions the customers are spread over.
const PARTITIONS: u64 = 8;

/// The small partition, and its customers.
const SMALL: u32 = PARTITIONS as u32;
const SMALL_CUSTOMERS: u64 = 1_000;

fn customers() -> u64 {
    std::env::var("JOURNEYD_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000)
}

fn config() -> Config {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    config
}

/// Gives customer `n` (of partition `n % PARTITIONS`) one touchpoint at
/// `at`.
fn touch(engine: &mut Engine, n: u64, at: EventTime, ids: &mut (String, String)) {
    touch_in(engine, ((n % PARTITIONS) as u32, "c"), n, at, ids);
}

/// Gives customer `n` of `partition`, whose id starts with `prefix`, one
/// touchpoint at `at`.
fn touch_in(
    engine: &mut Engine,
    (partition, prefix): (u32, &str),
    n: u64,
    at: EventTime,
    ids: &mut (String, String),
) {
    let (id, event_id) = ids;
    id.clear();
    event_id.clear();
    let _ = write!(id, "{prefix}-{n:010}");
    let _ = write!(event_id, "e-{n}-{}", at.0);
    let tp = Touchpoint {
        event_id: event_id.as_str().into(),
        customer_id: id.as_str().into(),
        occurred_at: at,
        channel: Channel::Web,
        action: "page_view".into(),
        value: None,
        session_id: None,
        attributes: Default::default(),
    };
    let mut out = Vec::new();
    engine.ingest(partition, &tp, at, &mut out);
}

/// An engine holding every customer, a millisecond apart.
fn populated() -> Engine {
    let mut engine = Engine::new(&config()).expect("default config");
    let start = DEFAULT_START.minus_ms(86_400_000);
    for p in 0..PARTITIONS {
        engine.assign(p as u32, start);
    }
    let mut ids = (String::new(), String::new());
    for n in 0..customers() {
        touch(&mut engine, n, start.plus_ms(n as i64), &mut ids);
    }
    refill_small(&mut engine, 0);
    engine
}

/// Puts the small partition's customers (back), later in time.
fn refill_small(engine: &mut Engine, round: u64) {
    let start = DEFAULT_START.plus_ms(round as i64 * 86_400_000);
    engine.assign(SMALL, start);
    let mut ids = (String::new(), String::new());
    for n in 0..SMALL_CUSTOMERS {
        touch_in(engine, (SMALL, "s"), n, start.plus_ms(n as i64), &mut ids);
    }
}

/// Puts partition `p`'s customers back after its revocation, later in time.
fn refill(engine: &mut Engine, p: u64, round: u64) {
    let start = DEFAULT_START.plus_ms(round as i64 * 86_400_000);
    engine.assign(p as u32, start);
    let mut ids = (String::new(), String::new());
    for n in (p..customers()).step_by(PARTITIONS as usize) {
        touch(engine, n, start.plus_ms(n as i64), &mut ids);
    }
}

fn bench_scans(c: &mut Criterion) {
    let mut engine = populated();
    eprintln!(
        "scans: {} customers over {PARTITIONS} partitions, {} bytes of state",
        engine.tracked_customers(),
        engine.state_bytes()
    );
    let metrics = Metrics::new().expect("metrics");
    let wall = DEFAULT_START;
    let mut group = c.benchmark_group("scans");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(1));
    group.bench_function("metrics_tick", |b| {
        b.iter(|| metrics.observe_engine(black_box(&EngineSnapshot::of(&engine, wall))))
    });
    let mut round = 0;
    group.bench_function("revoke_1_of_8", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let p = round % PARTITIONS;
                let clock = journeyd::clock::Stopwatch::start();
                black_box(engine.revoke(p as u32));
                elapsed += clock.elapsed();
                refill(&mut engine, p, round);
            }
            elapsed
        })
    });
    let mut round = 0;
    group.bench_function("revoke_small", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let clock = journeyd::clock::Stopwatch::start();
                black_box(engine.revoke(SMALL));
                elapsed += clock.elapsed();
                refill_small(&mut engine, round);
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, bench_scans);
criterion_main!(benches);
