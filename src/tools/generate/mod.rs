//! The synthetic workload generator: a deterministic stream of realistic
//! touchpoints for tests, benches, `journeyd demo` and `journeyd generate`.
//!
//! Every simulated customer follows a *persona* (browser, considerer, buyer,
//! repeat buyer, advocate, detractor, lapser, returner): a short script of
//! sessions (discover, research, buy, support, ...) separated by days, each
//! session a few actions minutes apart. The scripts follow the default
//! journey model ([`crate::config::JourneyConfig`]) and churn signals
//! ([`crate::config::ChurnConfig`]), so a replay of the stream exercises
//! every stage, drop-off, return and churn band.
//!
//! The stream is produced lazily, in three steps:
//!
//! 1. Arrivals: customer `k` of `n` arrives at a random instant of the `k`-th
//!    of `n` equal slots of the span, so arrivals are sorted and spread out.
//! 2. The population: a [`BinaryHeap`](std::collections::BinaryHeap) of
//!    arrived customers keyed by the time of their next event. Popping the
//!    earliest emits that event and draws the customer's next one, so events
//!    leave in exact event-time order and memory is one small record per
//!    active customer.
//! 3. The outbox: a second heap keyed by `occurred_at + jitter`, with jitter
//!    uniform in `[0, disorder]`. An entry leaves once no event still to be
//!    drawn can have a smaller key, so records leave in key order and no
//!    record follows one whose event time is more than `disorder` later.
//!    Redelivered duplicates (identical, a few seconds at most behind the
//!    original) and invalid records enter here too.
//!
//! This module must not read clocks or use a thread-local random generator:
//! one seeded [`Pcg64Mcg`] drives everything, and the same config always
//! gives the same bytes. Every random draw is part of the output: reordering
//! draws, adding one or skipping one changes the stream for every seed.
//!
//! # Layout
//!
//! - this file: the public API: [`GeneratorConfig`], the records, the
//!   [`Generator`] iterator and [`write_ndjson`].
//! - `population`: arrivals and the heap of active customers.
//! - `customer`: one customer's state machine, and the time between actions
//!   and between sessions.
//! - `persona`: who a customer is, and the script of sessions that follows.
//! - `session`: the actions of one session.
//! - `action`: every action, with its channel, value and attributes.
//! - `outbox`: records waiting to leave, and the counts over those that did.
//! - `fault`: invalid records derived from valid events.
//! - `json`: the wire form of a record.

mod action;
mod customer;
mod fault;
mod json;
mod outbox;
mod persona;
mod population;
mod session;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use compact_str::CompactString;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::model::{Channel, EventTime, Touchpoint};

use self::fault::corrupt;
use self::outbox::{Counts, Kind, Outbox};
use self::population::Population;

/// 2026-01-01T00:00:00Z, the default start of the simulated period.
pub const DEFAULT_START: EventTime = EventTime(1_767_225_600_000);

/// Customer numbers have at most ten digits, so ids stay short and inline.
const MAX_CUSTOMERS: u64 = 9_999_999_999;
/// Upper bound for each fault ratio (they are probabilities per record).
const MAX_RATIO: f64 = 0.3;
/// Long enough for any simulation, short enough that no time overflows.
const MAX_SPAN: Duration = Duration::from_secs(100 * 366 * 86_400);
/// More disorder than this is no longer "slightly out of order".
const MAX_DISORDER: Duration = Duration::from_secs(3_600);
/// 9999-12-31T23:59:59.999Z: the last start time accepted.
const MAX_START: EventTime = EventTime(253_402_300_799_999);

/// What to generate. The same config always yields the same stream.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// How many distinct customers arrive over the span.
    pub customers: u64,
    /// Seed of the single random generator behind every choice.
    pub seed: u64,
    /// Event time of the start of the simulation; no event is earlier.
    pub start: EventTime,
    /// Event-time length of the simulation: customers arrive spread over it
    /// and no event is at or after `start + span`.
    pub span: Duration,
    /// Share of records that are invalid (bad JSON, missing ids, ...).
    pub invalid_ratio: f64,
    /// Share of records that redeliver an earlier event unchanged.
    pub duplicate_ratio: f64,
    /// How far out of event-time order records may be emitted. Keep it below
    /// the engine's allowed lateness (default 30 s) unless late events are
    /// the point of the test.
    pub disorder: Duration,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            customers: 10_000,
            seed: 42,
            start: DEFAULT_START,
            span: Duration::from_secs(120 * 86_400),
            invalid_ratio: 0.002,
            duplicate_ratio: 0.001,
            disorder: Duration::from_secs(5),
        }
    }
}

/// A generator config that cannot be run; lists every problem, by key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid generator config: {}", .0.join("; "))]
pub struct InvalidGeneratorConfig(pub Vec<String>);

impl GeneratorConfig {
    /// Checks every field at once and reports each problem with its key.
    pub fn validate(&self) -> Result<(), InvalidGeneratorConfig> {
        let mut problems = Vec::new();
        if self.customers > MAX_CUSTOMERS {
            problems.push(format!("customers: at most {MAX_CUSTOMERS}"));
        }
        for (key, ratio) in [
            ("invalid_ratio", self.invalid_ratio),
            ("duplicate_ratio", self.duplicate_ratio),
        ] {
            if !(0.0..=MAX_RATIO).contains(&ratio) {
                problems.push(format!(
                    "{key}: must be within 0..={MAX_RATIO}, got {ratio}"
                ));
            }
        }
        if !(EventTime::Y2K..=MAX_START).contains(&self.start) {
            problems.push("start: must be within the years 2000 to 9999".to_owned());
        }
        if self.span > MAX_SPAN {
            problems.push("span: at most 100 years".to_owned());
        }
        if self.disorder > MAX_DISORDER {
            problems.push("disorder: at most 1h".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidGeneratorConfig(problems))
        }
    }
}

/// One generated touchpoint, owning its strings (all short enough to be
/// stored inline).
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedEvent {
    /// `e-<customer number>-<per-customer counter>`; unique except in
    /// redelivered duplicates.
    pub event_id: CompactString,
    /// `c-` and the customer number in ten digits.
    pub customer_id: CompactString,
    /// Event time.
    pub occurred_at: EventTime,
    /// Where it happened; matches the action (ads for `ad_click`, ...).
    pub channel: Channel,
    /// What happened.
    pub action: &'static str,
    /// Order value, subscription price, rating (1-5) or NPS score (0-10).
    pub value: Option<f64>,
    /// `s-<customer number>-<session counter>`, on web and app events only.
    pub session_id: Option<CompactString>,
    /// Free-form attributes (campaign, query, sku, ...); often empty.
    pub attributes: &'static [(&'static str, &'static str)],
}

impl GeneratedEvent {
    /// The event as the engine sees it, borrowing from `self`.
    pub fn touchpoint(&self) -> Touchpoint<'_> {
        Touchpoint {
            event_id: Cow::Borrowed(&self.event_id),
            customer_id: Cow::Borrowed(&self.customer_id),
            occurred_at: self.occurred_at,
            channel: self.channel,
            action: Cow::Borrowed(self.action),
            value: self.value,
            session_id: self.session_id.as_deref().map(Cow::Borrowed),
            attributes: Default::default(),
        }
    }
}

/// One record of the stream: what a producer would send.
#[derive(Clone, Debug, PartialEq)]
pub enum GeneratedRecord {
    /// A well-formed touchpoint (possibly a redelivery of an earlier one).
    Valid(GeneratedEvent),
    /// Bytes the decoder must reject, and the reason label it should report.
    /// Never contains a newline.
    Invalid {
        bytes: Vec<u8>,
        expected_reason: &'static str,
    },
}

/// Counts over the records emitted so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerateStats {
    /// Every record, valid or not.
    pub records: u64,
    /// Valid records, redelivered duplicates included.
    pub valid: u64,
    /// Valid records that redeliver an earlier event.
    pub duplicates: u64,
    /// Invalid records.
    pub invalid: u64,
    /// Invalid records by expected reason label.
    pub invalid_by_reason: BTreeMap<&'static str, u64>,
    /// Distinct customers seen.
    pub customers: u64,
    /// Valid records by action, duplicates excluded.
    pub actions: BTreeMap<&'static str, u64>,
}

/// The stream: an iterator over [`GeneratedRecord`]s in approximately
/// event-time order (see the module docs for the guarantee). It ends when
/// every customer's journey has run out or passed the end of the span.
pub struct Generator {
    /// The one source of randomness.
    rng: Pcg64Mcg,
    /// Arrived customers, by next event time, and the arrival schedule.
    population: Population,
    /// Records drawn but not yet emitted, by emission key.
    outbox: Outbox,
    /// `disorder` in milliseconds.
    disorder_ms: i64,
    /// Chance of an invalid record per drawn event.
    invalid_p: f64,
    /// Chance of a redelivery per drawn event.
    duplicate_p: f64,
    /// What has been emitted.
    counts: Counts,
}

impl Generator {
    /// A generator for `cfg`.
    ///
    /// # Panics
    ///
    /// If the config is invalid; use [`Generator::try_new`] for user input.
    pub fn new(cfg: GeneratorConfig) -> Generator {
        Generator::try_new(cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A generator for `cfg`, or every problem with it.
    pub fn try_new(cfg: GeneratorConfig) -> Result<Generator, InvalidGeneratorConfig> {
        cfg.validate()?;
        let mut rng = Pcg64Mcg::seed_from_u64(cfg.seed);
        // Draw probabilities per event so that the *record* shares match the config.
        let valid_share = 1.0 - cfg.invalid_ratio - cfg.duplicate_ratio;
        Ok(Generator {
            population: Population::new(&cfg, &mut rng),
            rng,
            outbox: Outbox::default(),
            disorder_ms: cfg.disorder.as_millis() as i64,
            invalid_p: cfg.invalid_ratio / valid_share,
            duplicate_p: cfg.duplicate_ratio / valid_share,
            counts: Counts::default(),
        })
    }

    /// Counts over the records emitted so far.
    pub fn stats(&self) -> GenerateStats {
        self.counts.stats()
    }

    /// Customers that have arrived and whose journey is not over: the size
    /// of the generator's state.
    pub fn active_customers(&self) -> usize {
        self.population.active()
    }

    /// Draws the population's next event and puts it, and any duplicate or
    /// invalid record derived from it, into the outbox.
    ///
    /// The draws happen in a fixed order (jitter, duplicate or not, its
    /// jitter, invalid or not, the fault) and so do the pushes (invalid,
    /// original, duplicate): equal keys leave in push order.
    fn pull(&mut self) {
        let Some((event, action, first)) = self.population.next_event(&mut self.rng) else {
            return;
        };
        let t = event.occurred_at.millis();
        let key = t + self.rng.random_range(0..=self.disorder_ms);
        let duplicate = self.rng.random_bool(self.duplicate_p).then(|| {
            let redelivered_key = self.rng.random_range(key..=t + self.disorder_ms);
            (redelivered_key, event.clone())
        });
        if self.rng.random_bool(self.invalid_p) {
            self.push_invalid(key, &event);
        }
        let kind = Kind::Original { action, first };
        self.outbox.push(key, kind, GeneratedRecord::Valid(event));
        if let Some((redelivered_key, copy)) = duplicate {
            let record = GeneratedRecord::Valid(copy);
            self.outbox.push(redelivered_key, Kind::Duplicate, record);
        }
    }

    /// Puts an invalid record derived from `event` into the outbox.
    fn push_invalid(&mut self, key: i64, event: &GeneratedEvent) {
        let (fault, bytes) = corrupt(event, &mut self.rng);
        let record = GeneratedRecord::Invalid {
            bytes,
            expected_reason: fault.reason(),
        };
        self.outbox.push(key, Kind::Invalid(fault), record);
    }
}

impl Iterator for Generator {
    type Item = GeneratedRecord;

    fn next(&mut self) -> Option<GeneratedRecord> {
        // Every event not yet drawn has a key >= its time >= `t`, so the
        // outbox's first entry may leave once its key is below `t`.
        while let Some(t) = self.population.peek_time() {
            if self.outbox.first_key().is_some_and(|key| key < t.millis()) {
                break;
            }
            self.pull();
        }
        let (kind, record) = self.outbox.pop()?;
        self.counts.record(kind);
        Some(record)
    }
}

/// Writes the stream for `cfg` as NDJSON: one record per line, valid events
/// as JSON objects and invalid records as their raw bytes. Stops after
/// `limit` records when given.
pub fn write_ndjson(
    cfg: &GeneratorConfig,
    limit: Option<u64>,
    out: impl Write,
) -> io::Result<GenerateStats> {
    let mut generator = Generator::try_new(cfg.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut line = Vec::with_capacity(512);
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let Some(record) = generator.next() else {
            break;
        };
        left -= 1;
        line.clear();
        record.write_to(&mut line);
        line.push(b'\n');
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(generator.stats())
}

/// The random generator unit tests start from.
#[cfg(test)]
fn test_rng() -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_is_2026() {
        assert_eq!(DEFAULT_START.to_rfc3339(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn validation_reports_every_problem() {
        let cfg = GeneratorConfig {
            invalid_ratio: 2.0,
            duplicate_ratio: f64::NAN,
            start: EventTime(0),
            ..GeneratorConfig::default()
        };
        let problems = cfg.validate().expect_err("invalid").0;
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(Generator::try_new(cfg).is_err());
    }
}
