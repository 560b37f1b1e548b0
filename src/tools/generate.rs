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
//! 2. The population: a [`BinaryHeap`] of arrived customers keyed by the time
//!    of their next event. Popping the earliest emits that event and draws
//!    the customer's next one, so events leave in exact event-time order and
//!    memory is one small record per active customer.
//! 3. The outbox: a second heap keyed by `occurred_at + jitter`, with jitter
//!    uniform in `[0, disorder]`. An entry leaves once no event still to be
//!    drawn can have a smaller key, so records leave in key order and no
//!    record follows one whose event time is more than `disorder` later.
//!    Redelivered duplicates (identical, a few seconds at most behind the
//!    original) and invalid records enter here too.
//!
//! This module must not read clocks or use a thread-local random generator:
//! one seeded [`Pcg64Mcg`] drives everything, and the same config always
//! gives the same bytes.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::binary_heap::{BinaryHeap, PeekMut};
use std::fmt::Display;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use compact_str::{CompactString, format_compact};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::model::{Channel, EventTime, Touchpoint};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

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

impl GeneratedRecord {
    /// Appends the record's message bytes (JSON or raw invalid bytes), with
    /// no trailing newline.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            GeneratedRecord::Valid(event) => event.write_json(out),
            GeneratedRecord::Invalid { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
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
    outbox: BinaryHeap<Pending>,
    /// Tie-breaker for equal emission keys: the draw order.
    seq: u64,
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
            outbox: BinaryHeap::new(),
            seq: 0,
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
        self.population.active.len()
    }

    /// Draws the population's next event and puts it, and any duplicate or
    /// invalid record derived from it, into the outbox.
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
            let (fault, bytes) = corrupt(&event, &mut self.rng);
            let expected_reason = fault.reason();
            self.push(
                key,
                Kind::Invalid(fault),
                GeneratedRecord::Invalid {
                    bytes,
                    expected_reason,
                },
            );
        }
        self.push(
            key,
            Kind::Original { action, first },
            GeneratedRecord::Valid(event),
        );
        if let Some((redelivered_key, copy)) = duplicate {
            self.push(
                redelivered_key,
                Kind::Duplicate,
                GeneratedRecord::Valid(copy),
            );
        }
    }

    fn push(&mut self, key: i64, kind: Kind, record: GeneratedRecord) {
        self.seq += 1;
        self.outbox.push(Pending {
            key,
            seq: self.seq,
            kind,
            record,
        });
    }
}

impl Iterator for Generator {
    type Item = GeneratedRecord;

    fn next(&mut self) -> Option<GeneratedRecord> {
        // Every event not yet drawn has a key >= its time >= `t`, so the
        // outbox's first entry may leave once its key is below `t`.
        while let Some(t) = self.population.peek_time() {
            if self.outbox.peek().is_some_and(|p| p.key < t.millis()) {
                break;
            }
            self.pull();
        }
        let pending = self.outbox.pop()?;
        self.counts.record(pending.kind);
        Some(pending.record)
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

// ---------------------------------------------------------------------------
// The outbox

/// What an outbox entry is, for the counts.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Original { action: Action, first: bool },
    Duplicate,
    Invalid(Fault),
}

/// A record waiting in the outbox. Ordered so that the max-heap pops the
/// smallest `(key, seq)` first.
struct Pending {
    key: i64,
    seq: u64,
    kind: Kind,
    record: GeneratedRecord,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.key, other.seq).cmp(&(self.key, self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

/// Emitted records, counted in arrays on the hot path.
#[derive(Default)]
struct Counts {
    records: u64,
    valid: u64,
    duplicates: u64,
    customers: u64,
    invalid: [u64; Fault::ALL.len()],
    actions: [u64; Action::ALL.len()],
}

impl Counts {
    fn record(&mut self, kind: Kind) {
        self.records += 1;
        match kind {
            Kind::Original { action, first } => {
                self.valid += 1;
                self.actions[action as usize] += 1;
                self.customers += u64::from(first);
            }
            Kind::Duplicate => {
                self.valid += 1;
                self.duplicates += 1;
            }
            Kind::Invalid(fault) => self.invalid[fault as usize] += 1,
        }
    }

    fn stats(&self) -> GenerateStats {
        let nonzero = |(name, &n): (&'static str, &u64)| (n > 0).then_some((name, n));
        GenerateStats {
            records: self.records,
            valid: self.valid,
            duplicates: self.duplicates,
            invalid: self.invalid.iter().sum(),
            invalid_by_reason: Fault::ALL
                .iter()
                .map(|f| f.reason())
                .zip(&self.invalid)
                .filter_map(nonzero)
                .collect(),
            customers: self.customers,
            actions: Action::ALL
                .iter()
                .map(|a| a.name())
                .zip(&self.actions)
                .filter_map(nonzero)
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// The population

/// Arrived customers by next event time, and who arrives next.
struct Population {
    /// Customers whose journey is still running.
    active: BinaryHeap<Customer>,
    /// When the next customer arrives; `None` once all have.
    next_arrival: Option<EventTime>,
    /// Customers arrived so far; the next one's number is this plus one.
    arrived: u64,
    /// Customers to arrive in all.
    total: u64,
    start: EventTime,
    span_ms: i64,
    /// No event at or after this.
    end: EventTime,
}

impl Population {
    fn new(cfg: &GeneratorConfig, rng: &mut Pcg64Mcg) -> Population {
        let span_ms = cfg.span.as_millis() as i64;
        let mut population = Population {
            active: BinaryHeap::new(),
            next_arrival: None,
            arrived: 0,
            total: cfg.customers,
            start: cfg.start,
            span_ms,
            end: cfg.start.plus_ms(span_ms),
        };
        population.next_arrival = population.arrival(0, rng);
        population
    }

    /// Customer `k` (from 0) arrives within the `k`-th of `total` equal
    /// slots of the span.
    fn arrival(&self, k: u64, rng: &mut Pcg64Mcg) -> Option<EventTime> {
        if k >= self.total || self.span_ms == 0 {
            return None;
        }
        let (span, n) = (i128::from(self.span_ms), i128::from(self.total));
        let lo = (span * i128::from(k) / n) as i64;
        let hi = (span * i128::from(k + 1) / n) as i64;
        let offset = if hi > lo {
            rng.random_range(lo..hi)
        } else {
            lo
        };
        Some(self.start.plus_ms(offset))
    }

    /// The time of the next event to be drawn.
    fn peek_time(&self) -> Option<EventTime> {
        let next = self.active.peek().map(|c| c.next_at);
        match (next, self.next_arrival) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest pending event, its action, and whether it is the
    /// customer's first.
    fn next_event(&mut self, rng: &mut Pcg64Mcg) -> Option<(GeneratedEvent, Action, bool)> {
        if let Some(at) = self.next_arrival
            && self.active.peek().is_none_or(|c| at <= c.next_at)
        {
            self.arrived += 1;
            self.active.push(Customer::arrive(self.arrived, at, rng));
            self.next_arrival = self.arrival(self.arrived, rng);
        }
        let mut customer = self.active.peek_mut()?;
        let (event, action) = customer.emit(rng);
        let first = customer.events == 1;
        if !customer.advance(rng, self.end) {
            PeekMut::pop(customer);
        }
        Some((event, action, first))
    }
}

/// One simulated customer: where they are in their persona's script and
/// in the current session. Kept small: there is one per active customer.
struct Customer {
    /// When the pending action happens.
    next_at: EventTime,
    /// The customer number, from 1.
    number: u64,
    /// Events emitted so far (the event id counter).
    events: u32,
    /// Sessions started so far (the session id counter).
    sessions: u32,
    /// The current session's actions.
    plan: Plan,
    /// Index of the pending action in `plan`.
    pos: u8,
    /// The current session's home channel.
    channel: Channel,
    persona: Persona,
    /// Index of the current step in the persona's script.
    step: u8,
    /// More sessions of the current step still to come.
    repeats_left: u8,
}

impl Customer {
    fn arrive(number: u64, at: EventTime, rng: &mut Pcg64Mcg) -> Customer {
        let persona = Persona::draw(rng);
        let mut customer = Customer {
            next_at: at,
            number,
            events: 0,
            sessions: 0,
            plan: Plan::default(),
            pos: 0,
            channel: Channel::Web,
            persona,
            step: 0,
            repeats_left: 0,
        };
        customer.begin(persona.script()[0].session, rng);
        customer
    }

    fn begin(&mut self, session: Session, rng: &mut Pcg64Mcg) {
        (self.plan, self.channel) = session.plan(rng);
        self.pos = 0;
        self.sessions += 1;
    }

    /// The pending action as an event.
    fn emit(&mut self, rng: &mut Pcg64Mcg) -> (GeneratedEvent, Action) {
        let action = self.plan.actions[usize::from(self.pos)];
        self.events += 1;
        let channel = action.fixed_channel().unwrap_or(self.channel);
        let session_id = matches!(channel, Channel::Web | Channel::App)
            .then(|| format_compact!("s-{}-{}", self.number, self.sessions));
        let event = GeneratedEvent {
            event_id: format_compact!("e-{}-{}", self.number, self.events),
            customer_id: format_compact!("c-{:010}", self.number),
            occurred_at: self.next_at,
            channel,
            action: action.name(),
            value: action.value(self.persona, rng),
            session_id,
            attributes: action.attributes(rng),
        };
        (event, action)
    }

    /// Moves to the next action; `false` when the journey is over.
    fn advance(&mut self, rng: &mut Pcg64Mcg, end: EventTime) -> bool {
        let last = self.plan.actions[usize::from(self.pos)];
        self.pos += 1;
        self.next_at = if self.pos < self.plan.len {
            self.next_at.plus_ms(intra_session_gap(last, rng))
        } else {
            let Some(step) = self.next_step(rng) else {
                return false;
            };
            let at = session_start(self.next_at, step, rng);
            self.begin(step.session, rng);
            at
        };
        self.next_at < end
    }

    /// The script step of the next session, drawing how often each new step
    /// repeats (possibly zero times).
    fn next_step(&mut self, rng: &mut Pcg64Mcg) -> Option<Step> {
        let script = self.persona.script();
        if self.repeats_left > 0 {
            self.repeats_left -= 1;
            return Some(script[usize::from(self.step)]);
        }
        loop {
            self.step += 1;
            let step = *script.get(usize::from(self.step))?;
            let times = rng.random_range(step.min..=step.max);
            if times > 0 {
                self.repeats_left = times - 1;
                return Some(step);
            }
        }
    }
}

impl Ord for Customer {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.next_at, other.number).cmp(&(self.next_at, self.number))
    }
}

impl PartialOrd for Customer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Customer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Customer {}

/// Time from one action to the next within a session: seconds after a
/// click that lands on the site, otherwise mostly a minute or two.
fn intra_session_gap(after: Action, rng: &mut Pcg64Mcg) -> i64 {
    if after.is_landing() {
        return rng.random_range(SECOND..=6 * SECOND);
    }
    match rng.random_range(0..100) {
        0..70 => rng.random_range(8 * SECOND..=2 * MINUTE),
        70..95 => rng.random_range(2 * MINUTE..=10 * MINUTE),
        _ => rng.random_range(10 * MINUTE..=40 * MINUTE),
    }
}

/// Hours of the day sessions start in, daytime and evening weighted.
const SESSION_HOURS: [u8; 28] = [
    0, 1, 6, 7, 8, 8, 9, 10, 11, 12, 12, 13, 13, 14, 15, 16, 17, 18, 19, 19, 20, 20, 20, 21, 21,
    22, 22, 23,
];

/// When a session of `step` starts after an action at `prev`: at least the
/// step's minimum gap later, at a plausible time of day when the gap is a
/// day or more.
fn session_start(prev: EventTime, step: Step, rng: &mut Pcg64Mcg) -> EventTime {
    let (lo, hi) = (
        i64::from(step.gap_hours.0) * HOUR,
        i64::from(step.gap_hours.1) * HOUR,
    );
    let mut at = prev.millis() + rng.random_range(lo..=hi);
    if lo >= DAY {
        let hour = SESSION_HOURS[rng.random_range(0..SESSION_HOURS.len())];
        at = at - at.rem_euclid(DAY) + i64::from(hour) * HOUR + rng.random_range(0..HOUR);
        if at < prev.millis() + lo {
            at += DAY;
        }
    }
    EventTime(at.max(prev.millis() + SECOND))
}

// ---------------------------------------------------------------------------
// Personas and their scripts

/// Who a customer is: decides the script of sessions they go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persona {
    /// Ads and page views, a product view or two, never buys.
    Browser,
    /// Researches (3+ product views within days), abandons carts, never buys.
    Considerer,
    /// Buys once, then fades out (lapses by inactivity).
    Buyer,
    /// Buys again within months; renews a subscription.
    RepeatBuyer,
    /// Repeat buyer who reviews well, scores 9-10 and refers friends.
    Advocate,
    /// Buys, then tickets, low NPS, failed payments, unsubscribes, cancels.
    Detractor,
    /// Cancels the subscription or closes the account.
    Lapser,
    /// Buys, goes silent for over 90 days, comes back.
    Returner,
}

/// Persona shares, in percent.
const PERSONA_SHARES: [(Persona, u32); 8] = [
    (Persona::Browser, 29),
    (Persona::Considerer, 22),
    (Persona::Buyer, 16),
    (Persona::RepeatBuyer, 12),
    (Persona::Advocate, 6),
    (Persona::Detractor, 6),
    (Persona::Lapser, 5),
    (Persona::Returner, 4),
];

/// One step of a script: `min..=max` sessions of a kind, each starting
/// `gap_hours` (a range) after the previous session's last action.
#[derive(Clone, Copy, Debug)]
struct Step {
    session: Session,
    gap_hours: (u32, u32),
    min: u8,
    max: u8,
}

const fn step(session: Session, gap_hours: (u32, u32), min: u8, max: u8) -> Step {
    Step {
        session,
        gap_hours,
        min,
        max,
    }
}

const D: u32 = 24;
const DISCOVER: Step = step(Session::Discover, (0, 0), 1, 1);

/// Browse sessions at least 4 days apart keep browsers below 3 product
/// views in 7 days: they never reach consideration.
const BROWSER: &[Step] = &[
    DISCOVER,
    step(Session::Browse, (4 * D, 12 * D), 0, 2),
    step(Session::Email, (2 * D, 20 * D), 0, 1),
];
const CONSIDERER: &[Step] = &[
    DISCOVER,
    step(Session::Browse, (D, 4 * D), 0, 1),
    step(Session::Research, (D, 3 * D), 2, 2),
    step(Session::Cart, (1, 3 * D), 1, 2),
    step(Session::Email, (D, 4 * D), 0, 2),
    step(Session::Research, (10 * D, 30 * D), 0, 1),
    step(Session::Cart, (1, 2 * D), 0, 1),
];
const BUYER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 1, 2),
    step(Session::Buy, (2, 4 * D), 1, 1),
    step(Session::Email, (5 * D, 25 * D), 0, 2),
    step(Session::Browse, (7 * D, 40 * D), 0, 2),
];
const REPEAT_BUYER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 1, 1),
    step(Session::Buy, (2, 3 * D), 1, 1),
    step(Session::Email, (4 * D, 15 * D), 0, 1),
    step(Session::Buy, (15 * D, 70 * D), 1, 3),
    step(Session::Renewal, (25 * D, 35 * D), 0, 3),
    step(Session::Browse, (5 * D, 20 * D), 0, 2),
];
const ADVOCATE: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 4 * D), 1, 1),
    step(Session::Buy, (1, 3 * D), 1, 1),
    step(Session::Buy, (10 * D, 50 * D), 1, 2),
    step(Session::Advocacy, (3 * D, 20 * D), 1, 2),
    step(Session::Renewal, (25 * D, 35 * D), 0, 2),
    step(Session::Browse, (5 * D, 20 * D), 0, 2),
];
const DETRACTOR: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 1, 1),
    step(Session::Buy, (1, 3 * D), 1, 1),
    step(Session::Support, (D, 14 * D), 1, 3),
    step(Session::Survey, (D, 10 * D), 1, 1),
    step(Session::Billing, (5 * D, 30 * D), 0, 1),
    step(Session::Farewell, (D, 20 * D), 0, 1),
    step(Session::Cancel, (D, 15 * D), 0, 1),
];
const LAPSER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 0, 1),
    step(Session::Buy, (1, 5 * D), 1, 1),
    step(Session::Renewal, (25 * D, 35 * D), 0, 1),
    step(Session::Cancel, (3 * D, 40 * D), 1, 1),
    // Win-back campaigns.
    step(Session::Email, (10 * D, 45 * D), 0, 2),
];
/// The 91-105 day gap is longer than the default `lapse_after` (90 days).
const RETURNER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 4 * D), 1, 1),
    step(Session::Buy, (1, 3 * D), 1, 1),
    step(Session::Browse, (3 * D, 15 * D), 0, 1),
    step(Session::Browse, (91 * D, 105 * D), 1, 1),
    step(Session::Research, (D, 5 * D), 0, 1),
    step(Session::Buy, (1, 5 * D), 0, 1),
];

impl Persona {
    fn draw(rng: &mut Pcg64Mcg) -> Persona {
        let mut roll = rng.random_range(0..100);
        for (persona, share) in PERSONA_SHARES {
            if roll < share {
                return persona;
            }
            roll -= share;
        }
        Persona::Browser
    }

    /// The persona's sessions; the first step is always a single discovery.
    fn script(self) -> &'static [Step] {
        match self {
            Persona::Browser => BROWSER,
            Persona::Considerer => CONSIDERER,
            Persona::Buyer => BUYER,
            Persona::RepeatBuyer => REPEAT_BUYER,
            Persona::Advocate => ADVOCATE,
            Persona::Detractor => DETRACTOR,
            Persona::Lapser => LAPSER,
            Persona::Returner => RETURNER,
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions and actions

/// A kind of session: a short, plausible sequence of actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Session {
    /// First contact: an ad, social post or search result, then the site.
    Discover,
    /// A visit: login on the app, page views, maybe one product view.
    Browse,
    /// Two or three product views and a pricing/review/comparison/demo page.
    Research,
    /// A cart filled and abandoned.
    Cart,
    /// A purchase online, or in a store.
    Buy,
    /// A marketing email opened, maybe clicked through.
    Email,
    /// One or two support tickets.
    Support,
    /// An NPS survey answered (detractors only).
    Survey,
    /// Review, NPS promoter score, referral.
    Advocacy,
    /// A subscription renewed, sometimes downgraded instead.
    Renewal,
    /// A failed payment.
    Billing,
    /// Unsubscribing from email.
    Farewell,
    /// Cancelling the subscription or closing the account.
    Cancel,
}

/// Up to six actions of one session.
#[derive(Clone, Copy, Debug)]
struct Plan {
    actions: [Action; 6],
    len: u8,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            actions: [Action::PageView; 6],
            len: 0,
        }
    }
}

impl Plan {
    fn push(&mut self, action: Action) {
        if let Some(slot) = self.actions.get_mut(usize::from(self.len)) {
            *slot = action;
            self.len += 1;
        }
    }

    fn push_n(&mut self, action: Action, n: u8) {
        (0..n).for_each(|_| self.push(action));
    }
}

fn web_or_app(rng: &mut Pcg64Mcg) -> Channel {
    if rng.random_bool(0.6) {
        Channel::Web
    } else {
        Channel::App
    }
}

impl Session {
    /// Draws the session's actions and its home channel (actions with a
    /// channel of their own, like `ad_click`, override it).
    fn plan(self, rng: &mut Pcg64Mcg) -> (Plan, Channel) {
        use Action as A;
        let mut p = Plan::default();
        let mut channel = web_or_app(rng);
        match self {
            Session::Discover => {
                channel = Channel::Web;
                match rng.random_range(0..100) {
                    0..30 => p.push(A::AdClick),
                    30..40 => p.push(A::AdImpression),
                    40..60 => p.push(A::SocialEngagement),
                    _ => p.push(A::SearchClick),
                }
                if p.actions[0] == A::AdImpression {
                    // Seen but not clicked: the visit comes another day.
                    if rng.random_bool(0.4) {
                        return (p, channel);
                    }
                    p.push(A::AdClick);
                }
                p.push_n(A::PageView, rng.random_range(1..=2));
                p.push_n(A::ProductView, u8::from(rng.random_bool(0.5)));
            }
            Session::Browse => {
                p.push_n(
                    A::Login,
                    u8::from(channel == Channel::App && rng.random_bool(0.6)),
                );
                p.push_n(A::PageView, rng.random_range(1..=2));
                p.push_n(A::ProductView, u8::from(rng.random_bool(0.5)));
            }
            Session::Research => {
                p.push_n(A::ProductView, rng.random_range(2..=3));
                match rng.random_range(0..100) {
                    0..25 => p.push(A::PricingView),
                    25..45 => p.push(A::ReviewRead),
                    45..65 => p.push(A::ComparisonView),
                    65..75 => p.push(A::DemoRequest),
                    _ => {}
                }
            }
            Session::Cart => {
                p.push_n(A::PricingView, u8::from(rng.random_bool(0.3)));
                p.push(A::ProductView);
                p.push(A::AddToCart);
            }
            Session::Buy if rng.random_bool(0.15) => {
                channel = Channel::Store;
                p.push(A::Purchase);
            }
            Session::Buy => {
                p.push_n(A::ProductView, rng.random_range(0..=1));
                p.push(A::AddToCart);
                p.push(A::Purchase);
            }
            Session::Email => {
                channel = Channel::Web;
                p.push(A::EmailOpen);
                if rng.random_bool(0.5) {
                    p.push(A::EmailClick);
                    p.push_n(A::PageView, u8::from(rng.random_bool(0.7)));
                }
            }
            Session::Support => {
                channel = match rng.random_range(0..100) {
                    0..60 => Channel::Support,
                    60..85 => Channel::Chat,
                    _ => Channel::Phone,
                };
                p.push_n(A::SupportTicket, rng.random_range(1..=2));
            }
            Session::Survey => p.push(A::NpsResponse),
            Session::Advocacy => {
                // A non-empty subset of review, promoter score and referral.
                let mask = rng.random_range(1..8u8);
                p.push_n(A::ReviewPosted, mask & 1);
                p.push_n(A::NpsResponse, (mask >> 1) & 1);
                p.push_n(A::ReferralSent, (mask >> 2) & 1);
            }
            Session::Renewal if rng.random_bool(0.12) => p.push(A::SubscriptionDowngraded),
            Session::Renewal => p.push(A::SubscriptionRenewed),
            Session::Billing => {
                p.push(A::PaymentFailed);
                p.push_n(A::Login, u8::from(rng.random_bool(0.4)));
            }
            Session::Farewell => p.push(A::Unsubscribe),
            Session::Cancel => {
                p.push_n(A::Login, u8::from(rng.random_bool(0.5)));
                if rng.random_bool(0.7) {
                    p.push(A::SubscriptionCancelled);
                } else {
                    p.push(A::AccountClosed);
                }
            }
        }
        (p, channel)
    }
}

/// Declares [`Action`], its wire names and the list of all actions at once.
macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// Every action the generator emits.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Action {
            $($variant,)*
        }

        impl Action {
            const ALL: [Action; [$($name),*].len()] = [$(Action::$variant),*];

            fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    AdImpression => "ad_impression",
    AdClick => "ad_click",
    SocialEngagement => "social_engagement",
    SearchClick => "search_click",
    EmailOpen => "email_open",
    EmailClick => "email_click",
    PageView => "page_view",
    Login => "login",
    ProductView => "product_view",
    PricingView => "pricing_view",
    ReviewRead => "review_read",
    ComparisonView => "comparison_view",
    DemoRequest => "demo_request",
    AddToCart => "add_to_cart",
    Purchase => "purchase",
    SubscriptionRenewed => "subscription_renewed",
    SubscriptionDowngraded => "subscription_downgraded",
    ReviewPosted => "review_posted",
    NpsResponse => "nps_response",
    ReferralSent => "referral_sent",
    SupportTicket => "support_ticket",
    PaymentFailed => "payment_failed",
    Unsubscribe => "unsubscribe",
    SubscriptionCancelled => "subscription_cancelled",
    AccountClosed => "account_closed",
}

type Attributes = &'static [(&'static str, &'static str)];

const AD_ATTRIBUTES: &[Attributes] = &[
    &[("campaign", "spring-sale"), ("utm_source", "google")],
    &[("campaign", "retargeting"), ("utm_source", "meta")],
    &[("campaign", "brand"), ("utm_source", "bing")],
];
/// Search queries include characters that JSON must escape.
const SEARCH_ATTRIBUTES: &[Attributes] = &[
    &[("query", "running shoes")],
    &[("query", "\"waterproof\" jacket")],
    &[("query", "café table")],
    &[("query", "gift ideas\tunder 50")],
    &[("query", "usb-c \\ hdmi adapter")],
];
const EMAIL_ATTRIBUTES: &[Attributes] = &[
    &[("campaign", "weekly-digest")],
    &[("campaign", "cart-reminder")],
    &[("campaign", "win-back")],
];
const PAGE_ATTRIBUTES: &[Attributes] = &[
    &[("path", "/")],
    &[("path", "/pricing")],
    &[("path", "/blog/how-to-choose")],
    &[("path", "/help")],
];
const PRODUCT_ATTRIBUTES: &[Attributes] = &[
    &[("sku", "sku-1042"), ("category", "shoes")],
    &[("sku", "sku-2210"), ("category", "outdoor")],
    &[("sku", "sku-3307"), ("category", "home")],
    &[("sku", "sku-4481"), ("category", "gifts")],
];
const ORDER_ATTRIBUTES: &[Attributes] = &[
    &[("currency", "EUR"), ("items", "1")],
    &[("currency", "EUR"), ("items", "2")],
    &[("currency", "EUR"), ("items", "3"), ("coupon", "WELCOME10")],
];
const TICKET_ATTRIBUTES: &[Attributes] = &[
    &[("topic", "delivery")],
    &[("topic", "billing")],
    &[("topic", "defect")],
    &[("topic", "returns")],
];
const LOGIN_ATTRIBUTES: &[Attributes] = &[&[("device", "ios")], &[("device", "android")]];

impl Action {
    /// The channel this action always comes through, if any.
    fn fixed_channel(self) -> Option<Channel> {
        match self {
            Action::AdImpression | Action::AdClick => Some(Channel::Ads),
            Action::SocialEngagement => Some(Channel::Social),
            Action::SearchClick => Some(Channel::Search),
            Action::EmailOpen | Action::EmailClick | Action::Unsubscribe | Action::NpsResponse => {
                Some(Channel::Email)
            }
            Action::ReviewPosted => Some(Channel::Review),
            Action::ReferralSent => Some(Channel::Referral),
            _ => None,
        }
    }

    /// Whether the next action follows within seconds (a landing page load).
    fn is_landing(self) -> bool {
        matches!(
            self,
            Action::AdImpression
                | Action::AdClick
                | Action::SocialEngagement
                | Action::SearchClick
                | Action::EmailClick
        )
    }

    /// Order value, subscription price, rating or NPS score. Computed from
    /// integers (cents, points) so the output is the same on every platform.
    fn value(self, persona: Persona, rng: &mut Pcg64Mcg) -> Option<f64> {
        let points =
            |lo: u8, hi: u8, rng: &mut Pcg64Mcg| Some(f64::from(rng.random_range(lo..=hi)));
        match (self, persona) {
            (Action::Purchase, _) => {
                // 9.99 to 399.99, most orders small.
                let u = rng.random_range(0..1_000u32);
                Some(f64::from(999 + u * u * 39 / 1_000) / 100.0)
            }
            (Action::SubscriptionRenewed, _) => Some([9.99, 19.99, 49.99][rng.random_range(0..3)]),
            (Action::SubscriptionDowngraded, _) => Some([4.99, 9.99][rng.random_range(0..2)]),
            (Action::ReviewPosted, Persona::Advocate) => points(4, 5, rng),
            (Action::ReviewPosted, Persona::Detractor) => points(1, 2, rng),
            (Action::ReviewPosted, _) => points(3, 5, rng),
            (Action::NpsResponse, Persona::Advocate) => points(9, 10, rng),
            (Action::NpsResponse, Persona::Detractor) => points(0, 6, rng),
            (Action::NpsResponse, _) => points(7, 8, rng),
            _ => None,
        }
    }

    /// Attributes for about 60% of the actions that have any.
    fn attributes(self, rng: &mut Pcg64Mcg) -> Attributes {
        let table = match self {
            Action::AdImpression | Action::AdClick => AD_ATTRIBUTES,
            Action::SearchClick => SEARCH_ATTRIBUTES,
            Action::EmailOpen | Action::EmailClick | Action::Unsubscribe => EMAIL_ATTRIBUTES,
            Action::PageView => PAGE_ATTRIBUTES,
            Action::ProductView | Action::AddToCart => PRODUCT_ATTRIBUTES,
            Action::Purchase => ORDER_ATTRIBUTES,
            Action::SupportTicket => TICKET_ATTRIBUTES,
            Action::Login => LOGIN_ATTRIBUTES,
            _ => return &[],
        };
        if rng.random_bool(0.6) {
            table[rng.random_range(0..table.len())]
        } else {
            &[]
        }
    }
}

// ---------------------------------------------------------------------------
// JSON, valid and not

/// What kind of invalid record to make, by the reason the decoder reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Json,
    MissingEventId,
    MissingCustomerId,
    TooOld,
    BadField,
}

impl Fault {
    const ALL: [Fault; 5] = [
        Fault::Json,
        Fault::MissingEventId,
        Fault::MissingCustomerId,
        Fault::TooOld,
        Fault::BadField,
    ];

    fn reason(self) -> &'static str {
        match self {
            Fault::Json => "invalid_json",
            Fault::MissingEventId => "missing_event_id",
            Fault::MissingCustomerId => "missing_customer_id",
            Fault::TooOld => "timestamp_too_old",
            Fault::BadField => "invalid_field",
        }
    }
}

/// How [`GeneratedEvent::write_variant`] deviates from the valid form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Clean,
    NoEventId,
    NoCustomerId,
    EmptyCustomerId,
    OccurredAt(i64),
    ValueAsText,
    ChannelAsNumber,
}

/// Bytes that are not JSON at all (none starts with the Avro magic byte 0).
const GARBAGE: [&[u8]; 3] = [
    b"\xff\xfe\x00\x01garbage",
    b"not json",
    b"{\"event_id\":\"e-1-1\",}",
];

/// An invalid record derived from `event`, and its fault.
fn corrupt(event: &GeneratedEvent, rng: &mut Pcg64Mcg) -> (Fault, Vec<u8>) {
    let fault = Fault::ALL[rng.random_range(0..Fault::ALL.len())];
    let variant = match fault {
        Fault::Json if rng.random_bool(0.3) => {
            return (fault, GARBAGE[rng.random_range(0..GARBAGE.len())].to_vec());
        }
        Fault::Json => Variant::Clean,
        Fault::MissingEventId => Variant::NoEventId,
        Fault::MissingCustomerId if rng.random_bool(0.5) => Variant::NoCustomerId,
        Fault::MissingCustomerId => Variant::EmptyCustomerId,
        // Seconds where milliseconds are expected: a classic producer bug.
        Fault::TooOld if rng.random_bool(0.5) => {
            Variant::OccurredAt(event.occurred_at.millis() / 1_000)
        }
        Fault::TooOld => {
            Variant::OccurredAt(rng.random_range(631_152_000_000..EventTime::Y2K.millis()))
        }
        Fault::BadField if rng.random_bool(0.5) => Variant::ValueAsText,
        Fault::BadField => Variant::ChannelAsNumber,
    };
    let mut bytes = Vec::with_capacity(256);
    event.write_variant(&mut bytes, variant);
    if fault == Fault::Json {
        // Cut short: the closing brace is always missing.
        bytes.truncate(rng.random_range(1..bytes.len()));
    }
    (fault, bytes)
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
        }
    }

    /// Appends the event as one JSON object (SPEC section 2: `occurred_at`
    /// in epoch milliseconds; `value`, `session_id` and `attributes` only
    /// when present), with no trailing newline.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_variant(out, Variant::Clean);
    }

    fn write_variant(&self, out: &mut Vec<u8>, variant: Variant) {
        out.push(b'{');
        if variant != Variant::NoEventId {
            push_field(out, "event_id");
            push_str(out, &self.event_id);
            out.push(b',');
        }
        if variant != Variant::NoCustomerId {
            push_field(out, "customer_id");
            let empty = variant == Variant::EmptyCustomerId;
            push_str(out, if empty { "" } else { &self.customer_id });
            out.push(b',');
        }
        push_field(out, "occurred_at");
        match variant {
            Variant::OccurredAt(ms) => push_display(out, ms),
            _ => push_display(out, self.occurred_at.millis()),
        }
        out.extend_from_slice(b",\"channel\":");
        match variant {
            Variant::ChannelAsNumber => push_display(out, self.channel as u8),
            _ => push_str(out, self.channel.as_str()),
        }
        out.extend_from_slice(b",\"action\":");
        push_str(out, self.action);
        match (variant, self.value) {
            (Variant::ValueAsText, _) => out.extend_from_slice(b",\"value\":\"twelve\""),
            (_, Some(value)) if value.is_finite() => {
                out.extend_from_slice(b",\"value\":");
                push_display(out, value);
            }
            _ => {}
        }
        if let Some(session_id) = &self.session_id {
            out.extend_from_slice(b",\"session_id\":");
            push_str(out, session_id);
        }
        self.write_attributes(out);
        out.push(b'}');
    }

    fn write_attributes(&self, out: &mut Vec<u8>) {
        if self.attributes.is_empty() {
            return;
        }
        out.extend_from_slice(b",\"attributes\":{");
        for (i, (key, value)) in self.attributes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, key);
            out.push(b':');
            push_str(out, value);
        }
        out.push(b'}');
    }
}

/// `"name":`
fn push_field(out: &mut Vec<u8>, name: &str) {
    push_str(out, name);
    out.push(b':');
}

fn push_display(out: &mut Vec<u8>, value: impl Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn push_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // The common case, no escapes, in one branch-free pass.
    if !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> Pcg64Mcg {
        Pcg64Mcg::seed_from_u64(7)
    }

    #[test]
    fn default_start_is_2026() {
        assert_eq!(DEFAULT_START.to_rfc3339(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn json_strings_are_escaped() {
        let nasty = "a\"b\\c\nd\te\u{1}é";
        let mut out = Vec::new();
        push_str(&mut out, nasty);
        let back: String = serde_json::from_slice(&out).expect("valid JSON string");
        assert_eq!(back, nasty);
        assert!(!out.contains(&b'\n'));
    }

    #[test]
    fn a_customer_stays_small() {
        // One per active customer: a million of them fit in 48 MB.
        assert!(size_of::<Customer>() <= 48, "{}", size_of::<Customer>());
    }

    #[test]
    fn count_tables_are_indexed_by_declaration_order() {
        for (i, action) in Action::ALL.iter().enumerate() {
            assert_eq!(*action as usize, i, "{}", action.name());
        }
        for (i, fault) in Fault::ALL.iter().enumerate() {
            assert_eq!(*fault as usize, i, "{}", fault.reason());
        }
    }

    #[test]
    fn scripts_start_with_one_discovery_and_persona_shares_sum_to_100() {
        for (persona, _) in PERSONA_SHARES {
            let first = persona.script()[0];
            assert_eq!(
                (first.session, first.min, first.max),
                (Session::Discover, 1, 1)
            );
            assert!(persona.script().iter().all(|s| s.min <= s.max));
        }
        assert_eq!(PERSONA_SHARES.iter().map(|(_, s)| s).sum::<u32>(), 100);
    }

    #[test]
    fn every_session_plans_at_least_one_action() {
        let mut rng = rng();
        let sessions = [
            Session::Discover,
            Session::Browse,
            Session::Research,
            Session::Cart,
            Session::Buy,
            Session::Email,
            Session::Support,
            Session::Survey,
            Session::Advocacy,
            Session::Renewal,
            Session::Billing,
            Session::Farewell,
            Session::Cancel,
        ];
        for session in sessions {
            for _ in 0..200 {
                assert!(session.plan(&mut rng).0.len > 0, "{session:?}");
            }
        }
    }

    #[test]
    fn arrivals_are_sorted_and_within_the_span() {
        let cfg = GeneratorConfig {
            customers: 1_000,
            ..GeneratorConfig::default()
        };
        let mut rng = rng();
        let population = Population::new(&cfg, &mut rng);
        let mut last = cfg.start;
        for k in 0..cfg.customers {
            let at = population.arrival(k, &mut rng).expect("arrives");
            assert!(at >= last && at < population.end);
            last = at;
        }
        assert_eq!(population.arrival(cfg.customers, &mut rng), None);
    }

    #[test]
    fn session_starts_respect_the_minimum_gap() {
        let mut rng = rng();
        let step = step(Session::Browse, (91 * D, 130 * D), 1, 1);
        for i in 0..1_000 {
            let prev = DEFAULT_START.plus_ms(i * 7_919_000);
            let at = session_start(prev, step, &mut rng);
            assert!(at.since(prev) >= 91 * DAY);
            assert!(at.since(prev) <= 131 * DAY);
        }
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

    #[test]
    fn invalid_records_have_no_newline_and_fail_as_labelled() {
        let mut rng = rng();
        let event = GeneratedEvent {
            event_id: "e-1-1".into(),
            customer_id: "c-0000000001".into(),
            occurred_at: DEFAULT_START,
            channel: Channel::Search,
            action: "search_click",
            value: None,
            session_id: None,
            attributes: SEARCH_ATTRIBUTES[3],
        };
        for _ in 0..500 {
            let (fault, bytes) = corrupt(&event, &mut rng);
            assert!(!bytes.contains(&b'\n'));
            let parsed = serde_json::from_slice::<serde_json::Value>(&bytes);
            assert_eq!(parsed.is_err(), fault == Fault::Json, "{fault:?}");
        }
    }
}
