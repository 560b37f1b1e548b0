//! Semantic validation of a parsed [`Config`](super::Config): the checks
//! types cannot express (stage references, ordinals, windows, thresholds).
//!
//! Every check runs and every problem is collected, one line each, starting
//! with the key it concerns. The journey, churn, Kafka, topic and service
//! sections have their own files; time, limits and the shared helpers are
//! here. No check reads the file system or the network.

mod churn;
mod journey;
mod kafka;
mod moments;
mod service;
mod topics;

use std::fmt::Display;
use std::time::Duration;

use super::{Config, ConfigError, ConsentConfig, ConsentMode, LimitsConfig, TimeConfig, TimeMode};
use crate::model::Channel;

impl Config {
    /// Checks what deserialization cannot: every stage a rule names exists,
    /// ordinals and names are unique, windows and thresholds are in range,
    /// topic names are legal and distinct, Avro encodings have a schema source.
    /// Returns every problem found, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        time(&self.time, &mut problems);
        journey::check(&self.journey, &mut problems);
        moments::check(&self.journey.moments, self.time.state_ttl, &mut problems);
        churn::check(&self.churn, &mut problems);
        consent(&self.consent, &self.limits, &mut problems);
        limits(&self.limits, &mut problems);
        kafka::check(&self.kafka, &mut problems);
        topics::check(self, &mut problems);
        service::http(&self.http, &mut problems);
        service::runtime(&self.runtime, &mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(problems.0))
        }
    }
}

impl Config {
    /// What [`Config::validate`] cannot know because it also serves
    /// `journeyd replay`: the settings `journeyd run` refuses. Every
    /// problem names its key.
    pub fn validate_for_run(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        if self.time.mode == TimeMode::Event {
            problems.add(
                "time.mode",
                "\"event\" is for replays (journeyd replay runs in event time whatever this \
                 says); journeyd run needs \"hybrid\", the default: in event mode time stands \
                 still while the stream is quiet, so lapse, churn and drop-off timers would not \
                 fire, and partitions that have no data yet would not hold the watermark back. \
                 Remove the key or set it to \"hybrid\"",
            );
        }
        match problems.0.is_empty() {
            true => Ok(()),
            false => Err(ConfigError::new(problems.0)),
        }
    }
}

/// Problems found so far, as `key: what is wrong` lines.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Records that `key` is wrong, and how.
    fn add(&mut self, key: impl Display, problem: impl Display) {
        self.0.push(format!("{key}: {problem}"));
    }

    /// `key` must be at least a millisecond, the resolution of event time.
    fn positive_duration(&mut self, key: impl Display, value: Duration) {
        if value < Duration::from_millis(1) {
            let shown = humantime::format_duration(value);
            self.add(key, format_args!("must be at least 1ms, got \"{shown}\""));
        }
    }

    /// `key` must be a finite number above zero.
    fn positive_number(&mut self, key: impl Display, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            self.add(
                key,
                format_args!("must be a finite number above 0, got {value}"),
            );
        }
    }

    /// A list of actions: not empty (when `required`), no empty names.
    fn actions(&mut self, key: impl Display, actions: &[String], required: bool) {
        if required && actions.is_empty() {
            self.add(&key, "must list at least one action");
        }
        for (i, action) in actions.iter().enumerate() {
            if action.trim().is_empty() {
                self.add(format_args!("{key}[{i}]"), "action names must not be empty");
            }
        }
    }

    /// An optional channel filter must name a known channel.
    fn channel(&mut self, key: impl Display, channel: Option<&str>) {
        let Some(name) = channel else { return };
        if Channel::parse_known(name).is_none() {
            let known: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
            let known = known.join(", ");
            self.add(
                key,
                format_args!("unknown channel \"{name}\" (known: {known})"),
            );
        }
    }

    /// Optional value bounds under `key`: finite, and `min_value <= max_value`.
    fn value_bounds(&mut self, key: impl Display, min: Option<f64>, max: Option<f64>) {
        for (name, bound) in [("min_value", min), ("max_value", max)] {
            if let Some(bound) = bound.filter(|b| !b.is_finite()) {
                self.add(
                    format_args!("{key}.{name}"),
                    format_args!("must be finite, got {bound}"),
                );
            }
        }
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            let why = format_args!("{min} is above max_value {max}; nothing can match");
            self.add(format_args!("{key}.min_value"), why);
        }
    }
}

fn time(time: &TimeConfig, problems: &mut Problems) {
    problems.positive_duration("time.idle_timeout", time.idle_timeout);
    problems.positive_duration("time.funnel_window", time.funnel_window);
    problems.positive_duration("time.lapse_after", time.lapse_after);
    problems.positive_duration("time.dedupe_horizon", time.dedupe_horizon);
    if time.dedupe_horizon > time.state_ttl {
        let (horizon, ttl) = (
            humantime::format_duration(time.dedupe_horizon),
            humantime::format_duration(time.state_ttl),
        );
        problems.add(
            "time.dedupe_horizon",
            format_args!(
                "must be at most time.state_ttl (\"{ttl}\"), got \"{horizon}\"; an evicted \
                 customer's event ids are forgotten with them"
            ),
        );
    }
    if time.state_ttl < time.lapse_after {
        let (ttl, lapse) = (
            humantime::format_duration(time.state_ttl),
            humantime::format_duration(time.lapse_after),
        );
        problems.add(
            "time.state_ttl",
            format_args!(
                "must be at least time.lapse_after (\"{lapse}\"), got \"{ttl}\"; a customer \
                 must lapse before being evicted"
            ),
        );
    }
}

/// The smallest reorder buffer: room for a few events with long ids.
const MIN_BUFFERED_BYTES: usize = 4096;

/// Customer slots are `u32` numbers; a bound well below keeps them so.
const MAX_CUSTOMERS: usize = 1 << 31;

fn limits(limits: &LimitsConfig, problems: &mut Problems) {
    if !(1..=64).contains(&limits.dedupe_per_customer) {
        let got = limits.dedupe_per_customer;
        problems.add(
            "limits.dedupe_per_customer",
            format_args!("must be 1 to 64, got {got}"),
        );
    }
    if limits.max_buffered_events < 1 {
        problems.add("limits.max_buffered_events", "must be at least 1, got 0");
    }
    if limits.max_buffered_bytes < MIN_BUFFERED_BYTES {
        let got = limits.max_buffered_bytes;
        problems.add(
            "limits.max_buffered_bytes",
            format_args!("must be at least {MIN_BUFFERED_BYTES}, got {got}"),
        );
    }
    if !(1..=MAX_CUSTOMERS).contains(&limits.max_customers) {
        let got = limits.max_customers;
        problems.add(
            "limits.max_customers",
            format_args!("must be 1 to {MAX_CUSTOMERS}, got {got}"),
        );
    }
    if limits.max_message_bytes < 64 {
        let got = limits.max_message_bytes;
        problems.add(
            "limits.max_message_bytes",
            format_args!("must be at least 64, got {got}"),
        );
    }
    for (key, got) in limits.field_limit_keys() {
        if got < 1 {
            problems.add(key, "must be at least 1, got 0");
        }
    }
}

/// Every problem `config` has, for the validation tests of each section.
#[cfg(test)]
pub(crate) fn problems_of(config: &Config) -> Vec<String> {
    config
        .validate()
        .err()
        .map(|e| e.problems)
        .unwrap_or_default()
}

/// `[consent]`, unless it is off: names that a touchpoint can carry
/// (non-empty, within the field limits, or they would never match), and
/// two distinct actions.
fn consent(consent: &ConsentConfig, limits: &LimitsConfig, problems: &mut Problems) {
    if consent.mode == ConsentMode::Off {
        return;
    }
    let names = [
        (
            "consent.purpose",
            &consent.purpose,
            limits.max_attribute_value_length,
        ),
        (
            "consent.purpose_attribute",
            &consent.purpose_attribute,
            limits.max_attribute_key_length,
        ),
        (
            "consent.granted_action",
            &consent.granted_action,
            limits.max_action_length,
        ),
        (
            "consent.withdrawn_action",
            &consent.withdrawn_action,
            limits.max_action_length,
        ),
    ];
    for (key, name, limit) in names {
        if name.is_empty() {
            problems.add(key, "must not be empty");
        } else if name.len() > limit {
            problems.add(
                key,
                format!(
                    "{} bytes, longer than a touchpoint may carry ({limit})",
                    name.len()
                ),
            );
        }
    }
    if consent.granted_action == consent.withdrawn_action {
        problems.add(
            "consent.withdrawn_action",
            format!(
                "{:?} is also consent.granted_action; the two must differ",
                consent.withdrawn_action
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::problems_of as problems;

    #[test]
    fn the_default_configuration_is_valid() {
        assert_eq!(problems(&Config::default()), Vec::<String>::new());
    }

    #[test]
    fn time_windows_must_be_positive_and_ttl_covers_lapse() {
        let mut config = Config::default();
        config.time.funnel_window = Duration::ZERO;
        config.time.state_ttl = Duration::from_secs(86_400);
        config.time.dedupe_horizon = Duration::ZERO;
        let found = problems(&config);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("time.funnel_window: must be at least 1ms"));
        assert!(found[1].starts_with("time.dedupe_horizon: must be at least 1ms"));
        assert!(found[2].starts_with("time.state_ttl: must be at least time.lapse_after"));
        config.time.dedupe_horizon = Duration::from_secs(2 * 86_400);
        assert_eq!(
            problems(&config)[1],
            "time.dedupe_horizon: must be at most time.state_ttl (\"1day\"), got \"2days\"; an \
             evicted customer's event ids are forgotten with them"
        );
    }

    #[test]
    fn limits_are_bounded() {
        let config = Config {
            limits: LimitsConfig {
                dedupe_per_customer: 65,
                max_buffered_events: 0,
                max_buffered_bytes: 100,
                max_customers: 0,
                max_message_bytes: 10,
                max_id_length: 0,
                max_attribute_value_length: 0,
                ..LimitsConfig::default()
            },
            ..Config::default()
        };
        let found = problems(&config);
        assert_eq!(
            found,
            [
                "limits.dedupe_per_customer: must be 1 to 64, got 65",
                "limits.max_buffered_events: must be at least 1, got 0",
                "limits.max_buffered_bytes: must be at least 4096, got 100",
                "limits.max_customers: must be 1 to 2147483648, got 0",
                "limits.max_message_bytes: must be at least 64, got 10",
                "limits.max_id_length: must be at least 1, got 0",
                "limits.max_attribute_value_length: must be at least 1, got 0",
            ]
        );
    }
}
