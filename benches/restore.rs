//! Restore from memory: changelog records decoded and inserted into a
//! fresh engine, one core, no Kafka.
//!
//! `cargo bench --bench restore` builds a changelog of one million
//! generated customers once ([`GeneratedChangelog`]: the generator's full
//! journeys through an engine, so states carry purchases, windowed
//! signals, churn signals, de-duplication rings and fences), prints its
//! shape and its bytes per customer, then runs:
//! - `restore/decode`: [`snapshot::decode`] of every value;
//! - `restore/decode_insert`: every record through
//!   [`restore_value`], the restorer's per-record work (key check, the
//!   held-elsewhere look-up, [`journeyd::engine::Engine::restore`]: decode,
//!   insert, timer), into an engine holding nothing, as after a start-up.
//!
//! Throughput is in customers (one record each). Set
//! `JOURNEYD_BENCH_CUSTOMERS` to change the population (default 1M).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use journeyd::config::{Config, TimeMode};
use journeyd::engine::{Engine, snapshot};
use journeyd::runtime::restore::restore_value;
use journeyd::tools::{GeneratedChangelog, GeneratorConfig};

/// Input partitions the customers are spread over, as in `scripts/bench-e2e`.
const PARTITIONS: u32 = 6;

fn customers() -> u64 {
    std::env::var("JOURNEYD_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn config() -> Config {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    config
}

fn changelog() -> GeneratedChangelog {
    let generator = GeneratorConfig {
        customers: customers(),
        seed: 11,
        invalid_ratio: 0.0,
        ..GeneratorConfig::default()
    };
    let clock = journeyd::clock::Stopwatch::start();
    let changelog = GeneratedChangelog::build(&config(), generator, PARTITIONS).expect("config");
    eprintln!(
        "changelog: {} customers from {} touchpoints, built in {:.1}s",
        changelog.len(),
        changelog.touchpoints(),
        clock.elapsed().as_secs_f64()
    );
    changelog
}

/// Prints bytes per customer and what the states hold.
fn report_shape(changelog: &GeneratedChangelog) {
    let n = changelog.len().max(1) as f64;
    let (keys, values) = (changelog.key_bytes() as f64, changelog.value_bytes() as f64);
    eprintln!(
        "changelog bytes per customer: value {:.1} B, key + value {:.1} B",
        values / n,
        (keys + values) / n
    );
    let states: Vec<_> = changelog
        .iter()
        .filter_map(|c| c.value)
        .filter_map(|v| snapshot::decode(v).ok())
        .collect();
    let share = |f: &dyn Fn(&snapshot::CustomerState) -> bool| {
        100.0 * states.iter().filter(|s| f(s)).count() as f64 / n
    };
    eprintln!(
        "states: {:.0}% with a purchase, {:.0}% with a churn band, {:.0}% with windowed-signal \
         times, {:.0}% with a full de-duplication ring, {:.2}% awaiting touchpoints; \
         {:.1} touchpoints each on average",
        share(&|s| s.purchases > 0),
        share(&|s| s.band.is_some()),
        share(&|s| s.windows.iter().any(|w| !w.times.is_empty())),
        share(&|s| s.dedupe.iter().all(|&fp| fp != 0)),
        share(&|s| !s.awaiting.is_empty()),
        states.iter().map(|s| f64::from(s.touchpoints)).sum::<f64>() / n,
    );
}

/// An engine as the service has it before its first restore.
fn fresh_engine() -> Engine {
    let mut engine = Engine::new(&config()).expect("default config");
    engine.track_changes(true);
    for p in 0..PARTITIONS {
        engine.assign(p, journeyd::model::EventTime::MIN);
    }
    engine
}

fn bench_restore(c: &mut Criterion) {
    let changelog = changelog();
    report_shape(&changelog);
    let mut group = c.benchmark_group("restore");
    group
        .throughput(Throughput::Elements(changelog.len() as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    group.bench_function("decode", |b| {
        b.iter(|| {
            changelog
                .iter()
                .filter_map(|c| c.value)
                .filter(|v| black_box(snapshot::decode(v)).is_ok())
                .count()
        })
    });
    group.bench_function("decode_insert", |b| {
        b.iter_batched(
            fresh_engine,
            |mut engine| {
                for c in changelog.iter() {
                    let key = c.customer_id().map(str::as_bytes);
                    let restored = restore_value(&mut engine, c.partition, |_| true, key, c.value);
                    black_box(restored).expect("a generated record");
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_restore);
criterion_main!(benches);
