//! `journeyd_events_consumed_total{topic,action}` with bounded labels.
//!
//! The action label is the action's name only when a rule mentions it;
//! every other action (there may be thousands in a clickstream) counts as
//! `other`. [`ConsumedCounters`] resolves one handle per (topic, action)
//! pair at start-up, indexed by the engine's interned [`ActionId`], so
//! counting a consumed touchpoint is an index and an atomic add.

use std::collections::BTreeSet;

use prometheus::{IntCounter, IntCounterVec};

use super::Metrics;
use crate::config::Config;
use crate::engine::Rules;
use crate::engine::rules::ActionId;

/// The action label of actions no rule knows.
pub const OTHER_ACTION: &str = "other";

/// Every action name a rule of `config` mentions: entry signals, regress
/// rules, lapse, churn signals, purchase, cancel and revenue actions.
pub fn rule_actions(config: &Config) -> BTreeSet<&str> {
    let j = &config.journey;
    let c = &config.churn;
    let lists = [
        &j.lapse.actions,
        &j.revenue_actions,
        &c.purchase_actions,
        &c.cancel_actions,
    ];
    let signals = j.signals.iter().flat_map(|s| &s.actions);
    let regress = j.regress.iter().map(|r| &r.action);
    let churn = c.signals.iter().map(|s| &s.action);
    lists
        .into_iter()
        .flatten()
        .chain(signals)
        .chain(regress)
        .chain(churn)
        .map(String::as_str)
        .collect()
}

/// The counters of one topic, indexed by [`ActionId`].
#[derive(Clone, Debug)]
struct TopicCounters {
    topic: String,
    by_action: Vec<IntCounter>,
}

/// Pre-resolved consumed-touchpoint counters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ConsumedCounters {
    /// For topics not resolved at start-up (slow path).
    vec: IntCounterVec,
    /// The label of each [`ActionId`]; index 0 is [`OTHER_ACTION`].
    labels: Vec<String>,
    topics: Vec<TopicCounters>,
}

impl ConsumedCounters {
    /// Counts one touchpoint of `action` (as interned by
    /// [`Rules::action_id`]) consumed from `topic`.
    pub fn inc(&self, topic: &str, action: ActionId) {
        let index = usize::from(action.0);
        match self.topics.iter().find(|t| t.topic == topic) {
            Some(t) => t.by_action.get(index).unwrap_or(&t.by_action[0]).inc(),
            None => {
                let label = self.labels.get(index).unwrap_or(&self.labels[0]);
                self.vec.with_label_values(&[topic, label.as_str()]).inc();
            }
        }
    }

    /// The label used for `action`.
    pub fn label(&self, action: ActionId) -> &str {
        let index = usize::from(action.0);
        self.labels.get(index).unwrap_or(&self.labels[0])
    }
}

impl Metrics {
    /// Resolves `journeyd_events_consumed_total` handles for every input
    /// topic and every action of `actions` that `rules` knows (pass
    /// [`rule_actions`] of the config). The series exist, at 0, from now on.
    pub fn consumed_counters<'a>(
        &self,
        topics: &[&str],
        rules: &Rules,
        actions: impl IntoIterator<Item = &'a str>,
    ) -> ConsumedCounters {
        let mut labels = vec![OTHER_ACTION.to_owned()];
        for name in actions {
            let id = usize::from(rules.action_id(name).0);
            if id == usize::from(ActionId::OTHER.0) {
                continue;
            }
            if labels.len() <= id {
                labels.resize(id + 1, OTHER_ACTION.to_owned());
            }
            labels[id] = name.to_owned();
        }
        let vec = self.input.consumed.clone();
        let topics = topics
            .iter()
            .map(|topic| TopicCounters {
                topic: (*topic).to_owned(),
                by_action: labels
                    .iter()
                    .map(|label| vec.with_label_values(&[*topic, label.as_str()]))
                    .collect(),
            })
            .collect();
        ConsumedCounters {
            vec,
            labels,
            topics,
        }
    }
}
