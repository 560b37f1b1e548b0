//! Checks of the HTTP endpoint (`[http]`) and the runtime (`[runtime]`).
//! The runtime's changelog topic is checked with the other topics.

use super::Problems;
use crate::config::{HttpConfig, RuntimeConfig, advertised_url_problem};

/// Checks the `http` section. The token is never quoted.
pub(super) fn http(http: &HttpConfig, problems: &mut Problems) {
    problems.positive_duration("http.header_read_timeout", http.header_read_timeout);
    problems.positive_duration("http.request_timeout", http.request_timeout);
    if http.max_connections < 1 {
        problems.add("http.max_connections", "must be at least 1, got 0");
    }
    if let Some(problem) = http
        .advertised_url
        .as_deref()
        .and_then(advertised_url_problem)
    {
        problems.add("http.advertised_url", problem);
    }
    let Some(token) = &http.auth_token else {
        return;
    };
    let token = token.expose();
    if token.is_empty() {
        problems.add(
            "http.auth_token",
            "must not be empty; leave it out to leave /customers open",
        );
    } else if !token.chars().all(|c| c.is_ascii_graphic()) {
        problems.add(
            "http.auth_token",
            "must be printable ASCII without spaces or line breaks, as clients send it in an \
             Authorization header (a token read from a file often ends in a newline)",
        );
    }
}

/// Checks the `runtime` section.
pub(super) fn runtime(runtime: &RuntimeConfig, problems: &mut Problems) {
    problems.positive_duration("runtime.commit_interval", runtime.commit_interval);
    problems.positive_duration("runtime.shutdown_timeout", runtime.shutdown_timeout);
    problems.positive_duration("runtime.metrics_interval", runtime.metrics_interval);
    if runtime.max_in_flight < 1 {
        problems.add("runtime.max_in_flight", "must be at least 1, got 0");
    }
    problems.positive_duration(
        "runtime.changelog_max_compaction_lag",
        runtime.changelog_max_compaction_lag,
    );
    if runtime.changelog_min_compaction_lag > runtime.changelog_max_compaction_lag {
        let shown = |d| humantime::format_duration(d).to_string();
        problems.add(
            "runtime.changelog_min_compaction_lag",
            format_args!(
                "must not exceed runtime.changelog_max_compaction_lag (\"{}\"), got \"{}\"",
                shown(runtime.changelog_max_compaction_lag),
                shown(runtime.changelog_min_compaction_lag)
            ),
        );
    }
    if runtime
        .transactional_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        problems.add(
            "runtime.transactional_id",
            "must not be empty; leave it out for the default",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, Secret};

    use crate::config::validate::problems_of as problems;

    #[test]
    fn the_token_is_usable_in_a_header_and_never_quoted() {
        let mut config = Config::default();
        config.http.auth_token = Some(Secret::new("s3cret\n"));
        let found = problems(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("http.auth_token: must be printable ASCII"));
        assert!(!found[0].contains("s3cret"));
        config.http.auth_token = Some(Secret::new(""));
        assert_eq!(
            problems(&config),
            ["http.auth_token: must not be empty; leave it out to leave /customers open"]
        );
        config.http.auth_token = Some(Secret::new("s3cret"));
        assert_eq!(problems(&config), Vec::<String>::new());
    }

    #[test]
    fn http_timeouts_and_connections_are_positive() {
        let mut config = Config::default();
        config.http.header_read_timeout = Duration::ZERO;
        config.http.request_timeout = Duration::ZERO;
        config.http.max_connections = 0;
        assert_eq!(
            problems(&config),
            [
                "http.header_read_timeout: must be at least 1ms, got \"0s\"",
                "http.request_timeout: must be at least 1ms, got \"0s\"",
                "http.max_connections: must be at least 1, got 0",
            ]
        );
    }

    #[test]
    fn the_advertised_url_is_a_scheme_and_an_authority() {
        let mut config = Config::default();
        for good in [
            "http://10.0.0.5:9464",
            "https://journeyd-0.journeyd:443/",
            "http://[::1]:80",
        ] {
            config.http.advertised_url = Some(good.into());
            assert_eq!(problems(&config), Vec::<String>::new(), "{good}");
        }
        for (bad, why) in [
            ("10.0.0.5:9464", "must start with http:// or https://"),
            ("http://", "must name a host"),
            ("http://u:p@h:1", "must be scheme://host[:port] only"),
            ("http://h:1/journeyd", "must be scheme://host[:port] only"),
            ("http://h:1 ", "must be scheme://host[:port] only"),
        ] {
            config.http.advertised_url = Some(bad.into());
            let found = problems(&config);
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(
                found[0].starts_with(&format!("http.advertised_url: {why}")),
                "{bad}: {found:?}"
            );
        }
    }

    #[test]
    fn the_advertised_url_defaults_to_a_specific_listen_address() {
        let mut http = crate::config::HttpConfig::default();
        let wildcard = "0.0.0.0:9464".parse().unwrap();
        assert_eq!(http.advertised(wildcard), None);
        assert_eq!(http.advertised("[::]:9464".parse().unwrap()), None);
        let bound = "10.0.0.5:9464".parse().unwrap();
        assert_eq!(
            http.advertised(bound).as_deref(),
            Some("http://10.0.0.5:9464")
        );
        http.advertised_url = Some("https://j-0.j:443/".into());
        assert_eq!(
            http.advertised(wildcard).as_deref(),
            Some("https://j-0.j:443")
        );
    }

    #[test]
    fn runtime_intervals_and_bounds_are_positive() {
        let mut config = Config::default();
        config.runtime.commit_interval = Duration::ZERO;
        config.runtime.max_in_flight = 0;
        assert_eq!(
            problems(&config),
            [
                "runtime.commit_interval: must be at least 1ms, got \"0s\"",
                "runtime.max_in_flight: must be at least 1, got 0",
            ]
        );
    }

    #[test]
    fn changelog_compaction_lags_are_ordered() {
        let mut config = Config::default();
        assert_eq!(
            config.runtime.erasure_bound(),
            Duration::from_secs(5 * 86_400),
            "the default keeps erased data at most 5 days, within a week"
        );
        config.runtime.changelog_min_compaction_lag = Duration::from_secs(3 * 86_400);
        assert_eq!(
            problems(&config),
            ["runtime.changelog_min_compaction_lag: must not exceed \
                 runtime.changelog_max_compaction_lag (\"2days\"), got \"3days\""]
        );
        config.runtime.changelog_max_compaction_lag = Duration::ZERO;
        config.runtime.changelog_min_compaction_lag = Duration::ZERO;
        assert_eq!(
            problems(&config),
            ["runtime.changelog_max_compaction_lag: must be at least 1ms, got \"0s\""]
        );
    }
}
