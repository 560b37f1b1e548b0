//! The Kafka sink: a threaded producer whose delivery reports become acks.
//!
//! Every record carries an [`OutputMeta`] as its delivery opaque. When Kafka
//! acknowledges it, the producer's background thread observes the latency
//! metrics and sends [`Delivery::Acked`] to the processing thread, which
//! feeds the commit tracker. A record that fails for good (after
//! librdkafka's own retries) comes back as [`Delivery::Failed`] with its
//! bytes and the error, so the processing thread can send it again, or do
//! what the error calls for: an input offset is never committed past an
//! output that was neither delivered nor dead-lettered.
//!
//! Records of the state changelog (`runtime.changelog_topic`) go through
//! the same producer and the same acknowledgements, to an explicit
//! partition, and may be tombstones (no value); their acknowledgements
//! count as changelog records rather than derived events and observe no
//! latency.
//!
//! The producer is behind the [`Producing`] seam
//! ([`super::transactions`]): in exactly-once mode it is transactional
//! (`transactional.id` from [`transactional_id`]), and the pipeline opens,
//! commits and aborts its transactions through [`Sink::transactions`].
//!
//! The delivery channel is unbounded, but the processing thread stops
//! polling input while `runtime.max_in_flight` outputs are unacknowledged,
//! which bounds it.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ThreadedProducer};

use crate::clock::{Stopwatch, wall_now};
use crate::config::Config;
use crate::kafka::{Context, Hooks, ProducerHooks};
use crate::telemetry::events::{InternalEvent, OutputDeliveryFailed};
use crate::telemetry::{KafkaLog, Metrics};

use super::OutputId;
use super::transactions::{ProducerHook, Producing, Record};

/// What a record was, for the delivery report.
#[derive(Debug)]
pub struct OutputMeta {
    /// The commit tracker's id of this output.
    pub id: OutputId,
    /// Event time the output is about (ms), for end-to-end latency; `None`
    /// for dead-letter records.
    pub event_time: Option<i64>,
    /// When the input that caused it was polled.
    pub polled: Stopwatch,
}

/// A record owned by the sink, for re-sending after a failed delivery.
#[derive(Debug)]
pub struct OwnedRecord {
    /// The topic it was sent to.
    pub topic: String,
    /// The partition it was sent to, when known: a re-send goes there too.
    pub partition: Option<i32>,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The value; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The headers.
    pub headers: Option<OwnedHeaders>,
}

/// A record to send, borrowed.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The topic.
    pub topic: &'a str,
    /// An explicit partition; `None` lets the partitioner pick by key.
    pub partition: Option<i32>,
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` for a tombstone.
    pub payload: Option<&'a [u8]>,
    /// The headers.
    pub headers: Option<OwnedHeaders>,
}

/// A delivery report, as the processing thread sees it.
#[derive(Debug)]
pub enum Delivery {
    /// Kafka acknowledged the output.
    Acked(OutputId),
    /// Delivery failed for good: the record is sent again, or what
    /// `error` calls for instead (`runtime/outbox/rejected.rs`).
    Failed {
        meta: Box<OutputMeta>,
        record: OwnedRecord,
        error: KafkaError,
    },
}

/// Turns librdkafka delivery callbacks into [`Delivery`] messages.
pub struct SinkHooks {
    deliveries: Sender<Delivery>,
    metrics: Arc<Metrics>,
    /// `runtime.changelog_topic`: its records are state, not derived events.
    changelog_topic: String,
}

/// The producer's context: the shared client plumbing ([`crate::kafka`])
/// with [`SinkHooks`].
pub type SinkContext = Context<SinkHooks>;

impl Hooks for SinkHooks {}

impl ProducerHooks for SinkHooks {
    type Opaque = Box<OutputMeta>;

    fn delivery(&self, result: &DeliveryResult<'_>, meta: Box<OutputMeta>) {
        match result {
            Ok(message) if message.topic() == self.changelog_topic => {
                self.metrics
                    .changelog_record_acked(message.payload().is_none());
                let _ = self.deliveries.send(Delivery::Acked(meta.id));
            }
            Ok(message) => {
                self.metrics
                    .observe_processing_latency(meta.polled.elapsed().as_secs_f64());
                if let Some(t) = meta.event_time {
                    let lag_ms = wall_now().since(crate::model::EventTime(t)).max(0);
                    self.metrics
                        .observe_end_to_end_latency(lag_ms as f64 / 1000.0);
                }
                self.metrics.output_delivered(message.topic());
                let _ = self.deliveries.send(Delivery::Acked(meta.id));
            }
            Err((error, message)) => {
                OutputDeliveryFailed {
                    topic: message.topic(),
                    error,
                }
                .emit(&self.metrics);
                let record = OwnedRecord {
                    topic: message.topic().to_owned(),
                    partition: (message.partition() >= 0).then_some(message.partition()),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    headers: message.headers().map(|h| h.detach()),
                };
                let _ = self.deliveries.send(Delivery::Failed {
                    meta,
                    record,
                    error: error.clone(),
                });
            }
        }
    }
}

/// The producer for every output topic.
pub struct Sink {
    producer: Box<dyn Producing>,
    /// Creates a producer like the first one, to replace it after a fatal
    /// error.
    renew: Box<dyn Fn() -> KafkaResult<Box<dyn Producing>> + Send + Sync>,
}

impl Sink {
    /// A producer configured from `config` (brokers, pass-through
    /// properties, `transactional.id` in exactly-once mode), and the
    /// receiving end of its delivery reports.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> Result<(Sink, Receiver<Delivery>), KafkaError> {
        Sink::with_hook(config, metrics, None)
    }

    /// Like [`Sink::new`], with every producer it creates wrapped by `hook`.
    pub fn with_hook(
        config: &Config,
        metrics: Arc<Metrics>,
        hook: Option<ProducerHook>,
    ) -> Result<(Sink, Receiver<Delivery>), KafkaError> {
        let (deliveries, reports) = channel();
        let client = producer_config(config);
        let changelog_topic = config.runtime.changelog_topic.clone();
        let log = KafkaLog::new(&config.kafka);
        let renew = move || -> KafkaResult<Box<dyn Producing>> {
            let hooks = SinkHooks {
                deliveries: deliveries.clone(),
                metrics: metrics.clone(),
                changelog_topic: changelog_topic.clone(),
            };
            let context = Context::new(log.clone(), hooks);
            let producer: ThreadedProducer<SinkContext> = client.create_with_context(context)?;
            Ok(match &hook {
                Some(hook) => hook(producer),
                None => Box::new(producer),
            })
        };
        let producer = renew()?;
        let sink = Sink {
            producer,
            renew: Box::new(renew),
        };
        Ok((sink, reports))
    }

    /// Sends one record, waiting while the producer's queue is full
    /// (backpressure). Fails only on errors other than a full queue.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
        meta: Box<OutputMeta>,
    ) -> Result<(), KafkaError> {
        let record = Outgoing {
            topic,
            partition: None,
            key,
            payload: Some(payload),
            headers,
        };
        self.send_record(record, meta)
    }

    /// Sends one record, to an explicit partition and as a tombstone when
    /// asked; waits while the producer's queue is full, like
    /// [`Sink::send`].
    pub fn send_record(&self, out: Outgoing<'_>, meta: Box<OutputMeta>) -> Result<(), KafkaError> {
        let mut record: Record<'_> = BaseRecord::with_opaque_to(out.topic, meta);
        if let Some(payload) = out.payload {
            record = record.payload(payload);
        }
        if let Some(key) = out.key {
            record = record.key(key);
        }
        if let Some(partition) = out.partition {
            record = record.partition(partition);
        }
        if let Some(headers) = out.headers {
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Records queued or in flight inside librdkafka.
    pub fn queued(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// The transactional producer, for the calls of [`Producing`].
    pub fn transactions(&self) -> &dyn Producing {
        self.producer.as_ref()
    }

    /// Replaces the producer with a new one (same configuration, same
    /// delivery channel) after a fatal error. Records still queued in the
    /// old one are dropped with it.
    pub fn renew(&mut self) -> KafkaResult<()> {
        self.producer = (self.renew)()?;
        Ok(())
    }
}

/// The producer's client configuration.
pub(crate) fn producer_config(config: &Config) -> ClientConfig {
    let kafka = &config.kafka;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("client.id", &kafka.client_id)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        // Room for a dead letter of the largest accepted input plus headers.
        .set(
            "message.max.bytes",
            (config.limits.max_message_bytes + (64 << 10))
                .max(1_000_000)
                .to_string(),
        );
    if config.runtime.exactly_once {
        // librdkafka wants deliveries to time out within a transaction's
        // timeout (60 s by default); a delivery that fails aborts the
        // transaction, and the rewind produces the record again.
        client.set("message.timeout.ms", "60000");
    }
    for (name, value) in kafka.client_properties(&kafka.producer_properties) {
        client.set(name, value);
    }
    if config.runtime.exactly_once {
        client.set("transactional.id", transactional_id(config));
    }
    client
}

/// The producer's `transactional.id` in exactly-once mode:
/// `runtime.transactional_id`, else `<group_id>-<group_instance_id>` with
/// static membership (stable across restarts, so a restarted instance
/// fences its predecessor and aborts its open transaction at once), else
/// `<group_id>-<client_id>-<process id>-<start time>`, unique per process
/// (a crashed predecessor's open transaction is then aborted by the broker
/// after `transaction.timeout.ms`). Zombies are fenced either way through
/// the consumer group's generation, which the offsets of every
/// transaction carry.
pub fn transactional_id(config: &Config) -> String {
    let kafka = &config.kafka;
    if let Some(id) = &config.runtime.transactional_id {
        return id.clone();
    }
    match &kafka.group_instance_id {
        Some(instance) => format!("{}-{instance}", kafka.group_id),
        None => format!(
            "{}-{}-{}-{}",
            kafka.group_id,
            kafka.client_id,
            std::process::id(),
            wall_now().millis()
        ),
    }
}

/// Dead-letter headers as Kafka headers.
pub fn owned_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> OwnedHeaders {
    headers
        .into_iter()
        .fold(OwnedHeaders::new(), |acc, (key, value)| {
            acc.insert(Header {
                key,
                value: Some(value),
            })
        })
}
