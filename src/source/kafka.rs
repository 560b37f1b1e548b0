//! The Kafka source: a consumer-group member whose rebalances are a
//! handshake with the pipeline.
//!
//! librdkafka runs rebalance callbacks inside `poll`, on the processing
//! thread, so the pipeline can act on them before the group moves on:
//!
//! - **revoke** (before librdkafka releases the partitions): deliver every
//!   output in flight, write and deliver the changed customers' state to
//!   the changelog, commit the partitions' final positions synchronously,
//!   then drop their customers, timers and buffered touchpoints;
//! - **assign** (after): register the partitions with the engine, which
//!   holds the watermark back for them until they have data or go idle,
//!   and pause them until their state is restored from the changelog
//!   (read between polls, see `runtime/restore.rs`).
//!
//! The consumer knows the processing side only through [`PartitionOwner`],
//! which the runtime's pipeline implements: the source does not depend on
//! the runtime.
//!
//! The group assigns only the partitions of the *primary* input topic (the
//! first of `[[inputs]]`). Every other input topic is co-partitioned with
//! it, and its partition `p` goes wherever primary partition `p` goes: the
//! consumer assigns these twins to itself inside the same callbacks, so
//! one customer's touchpoints, whichever topic carries them, meet in one
//! instance and one state, with one writer of its changelog key. Left to
//! the group, the cooperative-sticky assignor balances every topic's
//! partitions without regard to their numbers, and could give partition 2
//! of one topic and partition 2 of another to two instances. The twins'
//! offsets are committed by this member like the primary's; they are
//! revoked, lost and restored with their primary partition.
//!
//! The erasure topic's partitions follow the input partitions on both
//! sides of the handshake too ([`super::erasure`], read by a second
//! consumer): released after the revocation's commit, assigned after the
//! assignment.
//!
//! Assignment is incremental (cooperative-sticky): partitions that stay keep
//! flowing while others move. Offsets are committed only by the pipeline,
//! never automatically. Consumer lag per partition comes from librdkafka's
//! statistics.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, Rebalance};
use rdkafka::error::KafkaResult;

use crate::clock::wall_now;
use crate::config::Config;
use crate::kafka::{ConsumerHooks, Context, Hooks};
use crate::model::EventTime;
use crate::telemetry::Readiness;
use crate::telemetry::{KafkaLog, Metrics};

use super::erasure::ErasureReader;
use super::group::{RebalanceNotice, member_client_id};
use crate::telemetry::events::{
    InternalEvent, PartitionsAssigned, PartitionsLost, PartitionsRevoked,
};

/// What the rebalance callbacks drive: whoever owns the assigned
/// partitions' state and commits their offsets (the runtime's pipeline).
/// Called on the processing thread, inside `poll`.
pub trait PartitionOwner: Send {
    /// Partitions were assigned (with their twins): take them on.
    fn assign(&mut self, consumer: &Source, list: &TopicPartitionList, wall: EventTime);

    /// Partitions are being revoked: settle and commit them within about
    /// `flush_timeout`, then let them go.
    fn revoke(
        &mut self,
        consumer: &Source,
        list: &TopicPartitionList,
        flush_timeout: Duration,
        wall: EventTime,
    );

    /// Partitions were lost to another member: let them go, writing and
    /// committing nothing more of theirs.
    fn lose(&mut self, consumer: &Source, list: &TopicPartitionList, wall: EventTime);

    /// The offsets committed may not have reached the group (a commit
    /// failed, or a rebalance ran while commits were in flight): commit
    /// the newest ones again.
    fn commit_again(&mut self);

    /// Erasure partitions to read again from an offset, `(partition,
    /// offset)`, after the owner rewound.
    fn take_erasure_rewinds(&mut self) -> Vec<(i32, i64)>;
}

/// The consumer's hooks: the link from rebalance callbacks to the
/// [`PartitionOwner`].
pub struct SourceHooks {
    pipeline: Arc<Mutex<dyn PartitionOwner>>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    /// How long a revocation may wait for outputs in flight.
    flush_timeout: Duration,
    /// Reads the erasure partitions twinned with the assigned inputs.
    erasure: ErasureReader,
    /// The primary input topic: the only one the group assigns.
    primary: String,
    /// The other input topics, whose partitions follow the primary's.
    twins: Vec<String>,
    /// Tells the group directory (`group.rs`) that the assignment changed.
    rebalances: RebalanceNotice,
}

/// The consumer's context: the shared client plumbing ([`crate::kafka`])
/// with [`SourceHooks`].
pub type SourceContext = Context<SourceHooks>;

/// The consumer type of `journeyd run`.
pub type Source = BaseConsumer<SourceContext>;

impl SourceHooks {
    /// The reader of the erasure partitions that follow this consumer's
    /// assignment.
    pub fn erasure(&self) -> &ErasureReader {
        &self.erasure
    }

    /// Where rebalances are announced to the group directory.
    pub fn rebalances(&self) -> &RebalanceNotice {
        &self.rebalances
    }

    /// The partitions of the other input topics numbered like the primary
    /// partitions of `list`.
    fn twins_of(&self, list: &TopicPartitionList) -> TopicPartitionList {
        let mut twins = TopicPartitionList::new();
        for element in list.elements() {
            if element.topic() == self.primary {
                for topic in &self.twins {
                    twins.add_partition(topic, element.partition());
                }
            }
        }
        twins
    }

    /// `list` and the twins of its primary partitions.
    fn with_twins(list: &TopicPartitionList, twins: &TopicPartitionList) -> TopicPartitionList {
        let mut all = list.clone();
        for element in twins.elements() {
            all.add_partition(element.topic(), element.partition());
        }
        all
    }

    fn pipeline(&self) -> MutexGuard<'_, dyn PartitionOwner + 'static> {
        // The lock is only ever taken on the processing thread; a poisoned
        // lock means a panic there, after which the state is still usable
        // for an orderly shutdown.
        self.pipeline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn names(list: &TopicPartitionList) -> Vec<(String, i32)> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

fn as_refs(names: &[(String, i32)]) -> Vec<(&str, i32)> {
    names.iter().map(|(t, p)| (t.as_str(), *p)).collect()
}

impl Hooks for SourceHooks {}

impl ConsumerHooks for SourceHooks {
    /// A commit failed (say, a rebalance moved the group's generation on
    /// meanwhile): the pipeline commits again at the next interval, even if
    /// no newer offset becomes committable. Served inside `poll`, when the
    /// pipeline is not locked. librdkafka calls this for the commits it
    /// makes itself; the pipeline's own asynchronous commits report to no
    /// one, and are sent again after a rebalance and after a quiet spell
    /// (`runtime::commit`).
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let failed = result.is_err() || offsets.elements().iter().any(|e| e.error().is_err());
        if failed {
            tracing::warn!(
                ?result,
                "Offset commit failed; it is retried at the next interval."
            );
            self.pipeline().commit_again();
        }
    }

    fn pre_rebalance(&self, consumer: &Source, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            let twins = self.twins_of(revoked);
            let list = &Self::with_twins(revoked, &twins);
            PartitionsRevoked {
                partitions: &as_refs(&names(list)),
            }
            .emit(&self.metrics);
            let rewinds = {
                let mut pipeline = self.pipeline();
                if consumer.assignment_lost() {
                    PartitionsLost {
                        partitions: &as_refs(&names(list)),
                    }
                    .emit(&self.metrics);
                    pipeline.lose(consumer, list, wall_now());
                } else {
                    pipeline.revoke(consumer, list, self.flush_timeout, wall_now());
                }
                pipeline.take_erasure_rewinds()
            };
            // The group releases the primary partitions after this
            // callback; their twins are released here, after the commit.
            if twins.count() > 0
                && let Err(error) = consumer.incremental_unassign(&twins)
            {
                tracing::error!(%error, "Cannot release the other input topics' partitions.");
            }
            // A transaction that failed during the revocation rewound the
            // erasure partitions too; the revoked ones are let go after.
            for (partition, offset) in rewinds {
                self.erasure.rewind(partition, offset);
            }
            self.erasure.unfollow(revoked);
        }
    }

    fn post_rebalance(&self, consumer: &Source, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            // The twins are read from the group's committed offsets, like
            // the primary partitions the group has just assigned.
            let twins = self.twins_of(assigned);
            if twins.count() > 0
                && let Err(error) = consumer.incremental_assign(&twins)
            {
                tracing::error!(%error, "Cannot read the other input topics' partitions.");
            }
            let list = &Self::with_twins(assigned, &twins);
            PartitionsAssigned {
                partitions: &as_refs(&names(list)),
            }
            .emit(&self.metrics);
            self.pipeline().assign(consumer, list, wall_now());
            self.erasure.follow(assigned);
        }
        // Commits sent while the group rebalanced may have been refused
        // for the old generation, unseen: send the newest ones again.
        self.pipeline().commit_again();
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.readiness.set_assigned_partitions(assigned as u64);
        self.rebalances.rebalanced();
    }
}

/// A consumer subscribed to the primary input topic, which follows it with
/// the other input topics and, through the reader in its context, the
/// erasure topic.
pub fn subscribe(
    config: &Config,
    pipeline: Arc<Mutex<dyn PartitionOwner>>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
) -> KafkaResult<Source> {
    let (primary, others) = match config.inputs.split_first() {
        Some((primary, others)) => (primary.topic.clone(), others),
        None => (String::new(), &[][..]),
    };
    let hooks = SourceHooks {
        pipeline,
        erasure: ErasureReader::new(config, metrics.clone())?,
        metrics: metrics.clone(),
        readiness,
        flush_timeout: config.runtime.shutdown_timeout,
        primary: primary.clone(),
        twins: others.iter().map(|i| i.topic.clone()).collect(),
        rebalances: RebalanceNotice::default(),
    };
    let context = Context::new(KafkaLog::new(&config.kafka), hooks).with_lag(metrics);
    let consumer: Source = consumer_config(config).create_with_context(context)?;
    consumer.subscribe(&[primary.as_str()])?;
    Ok(consumer)
}

/// The group member's client configuration. Its `client.id` carries
/// `http.advertised_url` (as [`Service`](crate::runtime::service) resolved
/// it) for the other members' group directories ([`super::group`]).
pub(crate) fn consumer_config(config: &Config) -> ClientConfig {
    let kafka = &config.kafka;
    let client_id = member_client_id(&kafka.client_id, config.http.advertised_url.as_deref());
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", "5000");
    if let Some(id) = &kafka.group_instance_id {
        client.set("group.instance.id", id);
    }
    for (name, value) in kafka.client_properties(&kafka.consumer_properties) {
        client.set(name, value);
    }
    client
}
