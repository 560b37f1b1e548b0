//! Secrets never appear in logs or in `/metrics` (docs/operations.md#kafka-security): the real
//! `journeyd run` binary, logging at DEBUG with librdkafka's own debug
//! output on, runs with a SASL password, a TLS key password and an HTTP
//! token set to sentinel values, and none of them shows up in its log (which
//! includes the configuration it loaded), in `/metrics`, or in the
//! configuration's `Debug` and serialized forms.

use crate::common;

use std::time::Duration;

use journeyd::clock::wall_now;
use journeyd::config::Config;
use rdkafka::producer::{BaseRecord, Producer};

use common::service::{
    INPUT, Journeyd, Launch, http_request, mock_cluster, producer, touchpoint, wait_for,
};

const SASL_PASSWORD: &str = "sentinel-sasl-7f3a9c";
const KEY_PASSWORD: &str = "sentinel-key-2b8e41";
const HTTP_TOKEN: &str = "sentinel-token-c05d96";
const SENTINELS: [&str; 3] = [SASL_PASSWORD, KEY_PASSWORD, HTTP_TOKEN];

fn assert_clean(what: &str, text: &str) {
    for sentinel in SENTINELS {
        if let Some(at) = text.find(sentinel) {
            let start = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            panic!(
                "{what} shows a secret: ...{}",
                &text[start..at + sentinel.len()]
            );
        }
    }
}

#[test]
fn secrets_stay_out_of_the_log_metrics_and_configuration_dumps() {
    let cluster = mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("journeyd.log");
    // The mock cluster speaks plaintext only: librdkafka ignores the SASL
    // and TLS credentials then, but still takes and (with debug = "conf")
    // prints its configuration.
    let kafka = format!(
        r#"
[kafka.properties]
"sasl.username" = "journeyd"
"sasl.password" = "{SASL_PASSWORD}"
"ssl.key.password" = "{KEY_PASSWORD}"
"debug" = "all"
"#
    );
    let http = format!("auth_token = \"{HTTP_TOKEN}\"");
    let extra =
        "[time]\nmode = \"hybrid\"\nallowed_lateness = \"100ms\"\nidle_timeout = \"500ms\"\n";
    let mut journeyd = Journeyd::launch(
        dir.path(),
        &brokers,
        Launch {
            extra,
            kafka_tables: &kafka,
            http: &http,
            log_level: "debug",
            log_file: Some(&log),
        },
    );
    journeyd.wait_ready(Duration::from_secs(60));
    let value = touchpoint("e1", "ann", wall_now().millis(), "ad_click");
    let producer = producer(&brokers);
    producer
        .send(BaseRecord::to(INPUT).key("ann").payload(&value))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    wait_for(Duration::from_secs(60), "ann to be looked up", || {
        let answer = http_request(journeyd.http(), "GET", "/customers/ann", Some(HTTP_TOKEN));
        matches!(answer, Ok((200, _))).then_some(())
    });
    let (status, body) =
        http_request(journeyd.http(), "GET", "/customers/ann", Some("wrong")).unwrap();
    assert_eq!(status, 401);
    assert_clean("a 401 answer", &body);
    let metrics = journeyd.metrics().expect("/metrics answers");
    assert_clean("/metrics", &metrics);
    assert!(journeyd.stop(Duration::from_secs(30)).success());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("Configuration loaded."),
        "the configuration is logged at DEBUG"
    );
    assert!(
        text.contains("librdkafka") && text.contains("sasl.password"),
        "librdkafka's debug output, with its configuration, is forwarded"
    );
    assert_clean("the log", &text);

    let config = Config::load(Some(&dir.path().join("journeyd.toml"))).unwrap();
    assert_clean("Debug of the configuration", &format!("{config:?}"));
    assert_clean(
        "the serialized configuration",
        &toml::to_string(&config).unwrap(),
    );
    assert_eq!(
        config.kafka.properties.get("sasl.password"),
        Some(SASL_PASSWORD),
        "the secret itself is kept, for librdkafka"
    );
}
