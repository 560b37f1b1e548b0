//! The journey model compiled into lookup tables.
//!
//! [`Rules::compile`] turns the validated [`Config`] into what the engine
//! consults per event: the action name is interned once into an
//! [`ActionId`], and everything that action can do (enter a stage, count
//! toward a windowed signal, regress, lapse, raise churn risk, count as a
//! purchase or revenue) is a short list indexed by that id. Nothing here is
//! allocated or searched by name on the hot path.
//!
//! Per-customer variable state (windowed-signal timestamps, churn-signal
//! times, de-duplication memory) lives in one flat slice per customer;
//! [`SlotLayout`] says where each part starts.

use compact_str::CompactString;
use hashbrown::HashMap;

use super::funnel::scores::{Scales, ScoreKind};
use crate::config::{Config, ConfigError};
use crate::model::Channel;

/// Index of a stage in [`Rules::stages`] (sorted by ordinal).
pub type StageIdx = u8;

/// An interned action name. Actions no rule mentions share [`ActionId::OTHER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionId(pub u16);

impl ActionId {
    /// Any action that no rule mentions.
    pub const OTHER: ActionId = ActionId(0);
}

/// A stage as the engine sees it.
#[derive(Clone, Debug)]
pub struct StageInfo {
    pub name: CompactString,
    pub ordinal: u8,
}

/// Conditions on an event beyond its action.
#[derive(Clone, Copy, Debug)]
pub struct Condition {
    channel: Option<Channel>,
    min_value: Option<f64>,
    max_value: Option<f64>,
}

impl Condition {
    fn new(channel: &Option<String>, min_value: Option<f64>, max_value: Option<f64>) -> Self {
        Condition {
            channel: channel.as_deref().map(Channel::parse),
            min_value,
            max_value,
        }
    }

    /// Whether an event on `channel` with `value` satisfies the condition.
    /// A value bound requires a value: an event without one does not match.
    pub fn matches(&self, channel: Channel, value: Option<f64>) -> bool {
        if self.channel.is_some_and(|c| c != channel) {
            return false;
        }
        match (self.min_value, self.max_value, value) {
            (None, None, _) => true,
            (_, _, None) => false,
            (min, max, Some(v)) => min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m),
        }
    }
}

/// "At least `count` matching events within `within_ms`", kept as the
/// `count` latest matching timestamps at `offset` in the customer's slots.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub count: u32,
    pub within_ms: i64,
    pub offset: usize,
}

/// An entry signal.
#[derive(Clone, Debug)]
pub struct Signal {
    pub stage: StageIdx,
    pub condition: Condition,
    pub window: Option<Window>,
}

/// An explicit downward move.
#[derive(Clone, Debug)]
pub struct Regress {
    /// Bit `i` set: applies to customers in stage `i`.
    pub from_mask: u64,
    pub to: StageIdx,
    pub condition: Condition,
}

/// A negative churn signal; its latest occurrence is kept at `slot`.
#[derive(Clone, Debug)]
pub struct ChurnSignal {
    pub name: CompactString,
    pub condition: Condition,
    pub weight: f64,
    pub slot: usize,
}

/// A journey moment; its open instance is kept in the customer's words at
/// `layout.moments + 2 * index`.
#[derive(Clone, Debug)]
pub struct Moment {
    pub name: CompactString,
    /// How long after its latest start it may complete.
    pub within_ms: i64,
}

/// A conversion deadline for one stage pair; `index` is its funnel row.
#[derive(Clone, Copy, Debug)]
pub struct Conversion {
    pub index: usize,
    pub from: StageIdx,
    pub to: StageIdx,
    pub timeout_ms: i64,
}

/// Everything one action can do, as indices into the rule tables.
#[derive(Clone, Debug, Default)]
pub struct ActionRules {
    pub signals: Vec<u16>,
    pub regress: Vec<u16>,
    pub churn_signals: Vec<u16>,
    pub lapse: bool,
    pub purchase: bool,
    pub cancel: bool,
    pub revenue: bool,
    /// The experience score its `value` answers.
    pub score: Option<ScoreKind>,
    /// Bit `i` set: opens (or extends) moment `i`.
    pub moment_start: u32,
    /// Bit `i` set: completes moment `i` when it is open.
    pub moment_complete: u32,
}

/// Where each part of a customer's flat slot array starts.
#[derive(Clone, Copy, Debug)]
pub struct SlotLayout {
    /// Windowed-signal timestamps start at 0; churn-signal times here.
    pub churn: usize,
    /// Open moments here: two words per moment, its first and latest
    /// start (`i64::MIN` when not open; see [`super::moments`]).
    pub moments: usize,
    /// De-duplication memory here: its floor, then its entries.
    pub dedupe: usize,
    /// Total slots per customer.
    pub len: usize,
}

/// The compiled journey model.
#[derive(Clone, Debug)]
pub struct Rules {
    pub stages: Vec<StageInfo>,
    pub entry_stage: StageIdx,
    pub lapse_stage: StageIdx,
    pub signals: Vec<Signal>,
    pub regress: Vec<Regress>,
    pub churn_signals: Vec<ChurnSignal>,
    pub conversions: Vec<Conversion>,
    /// Per stage, the conversion that starts when a customer enters it.
    pub conversion_from: Vec<Option<Conversion>>,
    /// The journey moments, in config order.
    pub moments: Vec<Moment>,
    pub layout: SlotLayout,
    /// The experience-score scales.
    pub scales: Scales,
    actions: HashMap<CompactString, ActionId>,
    per_action: Vec<ActionRules>,
}

impl Rules {
    /// Compiles a configuration; it must have passed [`Config::validate`].
    /// Inconsistencies validation cannot see are reported the same way.
    pub fn compile(config: &Config) -> Result<Rules, ConfigError> {
        let mut builder = Builder::new(config)?;
        builder.add_signals(config);
        builder.add_regress(config);
        builder.add_churn(config);
        builder.add_flags(config);
        builder.add_moments(config);
        builder.finish(config)
    }

    /// The interned id of an action name.
    #[inline]
    pub fn action_id(&self, action: &str) -> ActionId {
        self.actions.get(action).copied().unwrap_or(ActionId::OTHER)
    }

    /// What an action can do.
    #[inline]
    pub fn action(&self, id: ActionId) -> &ActionRules {
        &self.per_action[usize::from(id.0)]
    }

    /// The name of a stage.
    pub fn stage_name(&self, stage: StageIdx) -> &CompactString {
        &self.stages[usize::from(stage)].name
    }

    /// Looks a stage up by its ordinal (the config's stable number).
    pub fn stage_by_ordinal(&self, ordinal: u8) -> Option<StageIdx> {
        let idx = self.stages.iter().position(|s| s.ordinal == ordinal)?;
        StageIdx::try_from(idx).ok()
    }

    /// The windowed entry signals' windows, in config order (and in the
    /// order of their words).
    pub fn windows(&self) -> impl Iterator<Item = &Window> {
        self.signals.iter().filter_map(|s| s.window.as_ref())
    }

    /// Looks a stage up by name.
    pub fn stage_by_name(&self, name: &str) -> Option<StageIdx> {
        let idx = self.stages.iter().position(|s| s.name == name)?;
        StageIdx::try_from(idx).ok()
    }
}

/// Accumulates the tables while compiling.
struct Builder {
    rules: Rules,
    problems: Vec<String>,
    window_slots: usize,
}

impl Builder {
    fn new(config: &Config) -> Result<Self, ConfigError> {
        let mut stages: Vec<StageInfo> = config
            .journey
            .stages
            .iter()
            .map(|s| StageInfo {
                name: s.name.as_str().into(),
                ordinal: s.ordinal,
            })
            .collect();
        stages.sort_by_key(|s| s.ordinal);
        if stages.is_empty() || stages.len() > 64 {
            return Err(problem(
                "journey.stages: between 1 and 64 stages are needed",
            ));
        }
        let mut rules = Rules {
            conversion_from: vec![None; stages.len()],
            stages,
            entry_stage: 0,
            lapse_stage: 0,
            signals: Vec::new(),
            regress: Vec::new(),
            churn_signals: Vec::new(),
            conversions: Vec::new(),
            moments: Vec::new(),
            layout: SlotLayout {
                churn: 0,
                moments: 0,
                dedupe: 0,
                len: 0,
            },
            scales: Scales::new(&config.journey.scores),
            actions: HashMap::new(),
            per_action: vec![ActionRules::default()],
        };
        let mut problems = Vec::new();
        rules.entry_stage = lookup(
            &rules,
            &config.journey.entry_stage,
            "journey.entry_stage",
            &mut problems,
        );
        rules.lapse_stage = lookup(
            &rules,
            &config.journey.lapse.stage,
            "journey.lapse.stage",
            &mut problems,
        );
        let mut builder = Builder {
            rules,
            problems,
            window_slots: 0,
        };
        builder.add_conversions(config);
        Ok(builder)
    }

    fn intern(&mut self, action: &str) -> usize {
        let next = ActionId(u16::try_from(self.rules.per_action.len()).unwrap_or(u16::MAX));
        let id = *self.rules.actions.entry(action.into()).or_insert(next);
        if id == next {
            self.rules.per_action.push(ActionRules::default());
        }
        usize::from(id.0)
    }

    fn stage(&mut self, name: &str, key: String) -> StageIdx {
        lookup(&self.rules, name, &key, &mut self.problems)
    }

    fn add_conversions(&mut self, config: &Config) {
        for (i, c) in config.journey.conversions.iter().enumerate() {
            let from = self.stage(&c.from, format!("journey.conversions[{i}].from"));
            let to = self.stage(&c.to, format!("journey.conversions[{i}].to"));
            let conversion = Conversion {
                index: i,
                from,
                to,
                timeout_ms: duration_ms(c.timeout),
            };
            let slot = &mut self.rules.conversion_from[usize::from(from)];
            if slot.is_some() {
                self.problems.push(format!(
                    "journey.conversions[{i}].from: a conversion from \"{}\" is already defined",
                    c.from
                ));
            }
            *slot = Some(conversion);
            self.rules.conversions.push(conversion);
        }
    }

    fn add_signals(&mut self, config: &Config) {
        for (i, s) in config.journey.signals.iter().enumerate() {
            let stage = self.stage(&s.stage, format!("journey.signals[{i}].stage"));
            let window = match (s.count, s.within) {
                (Some(count), Some(within)) => {
                    let offset = self.window_slots;
                    self.window_slots += count as usize;
                    Some(Window {
                        count,
                        within_ms: duration_ms(within),
                        offset,
                    })
                }
                _ => None,
            };
            let condition = Condition::new(&s.channel, s.min_value, s.max_value);
            let index = self.push_index(self.rules.signals.len());
            self.rules.signals.push(Signal {
                stage,
                condition,
                window,
            });
            for action in &s.actions {
                let a = self.intern(action);
                self.rules.per_action[a].signals.push(index);
            }
        }
    }

    fn add_regress(&mut self, config: &Config) {
        for (i, r) in config.journey.regress.iter().enumerate() {
            let mut from_mask = 0u64;
            for (j, name) in r.from.iter().enumerate() {
                from_mask |= 1 << self.stage(name, format!("journey.regress[{i}].from[{j}]"));
            }
            let to = self.stage(&r.to, format!("journey.regress[{i}].to"));
            let condition = Condition::new(&r.channel, r.min_value, r.max_value);
            let index = self.push_index(self.rules.regress.len());
            self.rules.regress.push(Regress {
                from_mask,
                to,
                condition,
            });
            let a = self.intern(&r.action);
            self.rules.per_action[a].regress.push(index);
        }
    }

    fn add_churn(&mut self, config: &Config) {
        for s in &config.churn.signals {
            let condition = Condition::new(&None, s.min_value, s.max_value);
            let index = self.push_index(self.rules.churn_signals.len());
            let slot = self.rules.churn_signals.len();
            self.rules.churn_signals.push(ChurnSignal {
                name: s.name.as_str().into(),
                condition,
                weight: s.weight,
                slot,
            });
            let a = self.intern(&s.action);
            self.rules.per_action[a].churn_signals.push(index);
        }
    }

    fn add_flags(&mut self, config: &Config) {
        type SetFlag = fn(&mut ActionRules);
        let lists: [(&Vec<String>, SetFlag); 4] = [
            (&config.journey.lapse.actions, |a| a.lapse = true),
            (&config.churn.purchase_actions, |a| a.purchase = true),
            (&config.churn.cancel_actions, |a| a.cancel = true),
            (&config.journey.revenue_actions, |a| a.revenue = true),
        ];
        for (actions, set) in lists {
            for action in actions {
                let a = self.intern(action);
                set(&mut self.rules.per_action[a]);
            }
        }
        let scores = &config.journey.scores;
        for (action, kind) in [
            (&scores.nps_action, ScoreKind::Nps),
            (&scores.csat_action, ScoreKind::Csat),
            (&scores.ces_action, ScoreKind::Ces),
        ] {
            let a = self.intern(action);
            self.rules.per_action[a].score = Some(kind);
        }
    }

    fn add_moments(&mut self, config: &Config) {
        let moments = &config.journey.moments;
        if moments.len() > crate::config::MAX_MOMENTS {
            let max = crate::config::MAX_MOMENTS;
            self.problems
                .push(format!("journey.moments: at most {max} moments"));
            return;
        }
        for (i, m) in moments.iter().enumerate() {
            self.rules.moments.push(Moment {
                name: m.name.as_str().into(),
                within_ms: duration_ms(m.within),
            });
            for action in &m.start {
                let a = self.intern(action);
                self.rules.per_action[a].moment_start |= 1 << i;
            }
            for action in &m.complete {
                let a = self.intern(action);
                self.rules.per_action[a].moment_complete |= 1 << i;
            }
        }
    }

    fn push_index(&mut self, len: usize) -> u16 {
        u16::try_from(len).unwrap_or_else(|_| {
            self.problems
                .push("journey: more than 65535 rules".to_owned());
            u16::MAX
        })
    }

    fn finish(mut self, config: &Config) -> Result<Rules, ConfigError> {
        let churn = self.window_slots;
        let moments = churn + self.rules.churn_signals.len();
        let dedupe = moments + 2 * self.rules.moments.len();
        self.rules.layout = SlotLayout {
            churn,
            moments,
            dedupe,
            // The floor, then the entries (see `dedupe`).
            len: dedupe + 1 + config.limits.dedupe_per_customer.max(1),
        };
        if self.problems.is_empty() {
            Ok(self.rules)
        } else {
            Err(ConfigError::new(self.problems))
        }
    }
}

fn lookup(rules: &Rules, name: &str, key: &str, problems: &mut Vec<String>) -> StageIdx {
    rules.stage_by_name(name).unwrap_or_else(|| {
        problems.push(format!("{key}: unknown stage \"{name}\""));
        0
    })
}

fn problem(text: &str) -> ConfigError {
    ConfigError::new(vec![text.to_owned()])
}

/// A config duration in milliseconds, saturating.
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_compiles() {
        let rules = Rules::compile(&Config::default()).expect("default config compiles");
        let names: Vec<_> = rules.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "lapsed",
                "awareness",
                "consideration",
                "purchase",
                "retention",
                "advocacy"
            ]
        );
        assert_eq!(rules.stage_name(rules.entry_stage), "awareness");
        assert_eq!(rules.stage_name(rules.lapse_stage), "lapsed");
        let purchase = rules.action(rules.action_id("purchase"));
        assert!(purchase.purchase && purchase.revenue);
        assert_eq!(
            purchase.signals.len(),
            2,
            "purchase enters purchase and counts toward retention"
        );
        assert_eq!(rules.action_id("page_view"), ActionId::OTHER);
        // 3 product views + 2 purchases, 4 churn signals, 2 words for
        // each of the 2 moments, the de-dup floor and 8 entries.
        let layout = rules.layout;
        assert_eq!(
            (layout.churn, layout.moments, layout.dedupe, layout.len),
            (5, 9, 13, 22)
        );
        let (cart, purchase) = (rules.action_id("add_to_cart"), rules.action_id("purchase"));
        assert_eq!(rules.action(cart).moment_start, 0b01);
        assert_eq!(rules.action(purchase).moment_complete, 0b11);
    }

    #[test]
    fn conditions_need_a_value_for_bounds() {
        let c = Condition::new(&None, Some(4.0), None);
        assert!(c.matches(Channel::Web, Some(4.0)));
        assert!(!c.matches(Channel::Web, Some(3.9)));
        assert!(!c.matches(Channel::Web, None));
        let web = Condition::new(&Some("web".into()), None, None);
        assert!(web.matches(Channel::Web, None));
        assert!(!web.matches(Channel::App, None));
    }

    #[test]
    fn unknown_stage_is_reported_with_its_key() {
        let mut config = Config::default();
        config.journey.signals[0].stage = "awarenes".into();
        let err = Rules::compile(&config).unwrap_err();
        assert_eq!(
            err.problems,
            ["journey.signals[0].stage: unknown stage \"awarenes\""]
        );
    }
}
