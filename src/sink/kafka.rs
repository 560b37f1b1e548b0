//! The Kafka sink: a threaded producer whose delivery reports become acks.
//!
//! Every record carries an [`OutputMeta`] as its delivery opaque. When Kafka
//! acknowledges it, the producer's background thread observes the latency
//! metrics and sends [`Delivery::Acked`] to the processing thread, which
//! feeds the commit tracker. A record that fails for good (after
//! librdkafka's own retries) comes back as [`Delivery::Failed`] with its
//! bytes, so the processing thread can send it again: an input offset is
//! never committed past an output that was not delivered.
//!
//! Records of the state changelog (`runtime.changelog_topic`) go through
//! the same producer and the same acknowledgements, to an explicit
//! partition, and may be tombstones (no value); their acknowledgements
//! count as changelog records rather than derived events and observe no
//! latency.
//!
//! The delivery channel is unbounded, but the processing thread stops
//! polling input while `runtime.max_in_flight` outputs are unacknowledged,
//! which bounds it.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::clock::{Stopwatch, wall_now};
use crate::config::Config;
use crate::runtime::acks::OutputId;
use crate::telemetry::events::{InternalEvent, OutputDeliveryFailed};
use crate::telemetry::{KafkaLog, Metrics};

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
    /// Delivery failed for good; the record must be sent again.
    Failed {
        meta: Box<OutputMeta>,
        record: OwnedRecord,
    },
}

/// Turns librdkafka delivery callbacks into [`Delivery`] messages.
pub struct SinkContext {
    deliveries: Sender<Delivery>,
    metrics: Arc<Metrics>,
    /// `runtime.changelog_topic`: its records are state, not derived events.
    changelog_topic: String,
    /// librdkafka's log lines, without secrets.
    log: KafkaLog,
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Box<OutputMeta>;

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
                self.metrics
                    .output_counters(message.topic())
                    .delivered
                    .inc();
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
                let _ = self.deliveries.send(Delivery::Failed { meta, record });
            }
        }
    }
}

/// The producer for every output topic.
pub struct Sink {
    producer: ThreadedProducer<SinkContext>,
}

impl Sink {
    /// A producer configured from `config` (brokers, pass-through
    /// properties), and the receiving end of its delivery reports.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> Result<(Sink, Receiver<Delivery>), KafkaError> {
        let (deliveries, reports) = channel();
        let context = SinkContext {
            deliveries,
            metrics,
            changelog_topic: config.runtime.changelog_topic.clone(),
            log: KafkaLog::new(&config.kafka),
        };
        let producer = producer_config(config).create_with_context(context)?;
        Ok((Sink { producer }, reports))
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
        let mut record: BaseRecord<'_, [u8], [u8], Box<OutputMeta>> =
            BaseRecord::with_opaque_to(out.topic, meta);
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
    for (name, value) in kafka.client_properties(&kafka.producer_properties) {
        client.set(name, value);
    }
    client
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
