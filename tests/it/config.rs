//! Configuration loading end to end: the shipped example file, environment
//! overrides, and the problems a user sees for a broken file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use journeyd::config::{
    Config, ConfigError, InputConfig, InputEncoding, OutputFormat, OutputSchemaIds, RegressRule,
};

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
        "`group_instance_id`",
        "`url`",
        "`schemas_dir`",
        "schema_registry.output_schema_ids",
        "`audit_schema_id`",
        "`evicted_schema_id`",
        "`auth_token`",
        "`advertised_url`",
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

const SERVICE: &str = r#"
[kafka]
brokers = "kafka-1:9093,kafka-2:9093"
group_id = "journeys-prod"
client_id = "journeyd-eu"
group_instance_id = "journeyd-0"
poll_timeout = "250ms"

[kafka.properties]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"

[kafka.consumer_properties]
"session.timeout.ms" = 45000

[kafka.producer_properties]
"enable.idempotence" = true

[[inputs]]
topic = "web-events"

[[inputs]]
topic = "app-events"
encoding = "confluent"

[outputs]
format = "avro"
funnel = "analytics.funnel"

[schema_registry]
schemas_dir = "/etc/journeyd/schemas"
timeout = "2s"
audit_schema_id = 104

[schema_registry.output_schema_ids]
stage_changes = 101
churn_risk = 102
funnel = 103
moments = 105

[http]
listen = "[::]:9000"

[runtime]
commit_interval = "500ms"
shutdown_timeout = "1m"
max_in_flight = 5000
exactly_once = true
changelog_topic = "journeys-prod.changelog"
"#;

#[test]
fn the_service_sections_parse() {
    let config = Config::from_toml_str(SERVICE, NO_ENV).unwrap_or_else(|e| panic!("{e}"));
    let kafka = &config.kafka;
    assert_eq!(kafka.brokers, "kafka-1:9093,kafka-2:9093");
    assert_eq!(kafka.group_id, "journeys-prod");
    assert_eq!(kafka.client_id, "journeyd-eu");
    assert_eq!(kafka.group_instance_id.as_deref(), Some("journeyd-0"));
    assert_eq!(kafka.poll_timeout, Duration::from_millis(250));
    let properties: Vec<(&str, &str)> = kafka.properties.iter().collect();
    assert_eq!(
        properties,
        [
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("security.protocol", "SASL_SSL")
        ]
    );
    assert_eq!(
        kafka.consumer_properties.get("session.timeout.ms"),
        Some("45000")
    );
    assert_eq!(
        kafka.producer_properties.get("enable.idempotence"),
        Some("true")
    );
    assert_eq!(
        config.inputs,
        [
            InputConfig {
                topic: "web-events".into(),
                encoding: InputEncoding::Json,
            },
            InputConfig {
                topic: "app-events".into(),
                encoding: InputEncoding::Confluent,
            },
        ]
    );
    assert_eq!(config.outputs.format, OutputFormat::Avro);
    assert_eq!(config.outputs.funnel, "analytics.funnel");
    assert_eq!(config.outputs.stage_changes, "journey.stage-changes");
    let registry = &config.schema_registry;
    assert_eq!(registry.url, None);
    assert_eq!(
        registry.schemas_dir.as_deref(),
        Some(Path::new("/etc/journeyd/schemas"))
    );
    assert_eq!(
        registry.output_schema_ids,
        Some(OutputSchemaIds {
            stage_changes: 101,
            churn_risk: 102,
            funnel: 103,
            moments: 105,
        })
    );
    assert_eq!(registry.audit_schema_id, Some(104));
    assert_eq!(registry.timeout, Duration::from_secs(2));
    assert_eq!(config.http.listen.to_string(), "[::]:9000");
    assert_eq!(config.http.auth_token, None);
    let runtime = &config.runtime;
    assert_eq!(runtime.commit_interval, Duration::from_millis(500));
    assert_eq!(runtime.shutdown_timeout, Duration::from_secs(60));
    assert_eq!(runtime.metrics_interval, Duration::from_millis(100));
    assert_eq!(runtime.max_in_flight, 5000);
    assert!(runtime.exactly_once);
    assert_eq!(runtime.changelog_topic, "journeys-prod.changelog");
}

#[test]
fn env_overrides_the_service_sections() {
    let vars = [
        ("JOURNEYD__KAFKA__BROKERS", "host:9092"),
        ("JOURNEYD__KAFKA__GROUP_INSTANCE_ID", "journeyd-7"),
        ("JOURNEYD__KAFKA__PROPERTIES__SASL.PASSWORD", "1e5"),
        ("JOURNEYD__KAFKA__PRODUCER_PROPERTIES__LINGER.MS", "20"),
        ("JOURNEYD__HTTP__AUTH_TOKEN", "0x1F"),
        ("JOURNEYD__HTTP__LISTEN", "127.0.0.1:8080"),
        ("JOURNEYD__INPUTS__0__ENCODING", "avro"),
        ("JOURNEYD__OUTPUTS__FORMAT", "avro"),
        ("JOURNEYD__SCHEMA_REGISTRY__URL", "http://registry:8081"),
        ("JOURNEYD__RUNTIME__EXACTLY_ONCE", "true"),
        ("JOURNEYD__RUNTIME__MAX_IN_FLIGHT", "10"),
    ];
    let config = Config::from_toml_str("[kafka]\nbrokers = \"file:9092\"\n", env(&vars))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.kafka.brokers, "host:9092");
    assert_eq!(
        config.kafka.group_instance_id.as_deref(),
        Some("journeyd-7")
    );
    // Verbatim: neither becomes a number.
    assert_eq!(config.kafka.properties.get("sasl.password"), Some("1e5"));
    let token = config.http.auth_token.as_ref().map(|t| t.expose());
    assert_eq!(token, Some("0x1F"));
    assert_eq!(
        config.kafka.producer_properties.get("linger.ms"),
        Some("20")
    );
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.inputs[0].encoding, InputEncoding::Avro);
    assert_eq!(config.outputs.format, OutputFormat::Avro);
    assert_eq!(
        config.schema_registry.url.as_deref(),
        Some("http://registry:8081")
    );
    assert!(config.runtime.exactly_once);
    assert_eq!(config.runtime.max_in_flight, 10);
}

#[test]
fn env_can_replace_a_property_table_and_add_to_it() {
    let text =
        "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"/ca.pem\"\n";
    let vars = [
        (
            "JOURNEYD__KAFKA__PROPERTIES",
            r#"{ "security.protocol" = "SASL_SSL", "sasl.mechanism" = "PLAIN" }"#,
        ),
        ("JOURNEYD__KAFKA__PROPERTIES__SASL.PASSWORD", "pw"),
    ];
    let config = Config::from_toml_str(text, env(&vars)).unwrap_or_else(|e| panic!("{e}"));
    let properties: Vec<(&str, &str)> = config.kafka.properties.iter().collect();
    assert_eq!(
        properties,
        [
            ("sasl.mechanism", "PLAIN"),
            ("sasl.password", "pw"),
            ("security.protocol", "SASL_SSL"),
        ]
    );
}

#[test]
fn a_list_of_inputs_replaces_the_default_input() {
    let text = "[[inputs]]\ntopic = \"clicks\"\nencoding = \"avro\"\n";
    let config = Config::from_toml_str(text, NO_ENV).unwrap();
    assert_eq!(
        config.inputs,
        [InputConfig {
            topic: "clicks".into(),
            encoding: InputEncoding::Avro,
        }]
    );
}

#[test]
fn service_type_errors_name_their_keys() {
    let text = r#"
        [kafka]
        poll_timeout = 100
        [kafka.properties]
        "linger.ms" = [5]
        [[inputs]]
        topic = "a"
        encoding = "protobuf"
        [[inputs]]
        encoding = "json"
        [outputs]
        format = "xml"
        [schema_registry.output_schema_ids]
        stage_changes = 1
        funnel = 3
        [http]
        listen = "localhost:9464"
        auth_token = 123456789
        [runtime]
        exactly_once = "yes"
    "#;
    let found = problems(text, &[]);
    assert_eq!(
        found,
        [
            "http.auth_token: invalid type: integer, expected a string",
            "http.listen: invalid address \"localhost:9464\"; expected an IP address and a port, \
             e.g. \"0.0.0.0:9464\" or \"[::]:9464\" (not a host name)",
            "inputs[0].encoding: unknown variant `protobuf`, expected one of `json`, `avro`, \
             `confluent`",
            "inputs[1].topic: missing (this key is required)",
            "kafka.poll_timeout: expected a duration string such as \"30s\" or \"90d\", found \
             integer `100`",
            "kafka.properties.\"linger.ms\": invalid type: sequence, expected a string, number \
             or boolean",
            "outputs.format: unknown variant `xml`, expected `json` or `avro`",
            "runtime.exactly_once: invalid type: string \"yes\", expected true or false",
            "schema_registry.output_schema_ids.churn_risk: missing (this key is required)",
            "schema_registry.output_schema_ids.moments: missing (this key is required)",
        ]
    );
}

#[test]
fn service_problems_are_listed_together() {
    let text = r#"
        [kafka]
        brokers = ""
        client_id = ""
        [kafka.properties]
        "group.id" = "other"
        [[inputs]]
        topic = "touchpoints"
        [[inputs]]
        topic = "app events"
        encoding = "confluent"
        [[inputs]]
        topic = "touchpoints"
        [outputs]
        format = "avro"
        dlq = "journey.audit"
        [schema_registry]
        url = "registry:8081"
        timeout = "0s"
        [http]
        auth_token = ""
        [runtime]
        metrics_interval = "0s"
        max_in_flight = 0
        changelog_topic = "touchpoints"
    "#;
    let found = problems(
        text,
        &[(
            "JOURNEYD__KAFKA__CONSUMER_PROPERTIES__ENABLE.AUTO.COMMIT",
            "true",
        )],
    );
    assert_eq!(
        found,
        [
            "kafka.brokers: must name at least one broker, e.g. \"kafka-1:9092,kafka-2:9092\"",
            "kafka.client_id: must not be empty",
            "kafka.properties.\"group.id\": cannot be set here: set kafka.group_id instead",
            "kafka.consumer_properties.\"enable.auto.commit\": cannot be set here: journeyd \
             commits an offset only after every output it caused is acknowledged (set by \
             environment variable JOURNEYD__KAFKA__CONSUMER_PROPERTIES__ENABLE.AUTO.COMMIT)",
            "inputs[1].topic: invalid character ' ' in topic \"app events\"; topic names use \
             only ASCII letters, digits, '.', '_' and '-'",
            "inputs[2].topic: topic \"touchpoints\" is already used by inputs[0].topic",
            "outputs.audit: topic \"journey.audit\" is already used by outputs.dlq",
            "runtime.changelog_topic: topic \"touchpoints\" is already used by inputs[0].topic",
            "schema_registry.url: must be an http:// or https:// URL with a host, e.g. \
             \"http://registry:8081\"",
            "schema_registry.timeout: must be at least 1ms, got \"0s\"",
            "http.auth_token: must not be empty; leave it out to leave /customers open",
            "runtime.metrics_interval: must be at least 1ms, got \"0s\"",
            "runtime.max_in_flight: must be at least 1, got 0",
        ]
    );
}

#[test]
fn avro_without_a_schema_source_names_the_keys() {
    let text =
        "[[inputs]]\ntopic = \"app\"\nencoding = \"confluent\"\n[outputs]\nformat = \"avro\"\n";
    assert_eq!(
        problems(text, &[]),
        [
            "schema_registry.url: required because inputs[0].encoding = \"confluent\": set \
             schema_registry.url, or schema_registry.schemas_dir to a directory of writer \
             schemas named <id>.avsc",
            "schema_registry.url: required because outputs.format = \"avro\": set \
             schema_registry.url, or schema_registry.output_schema_ids to the schema ids to write",
        ]
    );
    let with_registry = format!("{text}[schema_registry]\nurl = \"https://registry:8081\"\n");
    assert!(Config::from_toml_str(&with_registry, NO_ENV).is_ok());
}

const SECRETS: [&str; 5] = [
    "sasl-hunter2",
    "key-pass-9f8e",
    "oauth-s3cret",
    "bearer-t0ken",
    "registry-pw",
];

#[test]
fn secrets_never_show_in_debug_serialized_or_error_output() {
    let text = r#"
        [kafka.properties]
        "security.protocol" = "SASL_SSL"
        "ssl.key.password" = "key-pass-9f8e"
        [kafka.producer_properties]
        "sasl.oauthbearer.client.secret" = "oauth-s3cret"
        [schema_registry]
        url = "https://journeyd:registry-pw@registry.example.com"
    "#;
    let vars = [
        ("JOURNEYD__KAFKA__PROPERTIES__SASL.PASSWORD", "sasl-hunter2"),
        ("JOURNEYD__HTTP__AUTH_TOKEN", "bearer-t0ken"),
    ];
    let config = Config::from_toml_str(text, env(&vars)).unwrap_or_else(|e| panic!("{e}"));
    // The values are there for the clients...
    assert_eq!(
        config.kafka.properties.get("sasl.password"),
        Some("sasl-hunter2")
    );
    assert_eq!(
        config.http.auth_token.as_ref().map(|t| t.expose()),
        Some("bearer-t0ken")
    );
    // ...and nowhere else.
    let shown = [
        format!("{config:?}"),
        format!("{config:#?}"),
        toml::to_string(&config).unwrap(),
    ];
    for text in &shown {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
    assert!(
        shown[0].contains("\"security.protocol\": \"SASL_SSL\""),
        "{}",
        shown[0]
    );
    assert!(shown[0].contains("<redacted>"), "{}", shown[0]);

    // A configuration that fails to load does not quote them either.
    let broken = format!(
        "{text}[http]\nauth_token = 12345678\n[kafka]\nbrokers = \"\"\n\"ssl.key.pem\" = 1\n"
    );
    let error = Config::from_toml_str(&broken, env(&vars[..1])).unwrap_err();
    let message = error.to_string();
    for secret in SECRETS.iter().chain(&["12345678"]) {
        assert!(!message.contains(secret), "{secret} shown in {message}");
    }
}

#[test]
fn event_time_mode_loads_for_replays_but_run_refuses_it_naming_the_key() {
    let config = Config::from_toml_str("[time]\nmode = \"event\"\n", NO_ENV).expect("loads");
    let error = config.validate_for_run().unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    let problem = &error.problems[0];
    assert!(
        problem.starts_with("time.mode: \"event\" is for replays"),
        "{problem}"
    );
    assert!(problem.contains("\"hybrid\""), "{problem}");
    assert_eq!(Config::default().validate_for_run(), Ok(()));
}

#[test]
fn journeyd_run_refuses_event_time_mode_before_touching_the_network() {
    // Nothing listens on port 9; refusing takes no time, trying would.
    let text = "[time]\nmode = \"event\"\n\n[kafka]\nbrokers = \"127.0.0.1:9\"\n\n\
                [http]\nlisten = \"127.0.0.1:0\"\n";
    let config = Config::from_toml_str(text, NO_ENV).expect("loads");
    let started = journeyd::clock::Stopwatch::start();
    let error = match journeyd::runtime::Service::start(config) {
        Ok(service) => {
            let _ = service.stop();
            panic!("journeyd run started in event-time mode");
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("time.mode: \"event\" is for replays"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_bad_consent_mode_is_a_start_up_error_naming_the_key() {
    let found = problems("[consent]\nmode = \"opt-in\"\n", &[]);
    assert_eq!(
        found,
        ["consent.mode: unknown variant `opt-in`, expected one of `off`, `opt_out`, `opt_in`"]
    );
}

#[test]
fn consent_names_must_be_carryable_and_the_actions_distinct() {
    let text = r#"
        [consent]
        mode = "opt_in"
        purpose = ""
        granted_action = "consent"
        withdrawn_action = "consent"
        [limits]
        max_attribute_key_length = 4
    "#;
    let found = problems(text, &[]);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_has(&found, "consent.purpose: must not be empty");
    assert_has(
        &found,
        "consent.purpose_attribute: 7 bytes, longer than a touchpoint may carry (4)",
    );
    assert_has(
        &found,
        "consent.withdrawn_action: \"consent\" is also consent.granted_action; the two must differ",
    );
    let ok = "[consent]\nmode = \"opt_out\"\npurpose = \"marketing\"\n";
    let config = Config::from_toml_str(ok, env(&[])).unwrap();
    assert_eq!(config.consent.mode, journeyd::config::ConsentMode::OptOut);
}
