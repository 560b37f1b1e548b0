//! Throughput of the engine alone and of decoding, on generated events.
//!
//! `cargo bench --bench engine` runs:
//! - `engine/ingest_1m_customers`: the engine with 1M customers in memory
//!   (pre-warmed with one touchpoint each), fed the generated stream;
//! - `decode/json`, `decode/avro`: the decoders alone;
//! - `decode_engine/json`: JSON decode + validation + engine, 1M customers.
//!
//! Set `JOURNEYD_BENCH_CUSTOMERS` to change the population (default 1M).
//! At start-up it prints the memory held per tracked customer, from the
//! engine's own accounting and from the process's resident set.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use journeyd::codec::{Validator, avro, json};
use journeyd::config::{Config, TimeMode};
use journeyd::engine::Engine;
use journeyd::model::{Channel, EventTime, Output, Touchpoint};
use journeyd::tools::{DEFAULT_START, GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig};

/// Records generated for the measured stream.
const STREAM_RECORDS: u64 = 3_000_000;

fn customers() -> u64 {
    std::env::var("JOURNEYD_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn generator_config() -> GeneratorConfig {
    GeneratorConfig {
        customers: customers(),
        seed: 11,
        ..GeneratorConfig::default()
    }
}

fn stream() -> Vec<GeneratedEvent> {
    Generator::new(generator_config())
        .take(STREAM_RECORDS as usize)
        .filter_map(|r| match r {
            GeneratedRecord::Valid(e) => Some(e),
            GeneratedRecord::Invalid { .. } => None,
        })
        .collect()
}

fn config() -> Config {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    config
}

/// An engine holding every generated customer, one touchpoint each, a
/// millisecond apart before the stream starts (so that the reorder buffer
/// drains as it would on a live stream).
fn warm_engine() -> Engine {
    let mut engine = Engine::new(&config()).expect("default config");
    let mut out = Vec::new();
    let start = DEFAULT_START.minus_ms(86_400_000);
    let mut id = String::new();
    let mut event_id = String::new();
    for n in 0..customers() {
        id.clear();
        event_id.clear();
        use std::fmt::Write;
        let _ = write!(id, "c-{n:010}");
        let _ = write!(event_id, "warm-{n}");
        let at = start.plus_ms(n as i64);
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
        engine.ingest(0, &tp, at, &mut out);
        out.clear();
    }
    engine
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn report_memory() {
    let before = resident_bytes();
    let engine = warm_engine();
    let after = resident_bytes();
    let n = engine.tracked_customers().max(1);
    eprintln!(
        "memory: {n} customers; engine accounting {} B/customer; resident set growth {} B/customer",
        engine.state_bytes() / n,
        after.saturating_sub(before) / n
    );
}

/// Feeds events one at a time, rebuilding the warm engine (untimed) when
/// the stream runs out.
struct Feeder<T> {
    engine: Engine,
    items: Vec<T>,
    next: usize,
    out: Vec<Output>,
}

impl<T> Feeder<T> {
    fn new(items: Vec<T>) -> Self {
        Feeder {
            engine: warm_engine(),
            items,
            next: 0,
            out: Vec::new(),
        }
    }

    fn run(&mut self, n: u64, mut step: impl FnMut(&mut Engine, &T, &mut Vec<Output>)) -> Duration {
        let mut elapsed = Duration::ZERO;
        let mut left = n as usize;
        while left > 0 {
            if self.next == self.items.len() {
                self.engine = warm_engine();
                self.next = 0;
            }
            let take = left.min(self.items.len() - self.next);
            let clock = journeyd::clock::Stopwatch::start();
            for item in &self.items[self.next..self.next + take] {
                step(&mut self.engine, item, &mut self.out);
                self.out.clear();
            }
            elapsed += clock.elapsed();
            self.next += take;
            left -= take;
        }
        elapsed
    }
}

fn bench_engine(c: &mut Criterion) {
    report_memory();
    let mut feeder = Feeder::new(stream());
    let mut group = c.benchmark_group("engine");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("ingest_1m_customers", |b| {
        b.iter_custom(|iters| {
            feeder.run(iters, |engine, ev, out| {
                black_box(engine.ingest(0, &ev.touchpoint(), ev.occurred_at, out));
            })
        })
    });
    group.finish();
}

fn encoded(
    events: &[GeneratedEvent],
    encode: impl Fn(&GeneratedEvent, &mut Vec<u8>),
) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| {
            let mut buf = Vec::new();
            encode(e, &mut buf);
            buf
        })
        .collect()
}

fn bench_decode(c: &mut Criterion) {
    let sample: Vec<GeneratedEvent> = stream().into_iter().take(200_000).collect();
    let json_lines = encoded(&sample, GeneratedEvent::write_json);
    let avro_data = encoded(&sample, |e, buf| avro::encode_datum(&e.touchpoint(), buf));
    let mut group = c.benchmark_group("decode");
    group
        .throughput(Throughput::Elements(json_lines.len() as u64))
        .sample_size(20);
    group.bench_function("json", |b| {
        b.iter(|| {
            json_lines
                .iter()
                .filter(|l| black_box(json::decode(l)).is_ok())
                .count()
        })
    });
    group.bench_function("avro", |b| {
        b.iter(|| {
            avro_data
                .iter()
                .filter(|d| black_box(avro::decode(d)).is_ok())
                .count()
        })
    });
    group.finish();
}

fn bench_decode_engine(c: &mut Criterion) {
    let lines = encoded(&stream(), GeneratedEvent::write_json);
    let validator = Validator::default();
    let now = EventTime(i64::MAX / 2);
    let mut feeder = Feeder::new(lines);
    let mut group = c.benchmark_group("decode_engine");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("json", |b| {
        b.iter_custom(|iters| {
            feeder.run(iters, |engine, line, out| {
                if let Ok(tp) = validator.decode(journeyd::codec::Encoding::Json, line, now) {
                    black_box(engine.ingest(0, &tp, tp.occurred_at, out));
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_engine, bench_decode, bench_decode_engine);
criterion_main!(benches);
