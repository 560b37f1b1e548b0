//! The group directory: which member of the consumer group owns which
//! input partition, and at which HTTP address it answers
//! (docs/architecture.md#any-instance-answers).
//!
//! Nothing beyond the group itself is needed. Each member's `client.id`
//! carries its advertised address (`<kafka.client_id>@<http.advertised_url>`,
//! [`member_client_id`]); the group coordinator's description of the group
//! (librdkafka's `rd_kafka_list_groups`, one DescribeGroups request) lists
//! every member with its `client.id` and the assignment the group leader
//! gave it, in the Kafka consumer protocol's `Assignment` format
//! ([`assigned_partitions`]). librdkafka offers no way to put the address
//! in the subscription's user data, where Kafka Streams carries its
//! `application.server`, hence `client.id`.
//!
//! A thread of its own, with a consumer that joins nothing, describes the
//! group and publishes the result as an [`Owners`] table on a `watch`
//! channel, which the HTTP handlers read without waiting. It describes the
//! group again when asked ([`Refresh`]): after each rebalance of this
//! member (the source's rebalance callbacks ask), when a lookup finds the
//! table stale (a miss), every [`PERIODIC`] (a rebalance that moved no
//! partition of this member calls no callback here), and every
//! [`UNSETTLED`] while the group is rebalancing; never more often than
//! every [`MIN_INTERVAL`], however many lookups miss. A lookup never waits
//! for the broker unless its table proved stale.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::groups::GroupInfo;
use tokio::sync::watch;

use crate::clock::Stopwatch;
use crate::config::{Config, advertised_url_problem};
use crate::http::routing::{Owner, Owners, Refresh};
use crate::kafka::Context;
use crate::telemetry::KafkaLog;

mod assignment;

pub use assignment::{MalformedAssignment, assigned_partitions};

/// How often the group is described when nothing asks for it.
pub const PERIODIC: Duration = Duration::from_secs(10);

/// How often the group is described while it is rebalancing.
pub const UNSETTLED: Duration = Duration::from_millis(500);

/// Descriptions are at least this far apart.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// How long one description may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `client.id` of the group member advertised at `url`: a member's
/// `client.id` is the only thing of its own that the group's description
/// shows and librdkafka lets journeyd set.
pub fn member_client_id(client_id: &str, url: Option<&str>) -> String {
    match url {
        Some(url) => format!("{client_id}@{url}"),
        None => client_id.to_owned(),
    }
}

/// The advertised address in a member's `client.id`, if it carries one
/// (the address never contains `@`, so the last one separates it).
pub fn member_url(client_id: &str) -> Option<&str> {
    let (_, url) = client_id.rsplit_once('@')?;
    advertised_url_problem(url).is_none().then_some(url)
}

/// One member as the group's description shows it.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    /// Its `client.id`.
    pub client_id: &'a str,
    /// Its assignment, in the consumer protocol's format.
    pub assignment: &'a [u8],
}

/// The table of owners of `topic`'s `partitions` partitions the members
/// make. A member whose assignment does not parse owns nothing (and is
/// logged): its partitions stay without owner, so lookups of them answer
/// 503, never a wrong 404.
pub fn owners_of<'a>(
    members: impl IntoIterator<Item = Member<'a>>,
    topic: &str,
    partitions: u32,
    version: u64,
    stable: bool,
) -> Owners {
    let mut owners = Owners::new(partitions, version, stable);
    for member in members {
        let owner = match member_url(member.client_id) {
            Some(url) => Owner::Advertised(url.into()),
            None => Owner::Unadvertised,
        };
        match assigned_partitions(member.assignment, topic) {
            Ok(assigned) => {
                for partition in assigned {
                    owners.claim(partition, owner.clone());
                }
            }
            Err(error) => tracing::warn!(
                %error,
                client_id = member.client_id,
                "Cannot read a group member's assignment; its partitions have no known owner."
            ),
        }
    }
    owners
}

/// The thread that keeps the table of owners.
pub struct GroupDirectory {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    refresh: Refresh,
}

/// What the directory's thread works with.
struct Describer {
    consumer: BaseConsumer<Context>,
    group: String,
    topic: String,
    partitions: u32,
    pokes: Receiver<()>,
    stop: Arc<AtomicBool>,
    table: watch::Sender<Arc<Owners>>,
}

/// The ends of the directory's channels, made before it starts (the HTTP
/// server starts first): the table it publishes, and the requests for a
/// refresh.
pub struct DirectoryChannels {
    /// Where the directory publishes the table.
    pub table: watch::Sender<Arc<Owners>>,
    /// Where refresh requests arrive.
    pub pokes: Receiver<()>,
    /// Asks for a refresh (to stop the directory's wait).
    pub refresh: Refresh,
}

impl DirectoryChannels {
    /// The channels, and the ends the HTTP side keeps: the table (empty,
    /// no partition known, until the directory starts) and the refresh
    /// handle.
    pub fn new() -> (DirectoryChannels, watch::Receiver<Arc<Owners>>, Refresh) {
        let (table, owners) = watch::channel(Arc::new(Owners::default()));
        let (refresh, pokes) = Refresh::channel();
        let channels = DirectoryChannels {
            table,
            pokes,
            refresh: refresh.clone(),
        };
        (channels, owners, refresh)
    }
}

impl GroupDirectory {
    /// Starts describing `config`'s group, whose primary input topic has
    /// `partitions` partitions.
    pub fn start(
        config: &Config,
        partitions: u32,
        channels: DirectoryChannels,
    ) -> anyhow::Result<GroupDirectory> {
        let DirectoryChannels {
            table,
            pokes,
            refresh,
        } = channels;
        let stop = Arc::new(AtomicBool::new(false));
        let describer = Describer {
            consumer: describer_config(config)
                .create_with_context(Context::new(KafkaLog::new(&config.kafka), ()))?,
            group: config.kafka.group_id.clone(),
            topic: config
                .inputs
                .first()
                .map(|i| i.topic.clone())
                .unwrap_or_default(),
            partitions,
            pokes,
            stop: stop.clone(),
            table,
        };
        let thread = std::thread::Builder::new()
            .name("journeyd-group".into())
            .spawn(move || describer.run())?;
        Ok(GroupDirectory {
            thread: Some(thread),
            stop,
            refresh,
        })
    }

    /// Asks the directory to describe the group again.
    pub fn refresh(&self) -> Refresh {
        self.refresh.clone()
    }

    /// Stops the thread (within one description at most).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.refresh.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Describer {
    fn run(self) {
        let mut version = 0;
        let mut since: Option<Stopwatch> = None;
        let mut wait = Duration::ZERO;
        let mut failing = false;
        loop {
            match self.pokes.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Some(elapsed) = since.as_ref().map(Stopwatch::elapsed) {
                std::thread::sleep(MIN_INTERVAL.saturating_sub(elapsed));
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            while self.pokes.try_recv().is_ok() {}
            since = Some(Stopwatch::start());
            version += 1;
            let owners = match self.describe(version) {
                Ok(owners) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(group = %self.group, "The consumer group is described again; customer lookups are forwarded.");
                    }
                    wait = if owners.stable { PERIODIC } else { UNSETTLED };
                    owners
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        describe_failed(&error, &self.group);
                    }
                    wait = PERIODIC;
                    self.unsettled(version)
                }
            };
            self.table.send_replace(Arc::new(owners));
        }
    }

    /// The group's description as a table.
    fn describe(&self, version: u64) -> rdkafka::error::KafkaResult<Owners> {
        let list = (self.consumer).fetch_group_list(Some(&self.group), DESCRIBE_TIMEOUT)?;
        let Some(group) = list.groups().iter().find(|g| g.name() == self.group) else {
            return Ok(Owners::new(self.partitions, version, false));
        };
        Ok(self.table_of(group, version))
    }

    /// The previous table, unsettled, when the group cannot be described.
    /// Before the first description it has no owners: lookups are answered
    /// by the instance asked if it holds the customer, else 503.
    fn unsettled(&self, version: u64) -> Owners {
        let mut previous = Owners::clone(&self.table.borrow());
        if previous.partition_count() == 0 {
            previous = Owners::new(self.partitions, version, false);
        }
        previous.version = version;
        previous.stable = false;
        previous
    }

    fn table_of(&self, group: &GroupInfo, version: u64) -> Owners {
        let members = group.members().iter().map(|m| Member {
            client_id: m.client_id(),
            assignment: m.assignment().unwrap_or_default(),
        });
        let stable = group.state() == "Stable";
        owners_of(members, &self.topic, self.partitions, version, stable)
    }
}

/// Says once that the group cannot be described. librdkafka's mock
/// cluster (`journeyd demo`, the tests) cannot; any Kafka broker can, so
/// only other failures are warnings.
fn describe_failed(error: &rdkafka::error::KafkaError, group: &str) {
    use rdkafka::types::RDKafkaErrorCode::UnsupportedFeature;
    if error.rdkafka_error_code() == Some(UnsupportedFeature) {
        tracing::debug!(%error, group, "The brokers cannot describe consumer groups; customer lookups are not forwarded.");
    } else {
        tracing::warn!(%error, group, "Cannot describe the consumer group; customer lookups are not forwarded until it is (each instance still answers for the customers it holds).");
    }
}

/// The describing consumer: the group member's connection settings, but no
/// group of its own to join.
fn describer_config(config: &Config) -> ClientConfig {
    let kafka = &config.kafka;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("client.id", &kafka.client_id);
    for (name, value) in kafka.client_properties(&kafka.consumer_properties) {
        client.set(name, value);
    }
    client
}

/// Where the source's rebalance callbacks ask for a refresh, once the
/// directory exists (it starts after the consumer).
#[derive(Debug, Default)]
pub struct RebalanceNotice(OnceLock<Refresh>);

impl RebalanceNotice {
    /// From now on, rebalances ask `refresh`.
    pub fn connect(&self, refresh: Refresh) {
        let _ = self.0.set(refresh);
    }

    /// A rebalance happened.
    pub fn rebalanced(&self) {
        if let Some(refresh) = self.0.get() {
            refresh.request();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::assignment::tests::assignment;
    use super::*;

    #[test]
    fn the_client_id_carries_the_address() {
        let id = member_client_id("journeyd", Some("http://10.0.0.5:9464"));
        assert_eq!(id, "journeyd@http://10.0.0.5:9464");
        assert_eq!(member_url(&id), Some("http://10.0.0.5:9464"));
        assert_eq!(
            member_url("ops@team@https://j-1.j:443"),
            Some("https://j-1.j:443")
        );
        assert_eq!(member_client_id("journeyd", None), "journeyd");
        assert_eq!(member_url("journeyd"), None);
        assert_eq!(member_url("me@example.com"), None);
        assert_eq!(member_url("rdkafka"), None);
    }

    #[test]
    fn the_table_names_each_partitions_member() {
        let a = assignment(1, &[("touchpoints", &[0, 3])]);
        let b = assignment(1, &[("touchpoints", &[1])]);
        let c = assignment(1, &[("touchpoints", &[2])]);
        let members = [
            Member {
                client_id: "journeyd@http://a:1",
                assignment: &a,
            },
            Member {
                client_id: "journeyd@http://b:1",
                assignment: &b,
            },
            Member {
                client_id: "journeyd",
                assignment: &c,
            },
            Member {
                client_id: "journeyd@http://d:1",
                assignment: &[0, 1, 2],
            },
        ];
        let owners = owners_of(members, "touchpoints", 5, 7, true);
        let url = |u: &str| Some(Owner::Advertised(u.into()));
        assert_eq!(owners.owner(0).cloned(), url("http://a:1"));
        assert_eq!(owners.owner(1).cloned(), url("http://b:1"));
        assert_eq!(owners.owner(2), Some(&Owner::Unadvertised));
        assert_eq!(owners.owner(3).cloned(), url("http://a:1"));
        assert_eq!(
            owners.owner(4),
            None,
            "the malformed member's share is unknown"
        );
        assert_eq!((owners.version, owners.stable), (7, true));
    }
}
