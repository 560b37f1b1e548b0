//! Checks of the churn-risk model: parameters, signals and bands.

use std::collections::HashMap;

use super::Problems;
use crate::config::{BandConfig, ChurnConfig, ChurnSignalConfig};

/// Checks the whole `churn` section.
pub(super) fn check(churn: &ChurnConfig, problems: &mut Problems) {
    if let Some(params) = &churn.params {
        for (name, value) in [
            ("r", params.r),
            ("alpha", params.alpha),
            ("a", params.a),
            ("b", params.b),
        ] {
            problems.positive_number(format_args!("churn.params.{name}"), value);
        }
    }
    problems.positive_duration("churn.time_unit", churn.time_unit);
    problems.positive_duration("churn.signal_window", churn.signal_window);
    problems.actions("churn.purchase_actions", &churn.purchase_actions, true);
    problems.actions("churn.cancel_actions", &churn.cancel_actions, false);
    signals(&churn.signals, problems);
    bands(&churn.bands, problems);
}

fn signals(signals: &[ChurnSignalConfig], problems: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, signal) in signals.iter().enumerate() {
        let key = format!("churn.signals[{i}]");
        let name = signal.name.as_str();
        if name.trim().is_empty() {
            problems.add(format_args!("{key}.name"), "must not be empty");
        } else if let Some(first) = names.insert(name, i) {
            names.insert(name, first);
            let why = format!("duplicate signal name \"{name}\" (also churn.signals[{first}])");
            problems.add(format_args!("{key}.name"), why);
        }
        if signal.action.trim().is_empty() {
            problems.add(format_args!("{key}.action"), "must not be empty");
        }
        if !signal.weight.is_finite() {
            let why = format!("must be a finite number, got {}", signal.weight);
            problems.add(format_args!("{key}.weight"), why);
        }
        problems.value_bounds(&key, signal.min_value, signal.max_value);
    }
}

/// `0 < medium < high < 1` and `0 <= hysteresis < medium`.
fn bands(bands: &BandConfig, problems: &mut Problems) {
    let BandConfig {
        medium,
        high,
        hysteresis,
    } = *bands;
    let in_unit = |x: f64| x > 0.0 && x < 1.0;
    if !in_unit(medium) {
        problems.add(
            "churn.bands.medium",
            format_args!("must be above 0 and below 1, got {medium}"),
        );
    }
    if !in_unit(high) {
        problems.add(
            "churn.bands.high",
            format_args!("must be above 0 and below 1, got {high}"),
        );
    } else if in_unit(medium) && high <= medium {
        let why = format!("must be above churn.bands.medium ({medium}), got {high}");
        problems.add("churn.bands.high", why);
    }
    if !(hysteresis >= 0.0 && hysteresis < medium) {
        let why =
            format!("must be at least 0 and below churn.bands.medium ({medium}), got {hysteresis}");
        problems.add("churn.bands.hysteresis", why);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ChurnParams, Config};

    use crate::config::validate::problems_of as problems;

    #[test]
    fn params_must_be_positive_and_finite() {
        let mut config = Config::default();
        config.churn.params = Some(ChurnParams {
            r: 0.5,
            alpha: -1.0,
            a: f64::NAN,
            b: 1.0,
        });
        assert_eq!(
            problems(&config),
            [
                "churn.params.alpha: must be a finite number above 0, got -1",
                "churn.params.a: must be a finite number above 0, got NaN",
            ]
        );
    }

    #[test]
    fn bands_are_ordered_and_hysteresis_below_medium() {
        let mut config = Config::default();
        config.churn.bands.medium = 0.7;
        config.churn.bands.hysteresis = 0.8;
        assert_eq!(
            problems(&config),
            [
                "churn.bands.high: must be above churn.bands.medium (0.7), got 0.6",
                "churn.bands.hysteresis: must be at least 0 and below churn.bands.medium (0.7), got 0.8",
            ]
        );
    }

    #[test]
    fn signal_names_are_unique_and_weights_finite() {
        let mut config = Config::default();
        config.churn.signals[1].name = "support_ticket".into();
        config.churn.signals[2].weight = f64::INFINITY;
        config.churn.purchase_actions.clear();
        assert_eq!(
            problems(&config),
            [
                "churn.purchase_actions: must list at least one action",
                "churn.signals[1].name: duplicate signal name \"support_ticket\" (also churn.signals[0])",
                "churn.signals[2].weight: must be a finite number, got inf",
            ]
        );
    }
}
