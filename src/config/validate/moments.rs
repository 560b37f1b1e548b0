//! Checks of the journey moments (`[[journey.moments]]`).

use std::collections::HashMap;
use std::time::Duration;

use super::Problems;
use crate::config::{MAX_MOMENTS, MomentConfig};

/// The longest moment name: it is a metric label and a field of every
/// moment output.
const MAX_NAME: usize = 32;

/// Checks every moment: a bounded number, named uniquely as a metric label
/// can be, with start and completion actions that differ, and a deadline
/// that ends before the customer can be evicted.
pub(super) fn check(moments: &[MomentConfig], state_ttl: Duration, problems: &mut Problems) {
    if moments.len() > MAX_MOMENTS {
        problems.add(
            "journey.moments",
            format_args!("at most {MAX_MOMENTS} moments, got {}", moments.len()),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, moment) in moments.iter().enumerate() {
        let key = format!("journey.moments[{i}]");
        name(&key, &moment.name, problems);
        if let Some(first) = names.insert(&moment.name, i) {
            names.insert(&moment.name, first);
            let why = format!(
                "duplicate moment \"{}\" (also journey.moments[{first}])",
                moment.name
            );
            problems.add(format_args!("{key}.name"), why);
        }
        problems.actions(format_args!("{key}.start"), &moment.start, true);
        problems.actions(format_args!("{key}.complete"), &moment.complete, true);
        if let Some(both) = moment.start.iter().find(|a| moment.complete.contains(a)) {
            let why = format!("\"{both}\" is also a start action; a moment's actions must differ");
            problems.add(format_args!("{key}.complete"), why);
        }
        problems.positive_duration(format_args!("{key}.within"), moment.within);
        if moment.within >= state_ttl {
            let why = format!(
                "must be below time.state_ttl (\"{}\"), got \"{}\"; a customer is not evicted \
                 with a moment open",
                humantime::format_duration(state_ttl),
                humantime::format_duration(moment.within)
            );
            problems.add(format_args!("{key}.within"), why);
        }
    }
}

fn name(key: &str, name: &str, problems: &mut Problems) {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        problems.add(
            format_args!("{key}.name"),
            format_args!(
                "must be 1 to {MAX_NAME} lowercase letters, digits or `_`, got \"{name}\""
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::validate::problems_of as problems;
    use crate::config::{Config, MAX_MOMENTS};

    #[test]
    fn the_default_moments_are_valid() {
        let config = Config::default();
        let names: Vec<&str> = config
            .journey
            .moments
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["cart", "checkout"]);
        assert_eq!(problems(&config), Vec::<String>::new());
    }

    #[test]
    fn bad_moments_are_reported_by_key() {
        let mut config = Config::default();
        let moments = &mut config.journey.moments;
        moments[1].name = "cart".into();
        moments[1].complete = vec!["checkout_started".into()];
        moments[0].name = "Cart!".into();
        moments[0].start.clear();
        moments[0].within = Duration::ZERO;
        let again = moments[1].clone();
        moments.push(again);
        moments[2].within = Duration::from_secs(400 * 86_400);
        assert_eq!(
            problems(&config),
            [
                "journey.moments[0].name: must be 1 to 32 lowercase letters, digits or `_`, got \
                 \"Cart!\"",
                "journey.moments[0].start: must list at least one action",
                "journey.moments[0].within: must be at least 1ms, got \"0s\"",
                "journey.moments[1].complete: \"checkout_started\" is also a start action; a \
                 moment's actions must differ",
                "journey.moments[2].name: duplicate moment \"cart\" (also journey.moments[1])",
                "journey.moments[2].complete: \"checkout_started\" is also a start action; a \
                 moment's actions must differ",
                "journey.moments[2].within: must be below time.state_ttl (\"1year 1month 4days \
                 7h 26m 24s\"), got \"1year 1month 4days 7h 26m 24s\"; a customer is not \
                 evicted with a moment open",
            ]
        );
    }

    #[test]
    fn the_number_of_moments_is_bounded() {
        let mut config = Config::default();
        let one = config.journey.moments[0].clone();
        config.journey.moments = (0..=MAX_MOMENTS)
            .map(|i| crate::config::MomentConfig {
                name: format!("m{i}"),
                ..one.clone()
            })
            .collect();
        assert_eq!(
            problems(&config),
            ["journey.moments: at most 16 moments, got 17"]
        );
    }
}
