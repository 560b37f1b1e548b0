//! The running service: its HTTP endpoint (`[http]`) and the knobs of the
//! async shell around the engine (`[runtime]`): commits, shutdown,
//! backpressure, delivery guarantees and the state changelog.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

/// The HTTP endpoint: metrics, health, readiness, customer look-ups and
/// erasure (docs/configuration.md, `[http]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// The address and port to listen on.
    pub listen: SocketAddr,
    /// Where the other instances of the consumer group reach this one's
    /// HTTP port, `http://host:port` or `https://host:port`: a lookup of a
    /// customer whose partition this instance owns is forwarded here. Must
    /// be unique per instance. Default: `http://<listen>` when `listen` is
    /// not a wildcard address; none otherwise (then lookups are not
    /// forwarded to this instance, and answer 503 elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_url: Option<String>,
    /// When set, `/customers/*` and every endpoint that changes state
    /// require `Authorization: Bearer <token>`. `/metrics`, `/healthz` and
    /// `/readyz` stay open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<Secret>,
    /// Without `auth_token`, endpoints that change state (`DELETE
    /// /customers/{id}`) are off unless this says they may run without
    /// authentication: erasure must not be open to anyone who can reach the
    /// port by accident. Has no effect when a token is set.
    pub allow_unauthenticated_erasure: bool,
    /// A client must send a request's headers within this long of opening
    /// the connection (or of the previous response); an idle or slow
    /// connection is closed then, so it cannot hold a connection slot.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// The longest a request may take to be answered; a slower one gets
    /// 503 (`request_timeout`).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Connections served at once, at most; more wait to be accepted. Keeps
    /// a flood of clients from exhausting file descriptors and memory.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9464)),
            advertised_url: None,
            auth_token: None,
            allow_unauthenticated_erasure: false,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
        }
    }
}

impl HttpConfig {
    /// The address this instance advertises to the group, listening on
    /// `bound` (`listen` once bound): `advertised_url` as configured
    /// (without a trailing `/`), else `http://<bound>` unless `bound` is a
    /// wildcard address, which names no host the others could reach.
    pub fn advertised(&self, bound: SocketAddr) -> Option<String> {
        match &self.advertised_url {
            Some(url) => Some(url.trim_end_matches('/').to_owned()),
            None if bound.ip().is_unspecified() => None,
            None => Some(format!("http://{bound}")),
        }
    }
}

/// What is wrong with `url` as an `http.advertised_url`, if anything: it
/// must be `http://` or `https://`, then a host with an optional port, and
/// nothing else (no credentials, path, query or fragment).
pub fn advertised_url_problem(url: &str) -> Option<&'static str> {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Some("must start with http:// or https://");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Some("must name a host, e.g. \"http://journeyd-0.journeyd:9464\"");
    }
    if authority
        .chars()
        .any(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace() || c.is_control())
    {
        return Some(
            "must be scheme://host[:port] only, without credentials, path, query or fragment",
        );
    }
    None
}

/// The async shell around the engine (docs/guarantees.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    /// How often offsets whose outputs are all acknowledged are committed.
    /// A crash replays at most this much input (without changing results).
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// On SIGTERM or SIGINT: the longest journeyd spends finishing in-flight
    /// events, flushing outputs and committing before it exits.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How often gauges (consumer lag, watermark lag, customers per stage
    /// and band, state memory) are refreshed.
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
    /// Outputs sent but not yet acknowledged by Kafka, at most; polling
    /// pauses at this bound until acknowledgements catch up.
    pub max_in_flight: usize,
    /// Kafka transactions: outputs, changelog and offsets in one transaction
    /// (docs/guarantees.md#exactly-once-mode). `false`: at-least-once.
    pub exactly_once: bool,
    /// The producer's `transactional.id` in exactly-once mode; unique per
    /// instance and stable across its restarts. Default:
    /// `<group_id>-<group_instance_id>` with static membership, else one
    /// unique to the process.
    pub transactional_id: Option<String>,
    /// The compacted topic that holds customer state, keyed by customer and
    /// partitioned like the inputs.
    pub changelog_topic: String,
    /// The changelog's `min.compaction.lag.ms` when journeyd creates it:
    /// how long a value stays readable before compaction may remove it.
    #[serde(with = "humantime_serde")]
    pub changelog_min_compaction_lag: Duration,
    /// The changelog's `max.compaction.lag.ms` (and `segment.ms`) when
    /// journeyd creates it: a superseded or erased value is removed within
    /// this long after the newer record. See [`RuntimeConfig::erasure_bound`].
    #[serde(with = "humantime_serde")]
    pub changelog_max_compaction_lag: Duration,
    /// The changelog's `delete.retention.ms` when journeyd creates it: how
    /// long a tombstone (the erased customer's id) stays after compaction.
    #[serde(with = "humantime_serde")]
    pub changelog_delete_retention: Duration,
}

impl RuntimeConfig {
    /// How long an erased or superseded customer state stays on the
    /// changelog's disks at most: removed within one compaction lag after
    /// the newer record, its tombstone `delete_retention` after that
    /// compaction, at the next one, itself within one more compaction lag
    /// (docs/personal-data.md#the-changelogs-bound).
    pub fn erasure_bound(&self) -> Duration {
        erasure_bound(
            self.changelog_max_compaction_lag,
            self.changelog_delete_retention,
        )
    }
}

/// The bound [`RuntimeConfig::erasure_bound`] states, for a topic with
/// these settings (saturating).
pub fn erasure_bound(max_compaction_lag: Duration, delete_retention: Duration) -> Duration {
    max_compaction_lag
        .saturating_mul(2)
        .saturating_add(delete_retention)
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            commit_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(30),
            metrics_interval: Duration::from_millis(100),
            max_in_flight: 100_000,
            exactly_once: false,
            transactional_id: None,
            changelog_topic: "journeyd.state-changelog".to_owned(),
            changelog_min_compaction_lag: Duration::ZERO,
            changelog_max_compaction_lag: Duration::from_secs(2 * 86_400),
            changelog_delete_retention: Duration::from_secs(86_400),
        }
    }
}
