//! Shared helpers for the tests: a small story-telling harness for the
//! engine, [`service`], the real binary against a mock Kafka cluster, and
//! [`registry`], a fake schema registry.
#![allow(dead_code)]

pub mod journeys;
pub mod registry;
pub mod restore;
pub mod service;
pub mod streams;

use std::borrow::Cow;

use journeyd::config::{Config, TimeMode};
use journeyd::engine::{Engine, Ingested};
use journeyd::model::{
    Band, Channel, ChurnRiskChanged, Direction, EventTime, FunnelWindow, Output, StageChanged,
    Touchpoint,
};

/// 2026-01-01T00:00:00Z.
pub const BASE: EventTime = EventTime(1_767_225_600_000);
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// `BASE` plus a number of days (fractions allowed).
pub fn day(d: f64) -> EventTime {
    BASE.plus_ms((d * DAY as f64).round() as i64)
}

/// An owned touchpoint for tests.
#[derive(Clone, Debug, PartialEq)]
pub struct Ev {
    pub id: String,
    pub customer: String,
    pub at: EventTime,
    pub action: String,
    pub channel: Channel,
    pub value: Option<f64>,
    /// `attributes.purpose`, kept where a configuration with consent on
    /// keeps it (the first kept attribute).
    pub purpose: Option<String>,
}

impl Ev {
    pub fn new(id: impl Into<String>, customer: &str, at: EventTime, action: &str) -> Ev {
        Ev {
            id: id.into(),
            customer: customer.into(),
            at,
            action: action.into(),
            channel: Channel::Web,
            value: None,
            purpose: None,
        }
    }

    pub fn value(mut self, v: f64) -> Ev {
        self.value = Some(v);
        self
    }

    pub fn touchpoint(&self) -> Touchpoint<'_> {
        let mut attributes = journeyd::model::KeptAttributes::default();
        if let Some(purpose) = &self.purpose {
            attributes.set(0, Cow::Borrowed(purpose));
        }
        Touchpoint {
            event_id: Cow::Borrowed(&self.id),
            customer_id: Cow::Borrowed(&self.customer),
            occurred_at: self.at,
            channel: self.channel,
            action: Cow::Borrowed(&self.action),
            value: self.value,
            session_id: None,
            attributes,
        }
    }
}

/// A config in event-time mode (deterministic, no wall clock).
pub fn event_config() -> Config {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    config
}

/// An engine plus everything it emitted, fed one event at a time.
pub struct Story {
    pub engine: Engine,
    pub outputs: Vec<Output>,
    next_id: u64,
}

impl Story {
    pub fn new() -> Story {
        Story::with(event_config())
    }

    pub fn with(config: Config) -> Story {
        Story {
            engine: Engine::new(&config).expect("valid config"),
            outputs: Vec::new(),
            next_id: 0,
        }
    }

    /// Sends `action` for `customer` at `at`.
    pub fn send(&mut self, customer: &str, at: EventTime, action: &str) -> Ingested {
        self.next_id += 1;
        let ev = Ev::new(format!("e{}", self.next_id), customer, at, action);
        self.deliver(&ev)
    }

    /// Sends an action with a value.
    pub fn send_value(
        &mut self,
        customer: &str,
        at: EventTime,
        action: &str,
        value: f64,
    ) -> Ingested {
        self.next_id += 1;
        let ev = Ev::new(format!("e{}", self.next_id), customer, at, action).value(value);
        self.deliver(&ev)
    }

    /// Delivers a prepared event.
    pub fn deliver(&mut self, ev: &Ev) -> Ingested {
        self.engine
            .ingest(0, &ev.touchpoint(), EventTime(0), &mut self.outputs)
    }

    /// Moves event time forward with a touchpoint of an unrelated customer,
    /// so that the watermark passes `at - allowed_lateness`.
    pub fn pass_time(&mut self, at: EventTime) {
        self.send("clock", at, "page_view");
    }

    /// Ends the input (the watermark moves to the last event time).
    pub fn finish(&mut self) {
        self.engine.finish(&mut self.outputs);
    }

    /// Stage changes of one customer, as `(from, to, direction)`.
    pub fn moves(&self, customer: &str) -> Vec<(Option<String>, String, Direction)> {
        self.stage_changes(customer)
            .map(|s| {
                (
                    s.from_stage.as_ref().map(|f| f.to_string()),
                    s.to_stage.to_string(),
                    s.direction,
                )
            })
            .collect()
    }

    pub fn stage_changes<'a>(
        &'a self,
        customer: &'a str,
    ) -> impl Iterator<Item = &'a StageChanged> + 'a {
        self.outputs.iter().filter_map(move |o| match o {
            Output::StageChanged(s) if s.customer_id == customer => Some(s),
            _ => None,
        })
    }

    pub fn churn_changes<'a>(
        &'a self,
        customer: &'a str,
    ) -> impl Iterator<Item = &'a ChurnRiskChanged> + 'a {
        self.outputs.iter().filter_map(move |o| match o {
            Output::ChurnRiskChanged(c) if c.customer_id == customer => Some(c),
            _ => None,
        })
    }

    pub fn bands(&self, customer: &str) -> Vec<Band> {
        self.churn_changes(customer).map(|c| c.band).collect()
    }

    pub fn windows(&self) -> impl Iterator<Item = &FunnelWindow> {
        self.outputs.iter().filter_map(|o| match o {
            Output::FunnelWindow(w) => Some(w),
            _ => None,
        })
    }

    /// The emitted window containing `t`.
    pub fn window_at(&self, t: EventTime) -> Option<&FunnelWindow> {
        self.windows()
            .find(|w| w.window_start <= t.0 && t.0 < w.window_end)
    }

    /// The stage a customer is in now.
    pub fn stage_of(&self, customer: &str) -> Option<String> {
        let c = self.engine.customer(customer)?;
        let rules = self.engine.rules();
        (usize::from(c.stage) < rules.stages.len()).then(|| rules.stage_name(c.stage).to_string())
    }
}

/// `(from, to, direction)` shorthand for expectations.
pub fn mv(
    from: Option<&str>,
    to: &str,
    direction: Direction,
) -> (Option<String>, String, Direction) {
    (from.map(str::to_owned), to.to_owned(), direction)
}
