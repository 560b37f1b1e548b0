//! The one client context of every Kafka consumer and producer journeyd
//! creates: the group member ([`crate::source::kafka`]), the erasure
//! reader ([`crate::source::erasure`]), the changelog restorer
//! (`runtime/restore.rs`), the output producer ([`crate::sink::kafka`])
//! and `journeyd demo`'s feed (`tools/feed.rs`).
//!
//! [`Context`] does what all of them need the same way: librdkafka's log
//! lines and errors go to `tracing` with secret property values scrubbed
//! ([`KafkaLog`]), and, when asked ([`Context::with_lag`]), librdkafka's
//! statistics set the consumer lag metric. What differs is a small hook
//! ([`Hooks`]): how an error is logged, and for a consumer the rebalance
//! and commit callbacks ([`ConsumerHooks`]), for a producer the delivery
//! report ([`ProducerHooks`]). `()` is the hook of a consumer that needs
//! none.

use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::util::IntoOpaque;

use crate::telemetry::{KafkaLog, Metrics};

/// A Kafka client's context: logs, errors and statistics, plus its hooks
/// `H`; see the module docs.
pub struct Context<H = ()> {
    /// librdkafka's log lines, without secrets.
    log: KafkaLog,
    /// Where the consumer lag from librdkafka's statistics goes, if
    /// anywhere.
    lag: Option<Arc<Metrics>>,
    hooks: H,
}

impl<H> Context<H> {
    /// A context that logs through `log` and calls `hooks`.
    pub fn new(log: KafkaLog, hooks: H) -> Context<H> {
        Context {
            log,
            lag: None,
            hooks,
        }
    }

    /// Also publishes the consumer lag that librdkafka's statistics report
    /// (`statistics.interval.ms`) to `metrics`.
    pub fn with_lag(mut self, metrics: Arc<Metrics>) -> Context<H> {
        self.lag = Some(metrics);
        self
    }

    /// The client's hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }
}

/// What a client does differently from the others, beyond its kind's
/// callbacks.
pub trait Hooks: Send + Sync + 'static {
    /// An error librdkafka reports (it retries on its own); logged with
    /// secrets scrubbed unless the client knows better.
    fn error(&self, log: &KafkaLog, error: KafkaError, reason: &str) {
        log.error(&error, reason);
    }
}

/// A consumer's callbacks; none by default.
pub trait ConsumerHooks: Hooks + Sized {
    /// Before librdkafka applies a rebalance (revocations).
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Context<Self>>, _rebalance: &Rebalance<'_>) {}

    /// After librdkafka applied a rebalance (assignments).
    fn post_rebalance(&self, _consumer: &BaseConsumer<Context<Self>>, _rebalance: &Rebalance<'_>) {}

    /// An offset commit ended.
    fn commit_callback(&self, _result: KafkaResult<()>, _offsets: &TopicPartitionList) {}
}

/// A producer's delivery report.
pub trait ProducerHooks: Hooks {
    /// What each record carries to its delivery report.
    type Opaque: IntoOpaque;

    /// Kafka acknowledged the record, or its delivery failed for good.
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::Opaque);
}

impl Hooks for () {}

impl ConsumerHooks for () {}

impl<H: Hooks> ClientContext for Context<H> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.hooks.error(&self.log, error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(metrics) = &self.lag {
            metrics.observe_consumer_statistics(&statistics);
        }
    }
}

impl<H: ConsumerHooks> ConsumerContext for Context<H> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.hooks.pre_rebalance(consumer, rebalance);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.hooks.post_rebalance(consumer, rebalance);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        self.hooks.commit_callback(result, offsets);
    }
}

impl<H: ProducerHooks> ProducerContext for Context<H> {
    type DeliveryOpaque = H::Opaque;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: H::Opaque) {
        self.hooks.delivery(result, opaque);
    }
}
