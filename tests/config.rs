//! Configuration loading end to end: the shipped example file, environment
//! overrides, and the problems a user sees for a broken file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use journeyd::config::{Config, ConfigError, RegressRule};

const NO_ENV: [(String, String); 0] = [];

fn manifest_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The problems `text` (with `vars`) produces; fails if it loads.
fn problems(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match Config::from_toml_str(text, env(vars)) {
        Ok(config) => panic!("expected problems, loaded {config:?}"),
        Err(ConfigError { problems, .. }) => problems,
    }
}

fn assert_has(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p == expected),
        "missing problem {expected:?} in {problems:#?}"
    );
}

#[test]
fn the_example_file_is_the_default_plus_one_regress_rule() {
    let text = std::fs::read_to_string(manifest_file("journeyd.example.toml")).unwrap();
    let mut config = Config::from_toml_str(&text, NO_ENV).unwrap_or_else(|e| panic!("{e}"));
    let regress = std::mem::take(&mut config.journey.regress);
    assert_eq!(
        regress,
        [RegressRule {
            action: "subscription_downgraded".into(),
            from: vec!["retention".into(), "advocacy".into()],
            to: "purchase".into(),
            channel: None,
            min_value: None,
            max_value: None,
        }]
    );
    assert_eq!(config, Config::default());
}

#[test]
fn the_example_file_shows_every_key_of_the_defaults() {
    let example = std::fs::read_to_string(manifest_file("journeyd.example.toml")).unwrap();
    let example = toml::Value::Table(toml::from_str(&example).unwrap());
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let (mut shown, mut all) = (BTreeSet::new(), BTreeSet::new());
    collect_paths("", &example, &mut shown);
    collect_paths("", &defaults, &mut all);
    let missing: Vec<&String> = all.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "journeyd.example.toml lacks {missing:?}"
    );
}

/// Every key path, list entries as `[]`: `journey.signals[].stage`.
fn collect_paths(prefix: &str, value: &toml::Value, paths: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect_paths(&path, value, paths);
                paths.insert(path);
            }
        }
        toml::Value::Array(items) => {
            let path = format!("{prefix}[]");
            items
                .iter()
                .for_each(|item| collect_paths(&path, item, paths));
        }
        _ => {}
    }
}

#[test]
fn the_reference_documents_every_key_of_the_example() {
    let example = std::fs::read_to_string(manifest_file("journeyd.example.toml")).unwrap();
    let docs = std::fs::read_to_string(manifest_file("docs/configuration.md")).unwrap();
    let tree: toml::Table = toml::from_str(&example).unwrap();
    let mut keys = BTreeSet::new();
    collect_keys("", &toml::Value::Table(tree), &mut keys);
    // Optional keys the example leaves out or comments out.
    for key in [
        "churn.params",
        "`r`",
        "`alpha`",
        "`a`",
        "`b`",
        "`channel`",
        "`max_value`",
    ] {
        keys.insert(key.to_owned());
    }
    let missing: Vec<&String> = keys.iter().filter(|k| !docs.contains(k.as_str())).collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks {missing:?}"
    );
}

/// Tables (and lists of tables) by their dotted path, other keys by their
/// own name in backticks.
fn collect_keys(prefix: &str, value: &toml::Value, keys: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                let is_table = value.is_table() || value.get(0).is_some_and(toml::Value::is_table);
                keys.insert(if is_table {
                    path.clone()
                } else {
                    format!("`{key}`")
                });
                collect_keys(&path, value, keys);
            }
        }
        toml::Value::Array(items) => items
            .iter()
            .for_each(|item| collect_keys(prefix, item, keys)),
        _ => {}
    }
}

#[test]
fn no_text_means_the_defaults() {
    assert_eq!(Config::from_toml_str("", NO_ENV), Ok(Config::default()));
}

#[test]
fn env_overrides_a_duration_a_number_and_a_list() {
    let vars = [
        ("JOURNEYD__TIME__ALLOWED_LATENESS", "10s"),
        ("JOURNEYD__LIMITS__DEDUPE_PER_CUSTOMER", "16"),
        ("JOURNEYD__CHURN__BANDS__HIGH", "0.7"),
        (
            "JOURNEYD__JOURNEY__REVENUE_ACTIONS",
            r#"["purchase", "renewal"]"#,
        ),
        ("JOURNEYD_LOG", "debug"),
        ("PATH", "/usr/bin"),
    ];
    let config = Config::from_toml_str("[time]\nallowed_lateness = \"1m\"\n", env(&vars)).unwrap();
    assert_eq!(config.time.allowed_lateness, Duration::from_secs(10));
    assert_eq!(config.limits.dedupe_per_customer, 16);
    assert_eq!(config.churn.bands.high, 0.7);
    assert_eq!(config.journey.revenue_actions, ["purchase", "renewal"]);
}

#[test]
fn env_reaches_into_a_default_list() {
    let vars = [("JOURNEYD__JOURNEY__SIGNALS__2__COUNT", "4")];
    let config = Config::from_toml_str("", env(&vars)).unwrap();
    assert_eq!(config.journey.signals[2].count, Some(4));
    assert_eq!(config.journey.signals[2].actions, ["product_view"]);
}

#[test]
fn an_unknown_env_key_names_the_variable() {
    let found = problems(
        "",
        &[
            ("JOURNEYD__TIME__ALLOWED_LATENES", "10s"),
            ("JOURNEYD__TIMEZONE", "UTC"),
        ],
    );
    assert_eq!(
        found,
        [
            "time.allowed_latenes: unknown key (set by environment variable JOURNEYD__TIME__ALLOWED_LATENES)",
            "timezone: unknown key (set by environment variable JOURNEYD__TIMEZONE)",
        ]
    );
}

#[test]
fn a_bad_env_value_names_the_variable() {
    let found = problems("", &[("JOURNEYD__TIME__LAPSE_AFTER", "soon")]);
    assert_eq!(
        found,
        [concat!(
            "time.lapse_after: invalid duration \"soon\"; expected a number and a unit, ",
            "e.g. \"30s\", \"15m\", \"90d\" (set by environment variable JOURNEYD__TIME__LAPSE_AFTER)"
        )]
    );
}

#[test]
fn a_semantic_problem_names_the_variable_behind_it() {
    let found = problems("", &[("JOURNEYD__CHURN__BANDS__HIGH", "0.2")]);
    assert_eq!(
        found,
        [concat!(
            "churn.bands.high: must be above churn.bands.medium (0.3), got 0.2 ",
            "(set by environment variable JOURNEYD__CHURN__BANDS__HIGH)"
        )]
    );
}

const SIGNALS_WITH_TYPO: &str = r#"
extra = 1

[time]
allowed_latenes = "10s"

[[journey.signals]]
stage = "awareness"
actions = ["ad_click"]

[[journey.signals]]
stage = "consideration"
actions = ["pricing_view"]
colour = "red"

[[journey.signals]]
stage = "purchase"
actoins = ["purchase"]

[churn.bands]
mediun = 0.3

[limits]
bogus = true
"#;

#[test]
fn unknown_keys_are_all_reported_with_list_indices() {
    let found = problems(SIGNALS_WITH_TYPO, &[]);
    assert_eq!(
        found,
        [
            "churn.bands.mediun: unknown key",
            "extra: unknown key",
            "journey.signals[1].colour: unknown key",
            "journey.signals[2].actions: missing (this key is required)",
            "journey.signals[2].actoins: unknown key",
            "limits.bogus: unknown key",
            "time.allowed_latenes: unknown key",
        ]
    );
}

#[test]
fn type_errors_are_reported_together_with_unknown_keys() {
    let text = r#"
        [time]
        mode = "evnt"
        funnel_window = 60
        [limits]
        dedupe_per_customer = "eight"
        max_message_bytes = -1
        typo = 1
    "#;
    let found = problems(text, &[]);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert_has(
        &found,
        "limits.dedupe_per_customer: invalid type: string \"eight\", expected a whole number (0 or more)",
    );
    assert_has(
        &found,
        "limits.max_message_bytes: invalid value: integer `-1`, expected a whole number (0 or more)",
    );
    assert_has(&found, "limits.typo: unknown key");
    assert_has(
        &found,
        "time.mode: unknown variant `evnt`, expected `hybrid` or `event`",
    );
    assert_has(
        &found,
        "time.funnel_window: expected a duration string such as \"30s\" or \"90d\", found integer `60`",
    );
}

#[test]
fn every_missing_required_key_is_reported() {
    let found = problems("[churn.params]\nr = 0.5\nalpha = \"x\"\n", &[]);
    assert_eq!(
        found,
        [
            "churn.params.a: missing (this key is required)",
            "churn.params.alpha: invalid type: string \"x\", expected a number",
            "churn.params.b: missing (this key is required)",
        ]
    );
}

#[test]
fn a_wrong_type_inside_a_list_entry_names_the_entry() {
    let text = "[[journey.conversions]]\nfrom = \"awareness\"\nto = \"purchase\"\ntimeout = 7\n";
    let found = problems(text, &[]);
    assert_eq!(
        found,
        [
            "journey.conversions[0].timeout: expected a duration string such as \"30s\" or \"90d\", found integer `7`"
        ]
    );
}

#[test]
fn an_unknown_stage_in_a_rule_lists_the_known_stages() {
    let text = r#"
        [[journey.signals]]
        stage = "awareness"
        actions = ["ad_click"]
        [[journey.signals]]
        stage = "purchse"
        actions = ["purchase"]
        [[journey.regress]]
        action = "subscription_downgraded"
        from = ["retention", "advocacy"]
        to = "purchse"
    "#;
    let known = "(known: lapsed, awareness, consideration, purchase, retention, advocacy)";
    assert_eq!(
        problems(text, &[]),
        [
            format!("journey.signals[1].stage: unknown stage \"purchse\" {known}"),
            format!("journey.regress[0].to: unknown stage \"purchse\" {known}"),
        ]
    );
}

#[test]
fn a_negative_duration_is_named() {
    let found = problems("[time]\nallowed_lateness = \"-5s\"\n", &[]);
    assert_eq!(
        found,
        [
            "time.allowed_lateness: negative duration \"-5s\"; durations are zero or more, e.g. \"30s\""
        ]
    );
}

#[test]
fn count_needs_within() {
    let text =
        "[[journey.signals]]\nstage = \"consideration\"\nactions = [\"product_view\"]\ncount = 3\n";
    assert_eq!(
        problems(text, &[]),
        ["journey.signals[0].count: needs `within`, the window to count in"]
    );
}

#[test]
fn every_problem_is_listed_together() {
    let text = r#"
        [time]
        lapse_after = "30d"
        state_ttl = "7d"
        [journey]
        entry_stage = "awarenes"
        stages = [
          { name = "lapsed", ordinal = 0 },
          { name = "awareness", ordinal = 1 },
          { name = "awareness", ordinal = 1 },
        ]
        signals = []
        conversions = [
          { from = "awareness", to = "lapsed", timeout = "1d" },
        ]
        [[journey.regress]]
        action = "downgrade"
        from = []
        to = "awareness"
        channel = "fax"
        [churn.bands]
        medium = 0.6
        high = 0.3
        [limits]
        dedupe_per_customer = 0
        unknown = 1
    "#;
    let error = Config::from_toml_str(text, NO_ENV).unwrap_err();
    let known = "(known: lapsed, awareness)";
    assert_eq!(
        error.problems,
        [
            "limits.unknown: unknown key".to_owned(),
            "time.state_ttl: must be at least time.lapse_after (\"30days\"), got \"7days\"; \
             a customer must lapse before being evicted"
                .to_owned(),
            "journey.stages[2].name: duplicate stage \"awareness\" (also journey.stages[1])".to_owned(),
            "journey.stages[2].ordinal: duplicate ordinal 1 (also journey.stages[1])".to_owned(),
            format!("journey.entry_stage: unknown stage \"awarenes\" {known}"),
            "journey.regress[0].from: must list at least one stage".to_owned(),
            "journey.regress[0].channel: unknown channel \"fax\" (known: web, app, email, social, \
             search, ads, store, phone, chat, support, referral, review, other)"
                .to_owned(),
            "journey.conversions[0].to: must be a stage above `from` \"awareness\" (1), got \"lapsed\" (0)"
                .to_owned(),
            "churn.bands.high: must be above churn.bands.medium (0.6), got 0.3".to_owned(),
            "limits.dedupe_per_customer: must be 1 to 64, got 0".to_owned(),
        ]
    );
    assert!(
        error
            .to_string()
            .starts_with("invalid configuration (10 problems)\n  - limits.unknown")
    );
}

#[test]
fn a_syntax_error_is_one_problem_with_its_position() {
    let found = problems("[time]\nallowed_lateness = 30s\n", &[]);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("TOML syntax error: TOML parse error at line 2"),
        "{found:?}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journeyd.toml");
    std::fs::write(&path, "[limits]\nmax_buffered_events = 0\n").unwrap();
    let error = Config::load(Some(&path)).unwrap_err();
    assert_eq!(error.file.as_deref(), Some(path.as_path()));
    assert_eq!(
        error.problems,
        ["limits.max_buffered_events: must be at least 1, got 0"]
    );
    let missing = Config::load(Some(&dir.path().join("absent.toml"))).unwrap_err();
    assert!(
        missing.problems[0].starts_with("cannot read the file: "),
        "{missing}"
    );
}
