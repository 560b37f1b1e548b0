//! One simulated customer as a small state machine: where they are in
//! their persona's script, in the current session, and when their next
//! action happens; plus the time between actions and between sessions.
//!
//! A customer moves through three nested loops: actions within a session
//! ([`Plan`]), sessions of one script step (`repeats_left`), and the steps
//! of the persona's script. The journey ends when the script runs out or
//! the next action would fall at or after the end of the span.

use std::cmp::Ordering;

use compact_str::format_compact;
use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::GeneratedEvent;
use super::action::Action;
use super::persona::{Persona, Step};
use super::session::{Plan, Session};
use crate::model::{Channel, EventTime};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// One simulated customer. Kept small: there is one per active customer.
pub(super) struct Customer {
    /// When the pending action happens.
    pub(super) next_at: EventTime,
    /// The customer number, from 1.
    number: u64,
    /// Events emitted so far (the event id counter).
    pub(super) events: u32,
    /// Sessions started so far (the session id counter).
    sessions: u32,
    /// The current session's actions.
    plan: Plan,
    /// Index of the pending action in `plan`.
    pos: u8,
    /// The current session's home channel.
    channel: Channel,
    /// Who the customer is; decides the script, values and scores.
    persona: Persona,
    /// Index of the current step in the persona's script.
    step: u8,
    /// More sessions of the current step still to come.
    repeats_left: u8,
}

impl Customer {
    /// Customer `number`, arriving at `at` with a drawn persona and the
    /// first session of its script planned.
    pub(super) fn arrive(number: u64, at: EventTime, rng: &mut Pcg64Mcg) -> Customer {
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

    /// Plans a new session and starts at its first action.
    fn begin(&mut self, session: Session, rng: &mut Pcg64Mcg) {
        (self.plan, self.channel) = session.plan(rng);
        self.pos = 0;
        self.sessions += 1;
    }

    /// The pending action as an event.
    pub(super) fn emit(&mut self, rng: &mut Pcg64Mcg) -> (GeneratedEvent, Action) {
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
    pub(super) fn advance(&mut self, rng: &mut Pcg64Mcg, end: EventTime) -> bool {
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

/// Ordered so that the max-heap pops the earliest `(next_at, number)` first.
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

#[cfg(test)]
mod tests {
    use super::super::DEFAULT_START;
    use super::super::persona::{D, step};
    use super::super::test_rng;
    use super::*;

    #[test]
    fn a_customer_stays_small() {
        // One per active customer: a million of them fit in 48 MB.
        assert!(size_of::<Customer>() <= 48, "{}", size_of::<Customer>());
    }

    #[test]
    fn session_starts_respect_the_minimum_gap() {
        let mut rng = test_rng();
        let step = step(Session::Browse, (91 * D, 130 * D), 1, 1);
        for i in 0..1_000 {
            let prev = DEFAULT_START.plus_ms(i * 7_919_000);
            let at = session_start(prev, step, &mut rng);
            assert!(at.since(prev) >= 91 * DAY);
            assert!(at.since(prev) <= 131 * DAY);
        }
    }

    #[test]
    fn a_journey_ends_and_its_counters_stay_dense() {
        let mut rng = test_rng();
        let end = DEFAULT_START.plus_ms(400 * DAY);
        for number in 1..=200 {
            let mut customer = Customer::arrive(number, DEFAULT_START, &mut rng);
            let mut last = customer.next_at;
            loop {
                let (event, _) = customer.emit(&mut rng);
                let id = format!("e-{number}-{}", customer.events);
                assert_eq!(event.event_id, id);
                if !customer.advance(&mut rng, end) {
                    break;
                }
                assert!(customer.next_at > last);
                last = customer.next_at;
            }
        }
    }
}
