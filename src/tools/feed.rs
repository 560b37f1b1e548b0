//! A producer thread writing the synthetic clickstream to a Kafka topic:
//! the demo's input and `journeyd generate --brokers`.
//!
//! Records come from the deterministic [`Generator`], keyed by customer id,
//! at most `rate` per second (a token bucket). Invalid records go out
//! unchanged, keyed by the customer id they still carry, if any. Two ways
//! to time them ([`Timing`]):
//!
//! - **Live**: each record leaves at the wall-clock instant its simulated
//!   time maps to on the demo's compressed calendar ([`Timeline`]) and is
//!   stamped with that instant as `occurred_at`, so the stream looks live.
//!   The population is sized so that, once the first customers' journeys
//!   are under way, the stream runs at about `rate`: `customers` arrivals
//!   are spread over a simulated span that takes about
//!   `customers * EVENTS_PER_CUSTOMER / rate` seconds to play. When a run
//!   ends, the next one starts at once with a new seed, and its customer,
//!   event and session ids carry a `r<run>-` prefix, so new customers
//!   arrive while the old ones lapse and churn.
//! - **As generated**: one pass over the generator's output with its own
//!   (historical) timestamps, as fast as `rate` allows: the same records
//!   as `journeyd generate --out`, for preloading a topic and for
//!   comparing `journeyd run` with `journeyd replay` of the same file.
//!
//! Memory stays bounded: the generator holds one small record per active
//! customer, and librdkafka's queue is capped; a full queue makes the
//! thread wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use compact_str::{CompactString, format_compact};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ThreadedProducer};

use super::demo::timescale::{SPEEDUP, Timeline};
use crate::clock::{Stopwatch, wall_now};
use crate::kafka::{self, Hooks, ProducerHooks};
use crate::model::EventTime;
use crate::telemetry::KafkaLog;
use crate::tools::{GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig};

/// Records per simulated customer, on average over a whole journey
/// (measured on the generator's default personas).
const EVENTS_PER_CUSTOMER: f64 = 13.0;
/// The shortest simulated span: long enough for most journeys to finish.
const MIN_SPAN_DAYS: f64 = 120.0;
/// The longest span the generator accepts, about 100 years.
const MAX_SPAN_DAYS: f64 = 36_500.0;
/// Seed of the first run; run `n` uses `SEED + n - 1`.
const SEED: u64 = 42;
/// Messages librdkafka may queue before `send` reports a full queue.
const QUEUE_MESSAGES: &str = "20000";
/// How long librdkafka gathers records into one batch. The embedded
/// broker answers a fetch with one batch per partition, so batches of a
/// few records would cap what the service can consume; 50 ms makes them
/// large enough (at 2,000/s, about 17 records per partition) and is far
/// below the lateness the engine allows.
const LINGER_MS: &str = "50";
/// How long the thread sleeps at most before looking at the stop flag.
const MAX_NAP: Duration = Duration::from_millis(100);
/// How long the final flush may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How records are timed and stamped (see the module docs).
#[derive(Clone, Debug)]
pub enum Timing {
    /// Stamped with the wall clock on the demo's compressed calendar;
    /// generator runs of `customers` repeat until stopped.
    Live {
        /// Customers per generator run.
        customers: u64,
    },
    /// One pass of this generator, with its own timestamps.
    AsGenerated(GeneratorConfig),
}

/// What to produce, and where.
#[derive(Clone, Debug)]
pub struct FeedPlan {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The touchpoint topic.
    pub topic: String,
    /// Records per second, at most; `None`: as fast as the broker takes them.
    pub rate: Option<u64>,
    /// Live or as generated.
    pub timing: Timing,
    /// Stop after this many records.
    pub limit: Option<u64>,
    /// `client.id` of the producer.
    pub client_id: String,
    /// More librdkafka properties (security, tuning); they win over the
    /// defaults set here.
    pub properties: Vec<(String, String)>,
}

/// What the producer has done so far; read by the summary.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Records acknowledged by the broker.
    pub delivered: AtomicU64,
    /// Records the broker did not take.
    pub failed: AtomicU64,
    /// Invalid records sent (deliberately bad input).
    pub invalid: AtomicU64,
    /// The generator run under way, from 1.
    pub run: AtomicU64,
    /// Simulated days since the start of the current run.
    pub sim_day: AtomicI64,
}

/// Counts delivery reports (the shared client context, [`crate::kafka`],
/// forwards librdkafka's logs with the values of secret `-X` properties
/// scrubbed).
struct FeedHooks {
    /// Where the counts go.
    stats: Arc<FeedStats>,
}

type FeedContext = kafka::Context<FeedHooks>;

impl Hooks for FeedHooks {}

impl ProducerHooks for FeedHooks {
    type Opaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = match result {
            Ok(_) => &self.stats.delivered,
            Err(_) => &self.stats.failed,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Starts the producer thread. It runs until `stop` is set, the limit is
/// reached or an as-generated pass ends; then it flushes.
pub fn spawn(
    plan: FeedPlan,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &plan.bootstrap)
        .set("client.id", &plan.client_id)
        .set("linger.ms", LINGER_MS)
        .set("queue.buffering.max.messages", QUEUE_MESSAGES);
    for (key, value) in &plan.properties {
        config.set(key, value);
    }
    let producer: ThreadedProducer<FeedContext> = config
        .create_with_context(kafka::Context::new(
            KafkaLog::from_properties(
                plan.properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            FeedHooks {
                stats: stats.clone(),
            },
        ))
        .context("cannot create the clickstream producer")?;
    stats.run.store(1, Relaxed);
    let feed = Feed {
        producer,
        pacer: Pacer::new(plan.rate),
        current: Run::first(&plan, wall_now())?,
        plan,
        stats,
        sent: 0,
        buf: Vec::with_capacity(512),
    };
    let thread = std::thread::Builder::new()
        .name("journeyd-feed".into())
        .spawn(move || feed.run(&stop))?;
    Ok(thread)
}

/// The producer thread's state.
struct Feed {
    /// Writes to the touchpoint topic; its own thread serves delivery reports.
    producer: ThreadedProducer<FeedContext>,
    /// Holds the rate.
    pacer: Pacer,
    /// The generator run under way.
    current: Run,
    /// Topic, rate and population size.
    plan: FeedPlan,
    /// Counters shared with the summary.
    stats: Arc<FeedStats>,
    /// Records handed to librdkafka so far.
    sent: u64,
    /// The value of the record being sent.
    buf: Vec<u8>,
}

impl Feed {
    fn run(mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        let result = self.produce(stop);
        if let Err(error) = self.producer.flush(FLUSH_TIMEOUT) {
            tracing::warn!(%error, "Clickstream producer: records left unflushed.");
        }
        result
    }

    fn produce(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        while !stop.load(Relaxed) && self.plan.limit.is_none_or(|limit| self.sent < limit) {
            let Some(record) = self.current.generator.next() else {
                let Some(next) = self.current.next(&self.plan, wall_now())? else {
                    return Ok(());
                };
                self.current = next;
                self.stats.run.store(self.current.number, Relaxed);
                continue;
            };
            let key = match record {
                GeneratedRecord::Valid(event) => match self.prepare(event, stop) {
                    Some(key) => Some(key),
                    None => return Ok(()),
                },
                GeneratedRecord::Invalid { bytes, .. } => {
                    if !self.pacer.acquire(stop) {
                        return Ok(());
                    }
                    self.stats.invalid.fetch_add(1, Relaxed);
                    self.buf = bytes;
                    customer_id_in(&self.buf)
                }
            };
            self.send(key.as_deref(), stop)?;
            self.sent += 1;
        }
        Ok(())
    }

    /// Waits until `event` is due and the rate allows it, then writes it
    /// (live-stamped on a live timeline) into `buf`. Returns its key, or
    /// `None` on stop.
    fn prepare(&mut self, mut event: GeneratedEvent, stop: &AtomicBool) -> Option<CompactString> {
        let sim = event.occurred_at;
        if let Some(timeline) = &self.current.timeline
            && !sleep_until(timeline.wall_time(sim), stop)
        {
            return None;
        }
        if !self.pacer.acquire(stop) {
            return None;
        }
        if let Some(timeline) = &mut self.current.timeline {
            event.occurred_at = timeline.stamp(sim, wall_now());
            self.stats.sim_day.store(timeline.sim_day(sim), Relaxed);
        }
        self.current.rename(&mut event);
        self.buf.clear();
        event.write_json(&mut self.buf);
        Some(event.customer_id)
    }

    /// Hands `buf` to librdkafka, waiting while its queue is full.
    fn send(&self, key: Option<&str>, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut record = BaseRecord::<str, [u8]>::to(&self.plan.topic).payload(&self.buf);
        if let Some(key) = key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if stop.load(Relaxed) {
                        return Ok(());
                    }
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error).context("clickstream producer"),
            }
        }
    }
}

/// One generator run.
struct Run {
    /// From 1; later runs prefix their ids with it.
    number: u64,
    /// The records of this run, in event-time order.
    generator: Generator,
    /// When each simulated instant of this run is due; `None` as generated.
    timeline: Option<Timeline>,
}

impl Run {
    /// The first run of `plan`, a live one with simulated time zero at wall
    /// time `origin`.
    fn first(plan: &FeedPlan, origin: EventTime) -> anyhow::Result<Run> {
        match &plan.timing {
            Timing::Live { customers } => Run::live(1, *customers, plan.rate, origin),
            Timing::AsGenerated(config) => Ok(Run {
                number: 1,
                generator: Generator::try_new(config.clone())?,
                timeline: None,
            }),
        }
    }

    /// The run after this one: live runs repeat, an as-generated pass ends.
    fn next(&self, plan: &FeedPlan, origin: EventTime) -> anyhow::Result<Option<Run>> {
        match &plan.timing {
            Timing::Live { customers } => {
                Run::live(self.number + 1, *customers, plan.rate, origin).map(Some)
            }
            Timing::AsGenerated(_) => Ok(None),
        }
    }

    fn live(
        number: u64,
        customers: u64,
        rate: Option<u64>,
        origin: EventTime,
    ) -> anyhow::Result<Run> {
        let config = live_generator_config(customers, rate, number);
        let timeline = Timeline::new(config.start, origin);
        let generator = Generator::try_new(config)?;
        Ok(Run {
            number,
            generator,
            timeline: Some(timeline),
        })
    }

    /// Gives the ids of later runs their `r<run>-` prefix.
    fn rename(&self, event: &mut GeneratedEvent) {
        if self.number > 1 {
            let n = self.number;
            event.customer_id = format_compact!("r{n}-{}", event.customer_id);
            event.event_id = format_compact!("r{n}-{}", event.event_id);
            if let Some(session) = &mut event.session_id {
                *session = format_compact!("r{n}-{session}");
            }
        }
    }
}

/// The generator settings of live run `number`: a new seed per run, and a
/// span that makes the stream run at about `rate` (see the module docs).
/// Without a rate the span is the shortest.
fn live_generator_config(customers: u64, rate: Option<u64>, number: u64) -> GeneratorConfig {
    let days = match rate {
        Some(rate) => {
            let wall_secs = customers as f64 * EVENTS_PER_CUSTOMER / rate.max(1) as f64;
            (wall_secs * f64::from(SPEEDUP) / 86_400.0).clamp(MIN_SPAN_DAYS, MAX_SPAN_DAYS)
        }
        None => MIN_SPAN_DAYS,
    };
    GeneratorConfig {
        customers,
        seed: SEED.wrapping_add(number - 1),
        span: Duration::from_secs_f64(days * 86_400.0),
        ..GeneratorConfig::default()
    }
}

/// The customer id an invalid record still carries, for its key.
fn customer_id_in(bytes: &[u8]) -> Option<CompactString> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let id = value.get("customer_id")?.as_str()?;
    (!id.is_empty()).then(|| CompactString::from(id))
}

/// Sleeps until the wall clock reaches `due`; `false` if stopped first.
fn sleep_until(due: EventTime, stop: &AtomicBool) -> bool {
    loop {
        let left = due.since(wall_now());
        if left <= 0 {
            return true;
        }
        if stop.load(Relaxed) {
            return false;
        }
        std::thread::sleep(MAX_NAP.min(Duration::from_millis(left as u64)));
    }
}

/// A token bucket: `rate` tokens per second, holding at most a twentieth
/// of a second's worth (so a pause is not followed by a burst). Without a
/// rate every token is granted at once.
#[derive(Debug)]
struct Pacer {
    /// Whether there is a rate to hold.
    limited: bool,
    /// Tokens per second.
    rate: f64,
    /// Tokens held at most.
    burst: f64,
    /// Tokens held now.
    tokens: f64,
    /// Measures the time between refills.
    clock: Stopwatch,
    /// `clock.elapsed()` at the last refill.
    refilled: Duration,
}

impl Pacer {
    fn new(rate: Option<u64>) -> Pacer {
        let limited = rate.is_some();
        let rate = rate.unwrap_or(1).max(1) as f64;
        let burst = (rate / 20.0).max(1.0);
        Pacer {
            limited,
            rate,
            burst,
            tokens: burst,
            clock: Stopwatch::start(),
            refilled: Duration::ZERO,
        }
    }

    /// Takes a token, sleeping until one is there; `false` if stopped first.
    fn acquire(&mut self, stop: &AtomicBool) -> bool {
        if !self.limited {
            return true;
        }
        loop {
            let now = self.clock.elapsed();
            let earned = (now - self.refilled).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.refilled = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return true;
            }
            if stop.load(Relaxed) {
                return false;
            }
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.rate);
            std::thread::sleep(wait.min(MAX_NAP));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(timing: Timing, rate: Option<u64>) -> FeedPlan {
        FeedPlan {
            bootstrap: String::new(),
            topic: "touchpoints".into(),
            rate,
            timing,
            limit: None,
            client_id: "test".into(),
            properties: Vec::new(),
        }
    }

    #[test]
    fn the_span_spreads_customers_to_match_the_rate() {
        // 200k customers at 2,000/s: about 21.7 minutes, 650 simulated days.
        let config = live_generator_config(200_000, Some(2_000), 1);
        assert_eq!(config.span.as_secs() / 86_400, 650);
        assert_eq!(config.seed, SEED);
        // Few customers, or no rate: the span never drops below 120 days.
        let config = live_generator_config(100, Some(2_000), 3);
        assert_eq!(config.span.as_secs() / 86_400, 120);
        assert_eq!(config.seed, SEED + 2);
        assert!(config.validate().is_ok());
        let config = live_generator_config(200_000, None, 1);
        assert_eq!(config.span.as_secs() / 86_400, 120);
    }

    #[test]
    fn live_runs_repeat_and_an_as_generated_pass_ends() {
        let live = plan(Timing::Live { customers: 10 }, Some(100));
        let first = Run::first(&live, EventTime(0)).expect("valid");
        assert!(first.timeline.is_some());
        let second = first
            .next(&live, EventTime(0))
            .expect("valid")
            .expect("a run");
        assert_eq!(second.number, 2);
        let config = GeneratorConfig {
            customers: 10,
            ..GeneratorConfig::default()
        };
        let once = plan(Timing::AsGenerated(config), None);
        let first = Run::first(&once, EventTime(0)).expect("valid");
        assert!(first.timeline.is_none());
        assert!(first.next(&once, EventTime(0)).expect("valid").is_none());
    }

    #[test]
    fn without_a_rate_the_pacer_never_waits() {
        let stop = AtomicBool::new(true);
        let mut pacer = Pacer::new(None);
        assert!((0..10_000).all(|_| pacer.acquire(&stop)));
    }

    #[test]
    fn later_runs_prefix_their_ids() {
        let live = plan(Timing::Live { customers: 10 }, Some(100));
        let mut run = Run::first(&live, EventTime(0)).expect("valid");
        let Some(GeneratedRecord::Valid(mut event)) = run.generator.next() else {
            panic!("the first record is valid");
        };
        let original = event.clone();
        run.rename(&mut event);
        assert_eq!(event, original);
        run.number = 2;
        run.rename(&mut event);
        assert_eq!(event.customer_id, format!("r2-{}", original.customer_id));
        assert_eq!(event.event_id, format!("r2-{}", original.event_id));
    }

    #[test]
    fn invalid_records_keep_their_customer_key_when_they_have_one() {
        let id = customer_id_in(br#"{"customer_id":"c-1","occurred_at":5}"#);
        assert_eq!(id.as_deref(), Some("c-1"));
        assert_eq!(customer_id_in(br#"{"customer_id":""}"#), None);
        assert_eq!(customer_id_in(b"not json"), None);
    }

    #[test]
    fn the_pacer_holds_the_rate() {
        let stop = AtomicBool::new(false);
        let mut pacer = Pacer::new(Some(1_000));
        let clock = Stopwatch::start();
        for _ in 0..150 {
            assert!(pacer.acquire(&stop));
        }
        // 50 tokens of burst, then 100 at 1,000/s: at least ~100 ms.
        assert!(
            clock.elapsed() >= Duration::from_millis(90),
            "{:?}",
            clock.elapsed()
        );
    }
}
