//! How long the changelog keeps what it no longer needs: a customer's
//! superseded states and, after an erasure, their last state and then
//! their tombstone (which still holds the customer id as its key).
//!
//! Compaction removes a value once a newer record of its key is in a
//! cleanable segment. The active segment is never cleaned; for a compacted
//! topic Kafka rolls it, at the next write, once its first record is older
//! than `min(segment.ms, max.compaction.lag.ms)`, and the cleaner takes up
//! a log whose oldest dirty record is older than `max.compaction.lag.ms`.
//! So with a compaction lag L and a tombstone retention D, a value is
//! removed within L of the record that superseded it, and a tombstone
//! within D after that, at the next cleaning, itself within one more L:
//! 2L + D in all ([`RuntimeConfig::erasure_bound`]; 5 days by default).
//! One condition: a partition journeyd no longer writes to keeps its
//! active segment until its next write (Kafka's rule, above).
//!
//! journeyd creates the changelog with these settings. An existing
//! changelog is described at start-up, and a warning names each setting
//! that breaks the bound (or the cleanup policy, when it is not compact).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

use super::ADMIN_TIMEOUT;
use crate::config::{RuntimeConfig, erasure_bound};

/// The topic settings journeyd creates the changelog with.
pub fn changelog_settings(runtime: &RuntimeConfig) -> [(&'static str, String); 5] {
    let ms = |d: Duration| d.as_millis().to_string();
    let lag = ms(runtime.changelog_max_compaction_lag);
    [
        ("cleanup.policy", "compact".to_owned()),
        (
            "min.compaction.lag.ms",
            ms(runtime.changelog_min_compaction_lag),
        ),
        ("max.compaction.lag.ms", lag.clone()),
        ("segment.ms", lag),
        (
            "delete.retention.ms",
            ms(runtime.changelog_delete_retention),
        ),
    ]
}

/// What is wrong with an existing changelog's settings, as found by
/// `setting` (a topic's effective value, `None` when not described): one
/// message per problem, empty when none.
pub fn problems(runtime: &RuntimeConfig, setting: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(policy) =
        setting("cleanup.policy").filter(|p| !p.split(',').any(|p| p.trim() == "compact"))
    {
        found.push(format!(
            "its cleanup.policy is \"{policy}\", not compact: its retention deletes customer \
             state, and restores then start those customers afresh; set cleanup.policy=compact"
        ));
    }
    let ms = |key| {
        let value = setting(key)?.trim().parse::<i64>().ok()?;
        Some(Duration::from_millis(u64::try_from(value).unwrap_or(0)))
    };
    let (Some(lag), Some(retention)) = (ms("max.compaction.lag.ms"), ms("delete.retention.ms"))
    else {
        return found;
    };
    let bound = runtime.erasure_bound();
    let held = erasure_bound(lag, retention);
    if held > bound {
        let shown = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        found.push(format!(
            "with max.compaction.lag.ms={} and delete.retention.ms={} it keeps erased and \
             superseded customer state up to {} (2 x lag + retention), beyond the {} of \
             runtime.changelog_max_compaction_lag and runtime.changelog_delete_retention; \
             set max.compaction.lag.ms={} and delete.retention.ms={} on the topic",
            lag.as_millis(),
            retention.as_millis(),
            shown(held),
            shown(bound),
            runtime.changelog_max_compaction_lag.as_millis(),
            runtime.changelog_delete_retention.as_millis(),
        ));
    }
    found
}

/// Describes the existing changelog `topic` and logs a warning for each of
/// its [`problems`]; brokers that do not describe configurations are
/// trusted.
pub async fn warn_about_changelog(
    admin: AdminClient<DefaultClientContext>,
    topic: String,
    runtime: RuntimeConfig,
) {
    let topic = topic.as_str();
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await;
    let resource = match described.as_ref().map(|r| r.first()) {
        Ok(Some(Ok(resource))) => resource,
        Ok(_) => return,
        Err(error) => {
            tracing::debug!(%error, topic, "Cannot describe the changelog topic's configuration.");
            return;
        }
    };
    let setting = |key: &str| resource.get(key).and_then(|e| e.value.clone());
    for problem in problems(&runtime, setting) {
        tracing::warn!(topic, "The changelog topic: {problem}.");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn described(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = (pairs.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn a_changelog_created_by_journeyd_keeps_its_bound() {
        let runtime = RuntimeConfig::default();
        let settings = changelog_settings(&runtime);
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("cleanup.policy", "compact"),
                ("min.compaction.lag.ms", "0"),
                ("max.compaction.lag.ms", "172800000"),
                ("segment.ms", "172800000"),
                ("delete.retention.ms", "86400000"),
            ]
        );
        assert_eq!(problems(&runtime, described(&pairs)), Vec::<String>::new());
    }

    #[test]
    fn broker_defaults_break_the_bound_and_the_warning_names_the_settings() {
        let runtime = RuntimeConfig::default();
        // Kafka's defaults: no compaction lag bound, tombstones kept a day.
        let found = problems(
            &runtime,
            described(&[
                ("cleanup.policy", "compact"),
                ("max.compaction.lag.ms", "9223372036854775807"),
                ("delete.retention.ms", "86400000"),
            ]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("with max.compaction.lag.ms=9223372036854775807 and "),
            "{}",
            found[0]
        );
        assert!(
            found[0].ends_with(
                "set max.compaction.lag.ms=172800000 and delete.retention.ms=86400000 on the topic"
            ),
            "{}",
            found[0]
        );
        let longer = problems(
            &runtime,
            described(&[
                ("cleanup.policy", "delete"),
                ("max.compaction.lag.ms", "172800000"),
                ("delete.retention.ms", "259200000"),
            ]),
        );
        assert_eq!(longer.len(), 2, "{longer:?}");
        assert!(longer[0].contains("not compact"));
        assert!(longer[1].contains("up to 7days"), "{}", longer[1]);
    }

    #[test]
    fn settings_not_described_are_trusted() {
        let runtime = RuntimeConfig::default();
        assert_eq!(problems(&runtime, described(&[])), Vec::<String>::new());
        let shorter = described(&[
            ("cleanup.policy", "compact,delete"),
            ("max.compaction.lag.ms", "3600000"),
            ("delete.retention.ms", "0"),
        ]);
        assert_eq!(problems(&runtime, shorter), Vec::<String>::new());
    }
}
