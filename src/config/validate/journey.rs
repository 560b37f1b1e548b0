//! Checks of the journey model: stages, entry signals, regress rules and
//! conversion deadlines.

use std::collections::HashMap;

use super::Problems;
use crate::config::{ConversionConfig, EntrySignal, JourneyConfig, RegressRule, ScoresConfig};

/// The configured stages, for resolving the names rules use.
struct Stages<'a> {
    /// Ordinal by name; on a duplicate name the first one wins.
    ordinals: HashMap<&'a str, u8>,
    /// Names in config order, for messages.
    known: String,
    /// The lapse stage's name.
    lapse: &'a str,
}

impl<'a> Stages<'a> {
    fn new(journey: &'a JourneyConfig) -> Stages<'a> {
        let mut ordinals = HashMap::new();
        let mut names = Vec::new();
        for stage in &journey.stages {
            if !ordinals.contains_key(stage.name.as_str()) {
                ordinals.insert(stage.name.as_str(), stage.ordinal);
                names.push(stage.name.as_str());
            }
        }
        Stages {
            ordinals,
            known: names.join(", "),
            lapse: &journey.lapse.stage,
        }
    }

    /// The ordinal of stage `name`, or a problem at `key` naming the known stages.
    fn resolve(
        &self,
        problems: &mut Problems,
        key: impl std::fmt::Display,
        name: &str,
    ) -> Option<u8> {
        let ordinal = self.ordinals.get(name).copied();
        if ordinal.is_none() {
            let known = &self.known;
            problems.add(
                key,
                format_args!("unknown stage \"{name}\" (known: {known})"),
            );
        }
        ordinal
    }
}

/// Checks the whole `journey` section.
pub(super) fn check(journey: &JourneyConfig, problems: &mut Problems) {
    stage_list(journey, problems);
    let stages = Stages::new(journey);
    entry_and_lapse(journey, &stages, problems);
    for (i, signal) in journey.signals.iter().enumerate() {
        entry_signal(&format!("journey.signals[{i}]"), signal, &stages, problems);
    }
    for (i, rule) in journey.regress.iter().enumerate() {
        regress_rule(&format!("journey.regress[{i}]"), rule, &stages, problems);
    }
    conversions(&journey.conversions, &stages, problems);
    problems.actions("journey.revenue_actions", &journey.revenue_actions, false);
    scores(&journey.scores, problems);
}

/// Score actions named and distinct; each scale ordered.
fn scores(scores: &ScoresConfig, problems: &mut Problems) {
    let actions = [
        ("journey.scores.nps_action", &scores.nps_action),
        ("journey.scores.csat_action", &scores.csat_action),
        ("journey.scores.ces_action", &scores.ces_action),
    ];
    for (i, (key, action)) in actions.iter().enumerate() {
        if action.trim().is_empty() {
            problems.add(key, "must not be empty");
        } else if let Some((other, _)) = actions[..i].iter().find(|(_, a)| a == action) {
            problems.add(key, format_args!("\"{action}\" is {other} already"));
        }
    }
    let s = scores;
    if !(s.nps_detractor_max < s.nps_promoter_min && s.nps_promoter_min <= s.nps_max) {
        problems.add(
            "journey.scores",
            format_args!(
                "need nps_detractor_max < nps_promoter_min <= nps_max, got {} / {} / {}",
                s.nps_detractor_max, s.nps_promoter_min, s.nps_max
            ),
        );
    }
    if !(1 <= s.csat_satisfied_min && s.csat_satisfied_min <= s.csat_max) {
        problems.add(
            "journey.scores",
            format_args!(
                "need 1 <= csat_satisfied_min <= csat_max, got {} / {}",
                s.csat_satisfied_min, s.csat_max
            ),
        );
    }
    if s.ces_max < 1 {
        problems.add("journey.scores.ces_max", "must be at least 1, got 0");
    }
    for (key, max) in [
        ("journey.scores.nps_max", s.nps_max),
        ("journey.scores.csat_max", s.csat_max),
        ("journey.scores.ces_max", s.ces_max),
    ] {
        if max > 100 {
            problems.add(key, format_args!("must be at most 100, got {max}"));
        }
    }
}

/// Names non-empty and unique, ordinals unique.
fn stage_list(journey: &JourneyConfig, problems: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ordinals: HashMap<u8, usize> = HashMap::new();
    for (i, stage) in journey.stages.iter().enumerate() {
        let name = stage.name.as_str();
        if name.trim().is_empty() {
            problems.add(
                format_args!("journey.stages[{i}].name"),
                "must not be empty",
            );
        } else if let Some(first) = names.insert(name, i) {
            names.insert(name, first);
            let why = format!("duplicate stage \"{name}\" (also journey.stages[{first}])");
            problems.add(format_args!("journey.stages[{i}].name"), why);
        }
        if let Some(&first) = ordinals.get(&stage.ordinal) {
            let why = format!(
                "duplicate ordinal {} (also journey.stages[{first}])",
                stage.ordinal
            );
            problems.add(format_args!("journey.stages[{i}].ordinal"), why);
        } else {
            ordinals.insert(stage.ordinal, i);
        }
    }
}

/// The entry and lapse stages exist; lapse is lowest, entry the next.
fn entry_and_lapse(journey: &JourneyConfig, stages: &Stages<'_>, problems: &mut Problems) {
    let lapse = stages.resolve(problems, "journey.lapse.stage", &journey.lapse.stage);
    let entry = stages.resolve(problems, "journey.entry_stage", &journey.entry_stage);
    problems.actions("journey.lapse.actions", &journey.lapse.actions, false);
    let (Some(lapse), Some(entry)) = (lapse, entry) else {
        return;
    };
    let below = |limit: u8| journey.stages.iter().filter(move |s| s.ordinal < limit);
    if let Some(lower) = below(lapse).next() {
        let why = format!(
            "the lapse stage must have the lowest ordinal, but \"{}\" ({}) is below \"{}\" ({lapse})",
            lower.name, lower.ordinal, journey.lapse.stage
        );
        problems.add("journey.lapse.stage", why);
    }
    if journey.entry_stage == journey.lapse.stage {
        problems.add("journey.entry_stage", "must not be the lapse stage");
    } else if let Some(lower) = below(entry).find(|s| s.name != journey.lapse.stage) {
        let why = format!(
            "the entry stage must be the lowest after the lapse stage, but \"{}\" ({}) is below \"{}\" ({entry})",
            lower.name, lower.ordinal, journey.entry_stage
        );
        problems.add("journey.entry_stage", why);
    }
}

fn entry_signal(key: &str, signal: &EntrySignal, stages: &Stages<'_>, problems: &mut Problems) {
    stages.resolve(problems, format_args!("{key}.stage"), &signal.stage);
    if signal.stage == stages.lapse {
        let why = "entry signals cannot enter the lapse stage; list lapse actions in journey.lapse.actions";
        problems.add(format_args!("{key}.stage"), why);
    }
    problems.actions(format_args!("{key}.actions"), &signal.actions, true);
    problems.channel(format_args!("{key}.channel"), signal.channel.as_deref());
    problems.value_bounds(key, signal.min_value, signal.max_value);
    match (signal.count, signal.within) {
        (Some(_), None) => problems.add(
            format_args!("{key}.count"),
            "needs `within`, the window to count in",
        ),
        (None, Some(_)) => problems.add(
            format_args!("{key}.within"),
            "needs `count`, how many events within it",
        ),
        (Some(count), Some(within)) => {
            if count < 1 {
                problems.add(format_args!("{key}.count"), "must be at least 1, got 0");
            }
            problems.positive_duration(format_args!("{key}.within"), within);
        }
        (None, None) => {}
    }
}

fn regress_rule(key: &str, rule: &RegressRule, stages: &Stages<'_>, problems: &mut Problems) {
    if rule.action.trim().is_empty() {
        problems.add(format_args!("{key}.action"), "must not be empty");
    }
    if rule.from.is_empty() {
        problems.add(format_args!("{key}.from"), "must list at least one stage");
    }
    let to = stages.resolve(problems, format_args!("{key}.to"), &rule.to);
    for (i, from) in rule.from.iter().enumerate() {
        let from_key = format!("{key}.from[{i}]");
        let ordinal = stages.resolve(problems, &from_key, from);
        if let (Some(from_ordinal), Some(to_ordinal)) = (ordinal, to)
            && to_ordinal >= from_ordinal
        {
            let why = format!(
                "a regress rule moves down, but `to` \"{}\" ({to_ordinal}) is not below \"{from}\" ({from_ordinal})",
                rule.to
            );
            problems.add(from_key, why);
        }
    }
    problems.channel(format_args!("{key}.channel"), rule.channel.as_deref());
    problems.value_bounds(key, rule.min_value, rule.max_value);
}

fn conversions(conversions: &[ConversionConfig], stages: &Stages<'_>, problems: &mut Problems) {
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, conversion) in conversions.iter().enumerate() {
        let key = format!("journey.conversions[{i}]");
        let from = stages.resolve(problems, format_args!("{key}.from"), &conversion.from);
        let to = stages.resolve(problems, format_args!("{key}.to"), &conversion.to);
        if let (Some(from), Some(to)) = (from, to)
            && to <= from
        {
            let why = format!(
                "must be a stage above `from` \"{}\" ({from}), got \"{}\" ({to})",
                conversion.from, conversion.to
            );
            problems.add(format_args!("{key}.to"), why);
        }
        problems.positive_duration(format_args!("{key}.timeout"), conversion.timeout);
        let pair = (conversion.from.as_str(), conversion.to.as_str());
        if let Some(first) = pairs.insert(pair, i) {
            pairs.insert(pair, first);
            let why = format!(
                "duplicate pair {} -> {} (also journey.conversions[{first}])",
                conversion.from, conversion.to
            );
            problems.add(key, why);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, ConversionConfig, RegressRule};

    use crate::config::validate::problems_of as problems;

    #[test]
    fn lapse_is_lowest_and_entry_next() {
        let mut config = Config::default();
        config.journey.stages[0].ordinal = 9; // lapsed above everything
        config.journey.entry_stage = "consideration".into();
        let found = problems(&config);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("journey.lapse.stage: the lapse stage must have the lowest"));
        assert!(found[1].starts_with("journey.entry_stage: the entry stage must be the lowest"));
    }

    #[test]
    fn signals_need_a_real_stage_actions_and_sane_bounds() {
        let mut config = Config::default();
        let signal = &mut config.journey.signals[0];
        signal.stage = "lapsed".into();
        signal.actions.clear();
        signal.min_value = Some(5.0);
        signal.max_value = Some(1.0);
        signal.within = Some(Duration::from_secs(60));
        assert_eq!(
            problems(&config),
            [
                "journey.signals[0].stage: entry signals cannot enter the lapse stage; list lapse \
                 actions in journey.lapse.actions",
                "journey.signals[0].actions: must list at least one action",
                "journey.signals[0].min_value: 5 is above max_value 1; nothing can match",
                "journey.signals[0].within: needs `count`, how many events within it",
            ]
        );
    }

    #[test]
    fn regress_moves_down_and_conversions_up_once() {
        let mut config = Config::default();
        config.journey.regress.push(RegressRule {
            action: "downgrade".into(),
            from: vec!["purchase".into(), "awareness".into()],
            to: "consideration".into(),
            channel: None,
            min_value: None,
            max_value: None,
        });
        let again = config.journey.conversions[1].clone();
        config.journey.conversions.push(again);
        config.journey.conversions.push(ConversionConfig {
            timeout: Duration::ZERO,
            ..config.journey.conversions[0].clone()
        });
        let found = problems(&config);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("journey.regress[0].from[1]: a regress rule moves down"));
        assert!(
            found[1]
                .starts_with("journey.conversions[4]: duplicate pair consideration -> purchase")
        );
        assert!(found[2].starts_with("journey.conversions[5].timeout: must be at least 1ms"));
        assert!(
            found[3]
                .starts_with("journey.conversions[5]: duplicate pair awareness -> consideration")
        );
    }

    #[test]
    fn score_actions_differ_and_scales_are_ordered() {
        let mut config = Config::default();
        config.journey.scores.csat_action = "nps_response".into();
        config.journey.scores.nps_promoter_min = 5;
        config.journey.scores.csat_satisfied_min = 0;
        config.journey.scores.ces_max = 200;
        assert_eq!(
            problems(&config),
            [
                "journey.scores.csat_action: \"nps_response\" is journey.scores.nps_action already",
                "journey.scores: need nps_detractor_max < nps_promoter_min <= nps_max, got 6 / 5 / 10",
                "journey.scores: need 1 <= csat_satisfied_min <= csat_max, got 0 / 5",
                "journey.scores.ces_max: must be at most 100, got 200",
            ]
        );
    }
}
