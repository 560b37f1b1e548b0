//! The population: who arrives when, and the heap of customers whose
//! journey is still running, keyed by the time of their next event.
//!
//! Popping the earliest customer yields the stream's next event in exact
//! event-time order; the customer is then pushed back with its following
//! event, or dropped when its journey is over. Memory is one [`Customer`]
//! per active customer, never one per event.

use std::collections::binary_heap::{BinaryHeap, PeekMut};

use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::action::Action;
use super::customer::Customer;
use super::{GeneratedEvent, GeneratorConfig};
use crate::model::EventTime;

/// Arrived customers by next event time, and who arrives next.
pub(super) struct Population {
    /// Customers whose journey is still running.
    active: BinaryHeap<Customer>,
    /// When the next customer arrives; `None` once all have.
    next_arrival: Option<EventTime>,
    /// Customers arrived so far; the next one's number is this plus one.
    arrived: u64,
    /// Customers to arrive in all.
    total: u64,
    /// The start of the simulation: the first arrival slot opens here.
    start: EventTime,
    /// The span arrivals spread over, in milliseconds.
    span_ms: i64,
    /// No event at or after this.
    end: EventTime,
}

impl Population {
    /// The population for `cfg`, with the first arrival drawn.
    pub(super) fn new(cfg: &GeneratorConfig, rng: &mut Pcg64Mcg) -> Population {
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

    /// How many customers have arrived and are still on their journey.
    pub(super) fn active(&self) -> usize {
        self.active.len()
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
    pub(super) fn peek_time(&self) -> Option<EventTime> {
        let next = self.active.peek().map(|c| c.next_at);
        match (next, self.next_arrival) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest pending event, its action, and whether it is the
    /// customer's first.
    pub(super) fn next_event(
        &mut self,
        rng: &mut Pcg64Mcg,
    ) -> Option<(GeneratedEvent, Action, bool)> {
        self.admit_arrival(rng);
        let mut customer = self.active.peek_mut()?;
        let (event, action) = customer.emit(rng);
        let first = customer.events == 1;
        if !customer.advance(rng, self.end) {
            PeekMut::pop(customer);
        }
        Some((event, action, first))
    }

    /// Lets the next customer in when their arrival is no later than every
    /// active customer's next event (arrivals win ties), and draws the
    /// arrival after theirs.
    fn admit_arrival(&mut self, rng: &mut Pcg64Mcg) {
        if let Some(at) = self.next_arrival
            && self.active.peek().is_none_or(|c| at <= c.next_at)
        {
            self.arrived += 1;
            self.active.push(Customer::arrive(self.arrived, at, rng));
            self.next_arrival = self.arrival(self.arrived, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rng;
    use super::*;

    #[test]
    fn arrivals_are_sorted_and_within_the_span() {
        let cfg = GeneratorConfig {
            customers: 1_000,
            ..GeneratorConfig::default()
        };
        let mut rng = test_rng();
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
    fn events_leave_in_event_time_order() {
        let cfg = GeneratorConfig {
            customers: 200,
            ..GeneratorConfig::default()
        };
        let mut rng = test_rng();
        let mut population = Population::new(&cfg, &mut rng);
        let mut last = cfg.start;
        while let Some((event, _, _)) = population.next_event(&mut rng) {
            assert!(event.occurred_at >= last && event.occurred_at < population.end);
            last = event.occurred_at;
        }
        assert_eq!(population.active(), 0);
    }
}
