//! Deserializing the value tree into a [`Config`], collecting every unknown
//! key and every type error instead of stopping at the first.
//!
//! Unknown keys in tables that tolerate them are collected by
//! `serde_ignored`. Anything else stops serde: an unknown key in a table
//! that denies them, a value of the wrong type, a missing required key.
//! `serde_path_to_error` says where. The tree is then repaired and
//! deserialized again, until it succeeds or cannot be repaired:
//!
//! - an unknown key or a wrong value is removed, so its default applies
//!   (a list entry is never removed alone, as that would shift the indices
//!   of later entries: the whole list goes);
//! - a missing required key gets a stand-in, tried from a few well-typed
//!   values (`"1s"`, `1`, `false`, `[]`, `{}`) until one is accepted; when
//!   none is, the table that lacks the key is removed.
//!
//! Every repair removes a key, moves a stand-in to its next value or gives a
//! new key a stand-in (each key once), so this ends; a bound on the number of
//! passes guards against structures that nest without end. Problems caused by a repair (a key missing because it was removed,
//! a stand-in of the wrong type) are not reported. A repaired tree only
//! serves to find further problems: unless the only problems are unknown
//! keys, no configuration is returned.

use std::collections::{BTreeMap, BTreeSet};

use toml::Value;

use super::env::{Override, annotate};
use super::path::KeyPath;
use crate::config::Config;

/// What deserializing produced.
pub(super) struct Outcome {
    /// The configuration, unless a problem other than an unknown key was found.
    pub config: Option<Config>,
    /// One line per problem, ordered by key.
    pub problems: Vec<String>,
}

/// How one pass failed.
struct Failure {
    path: KeyPath,
    message: String,
}

/// A failure, sorted out: the key it concerns and what is wrong with it.
struct Problem {
    key: KeyPath,
    text: String,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A key no struct has; does not stop the configuration from being used.
    Unknown,
    /// A required key is absent.
    Missing,
    /// A value of the wrong type or out of the type's range.
    Invalid,
}

/// The edits made to the tree so far.
#[derive(Default)]
struct Repairs {
    /// Keys removed.
    removed: Vec<KeyPath>,
    /// Missing keys given a stand-in, with the index of the stand-in tried.
    stand_ins: BTreeMap<KeyPath, usize>,
}

/// A bound on repairs, should a future recursive structure make stand-ins
/// nest without end.
const MAX_PASSES: usize = 1_000;

/// Deserializes `tree`, reporting every problem with its key; `overrides`
/// name the environment variable behind a key.
pub(super) fn deserialize(mut tree: Value, overrides: &[Override]) -> Outcome {
    let mut ignored = BTreeSet::new();
    let mut found: Vec<(KeyPath, String)> = Vec::new();
    let mut repairs = Repairs::default();
    let mut usable = true;
    let mut passes = 0;
    let config = loop {
        let failure = match pass(&tree, &mut ignored) {
            Ok(config) => break Some(config),
            Err(failure) => failure,
        };
        passes += 1;
        let problem = describe(failure, &tree);
        if !repairs.caused(&problem.key) {
            usable &= problem.kind == Kind::Unknown;
            found.push((problem.key.clone(), problem.text.clone()));
        }
        if passes == MAX_PASSES || !repairs.repair(&mut tree, &problem) {
            usable = false;
            break None;
        }
    };
    found.extend(
        ignored
            .into_iter()
            .map(|key| (key, "unknown key".to_owned())),
    );
    found.sort();
    found.dedup();
    Outcome {
        config: config.filter(|_| usable),
        problems: found
            .into_iter()
            .map(|(key, text)| annotate(overrides, format!("{key}: {text}")))
            .collect(),
    }
}

impl Repairs {
    /// Whether a problem at `key` is the result of an earlier repair.
    fn caused(&self, key: &KeyPath) -> bool {
        self.removed.contains(key) || self.stand_ins.keys().any(|s| key.starts_with(s))
    }

    /// Edits `tree` so that the next pass gets past `problem`; `false` when
    /// it cannot.
    fn repair(&mut self, tree: &mut Value, problem: &Problem) -> bool {
        let key = &problem.key;
        if problem.kind == Kind::Missing {
            // Missing again after its stand-ins were exhausted: give up.
            if self.stand_ins.insert(key.clone(), 0).is_some() {
                return false;
            }
            return key.set_in(tree, stand_in(0).unwrap_or(Value::Boolean(false)));
        }
        let under = self
            .stand_ins
            .iter_mut()
            .filter(|(s, _)| key.starts_with(s));
        if let Some((stand_in_key, tried)) = under.max_by_key(|(s, _)| s.len()) {
            *tried += 1;
            if let Some(next) = stand_in(*tried) {
                return stand_in_key.set_in(tree, next);
            }
            let table = stand_in_key.parent().and_then(|p| p.removable());
            return table.is_some_and(|table| self.remove(tree, table));
        }
        let target = if problem.kind == Kind::Unknown {
            Some(key.clone())
        } else {
            key.removable()
        };
        target.is_some_and(|target| self.remove(tree, target))
    }

    fn remove(&mut self, tree: &mut Value, key: KeyPath) -> bool {
        let removed = key.remove_from(tree);
        self.removed.push(key);
        removed
    }
}

/// The `attempt`-th well-typed value tried for a missing key: a string
/// that is also a duration, a number, a boolean, a list, a table.
fn stand_in(attempt: usize) -> Option<Value> {
    Some(match attempt {
        0 => Value::String("1s".to_owned()),
        1 => Value::Integer(1),
        2 => Value::Boolean(false),
        3 => Value::Array(Vec::new()),
        4 => Value::Table(toml::Table::new()),
        _ => return None,
    })
}

/// One deserialization pass; unknown keys it skips go into `ignored`.
fn pass(tree: &Value, ignored: &mut BTreeSet<KeyPath>) -> Result<Config, Failure> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(tree.clone(), &mut track);
    let result = serde_ignored::deserialize(tracked, |path| {
        ignored.insert(KeyPath::from_ignored(&path));
    });
    result.map_err(|error: toml::de::Error| Failure {
        path: KeyPath::from_tracked(&track.path()),
        message: error.message().to_owned(),
    })
}

/// Turns serde's message into a problem about a key.
fn describe(failure: Failure, tree: &Value) -> Problem {
    let Failure { path, message } = failure;
    if message.starts_with("unknown field `") {
        let text = "unknown key".to_owned();
        return Problem {
            key: path,
            text,
            kind: Kind::Unknown,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = path.key(rest.trim_end_matches('`'));
        let text = "missing (this key is required)".to_owned();
        return Problem {
            key,
            text,
            kind: Kind::Missing,
        };
    }
    let text = reword(&message, path.lookup(tree));
    Problem {
        key: path,
        text,
        kind: Kind::Invalid,
    }
}

/// Rust type names in serde's messages, in the words of the file format.
const PLAIN_TYPES: [(&str, &str); 6] = [
    ("expected usize", "expected a whole number (0 or more)"),
    (
        "expected u32",
        "expected a whole number from 0 to 4294967295",
    ),
    ("expected u8", "expected a whole number from 0 to 255"),
    ("expected f64", "expected a number"),
    ("expected a sequence", "expected a list"),
    ("expected a boolean", "expected true or false"),
];

/// Clearer wording for the messages users meet most: bad durations and
/// addresses, and Rust type names.
fn reword(message: &str, value: Option<&Value>) -> String {
    if message == "invalid socket address syntax" {
        let shown = match value {
            Some(Value::String(text)) => format!(" \"{text}\""),
            _ => String::new(),
        };
        return format!(
            "invalid address{shown}; expected an IP address and a port, e.g. \"0.0.0.0:9464\" \
             or \"[::]:9464\" (not a host name)"
        );
    }
    if let Some((head, _)) = message.rsplit_once("expected struct ") {
        return format!("{head}expected a table");
    }
    for (rust, plain) in PLAIN_TYPES {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{plain}");
        }
    }
    if !message.ends_with("expected a duration") {
        return message.to_owned();
    }
    match value {
        Some(Value::String(text)) if text.trim_start().starts_with('-') => {
            format!("negative duration \"{text}\"; durations are zero or more, e.g. \"30s\"")
        }
        Some(Value::String(text)) => {
            format!(
                "invalid duration \"{text}\"; expected a number and a unit, e.g. \"30s\", \"15m\", \"90d\""
            )
        }
        Some(other) => format!(
            "expected a duration string such as \"30s\" or \"90d\", found {} `{other}`",
            other.type_str()
        ),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewords_rust_types_and_durations() {
        let int = Value::Integer(3);
        let text = Value::String("-5s".into());
        assert_eq!(
            reword(
                "invalid type: integer `3`, expected struct TimeConfig",
                Some(&int)
            ),
            "invalid type: integer `3`, expected a table"
        );
        assert_eq!(
            reword("invalid value: integer `300`, expected u8", Some(&int)),
            "invalid value: integer `300`, expected a whole number from 0 to 255"
        );
        assert_eq!(
            reword(
                "invalid value: string \"-5s\", expected a duration",
                Some(&text)
            ),
            "negative duration \"-5s\"; durations are zero or more, e.g. \"30s\""
        );
        assert_eq!(reword("something else", None), "something else");
        let host = Value::String("localhost:9464".into());
        assert_eq!(
            reword("invalid socket address syntax", Some(&host)),
            "invalid address \"localhost:9464\"; expected an IP address and a port, e.g. \
             \"0.0.0.0:9464\" or \"[::]:9464\" (not a host name)"
        );
    }

    #[test]
    fn a_missing_key_caused_by_a_removal_is_not_reported_twice() {
        let tree: toml::Table =
            toml::from_str("[[journey.signals]]\nstage = 'purchase'\nactions = [1]\n").unwrap();
        let outcome = deserialize(Value::Table(tree), &[]);
        assert!(outcome.config.is_none());
        assert_eq!(
            outcome.problems,
            ["journey.signals[0].actions[0]: invalid type: integer `1`, expected a string"]
        );
    }
}
