//! Configuration: `journeyd.toml`, with environment overrides.
//!
//! Everything a user may tune is here as data: the stages, the rules that
//! move customers between them, time semantics and the churn model, and for
//! the Kafka service the connection, topics, schemas, HTTP endpoint and
//! runtime limits. The engine compiles its part into lookup tables once at
//! start-up ([`crate::engine::Rules`]); nothing in here is consulted per event.
//!
//! Loading and validation ([`Config::load`], [`Config::validate`]) report
//! every problem at once, each naming the offending key: unknown keys, values
//! of the wrong type, then semantic problems (unknown stages, bad windows
//! and thresholds). Environment variables `JOURNEYD__<SECTION>__<KEY>`
//! override file values. `journeyd.example.toml` is the full default
//! configuration; `docs/configuration.md` is the reference for every key.
//!
//! Secrets (`http.auth_token`, credentials among the librdkafka properties)
//! never show in `Debug` output: see [`Secret`] and [`KafkaProperties`].

mod churn;
mod consent;
mod journey;
mod kafka;
mod load;
mod secret;
mod service;
mod topics;
mod validate;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::FieldLimits;

pub use churn::{BandConfig, ChurnConfig, ChurnModelKind, ChurnParams, ChurnSignalConfig};
pub use consent::{ConsentConfig, ConsentMode};
pub use journey::{
    ConversionConfig, EntrySignal, JourneyConfig, LapseConfig, MAX_MOMENTS, MomentConfig,
    RegressRule, ScoresConfig, StageConfig,
};
pub use kafka::{KafkaConfig, KafkaProperties};
pub use load::{ConfigError, ENV_PREFIX};
pub use secret::{REDACTED, SECRET_PROPERTY_MARKERS, Secret, is_secret_property};
pub use service::{HttpConfig, RuntimeConfig, advertised_url_problem, erasure_bound};
pub use topics::{
    InputConfig, InputEncoding, OutputFormat, OutputSchemaIds, OutputsConfig, SchemaRegistryConfig,
    without_userinfo,
};

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Event-time semantics: lateness, idleness, windows, inactivity.
    pub time: TimeConfig,
    /// Stages and the rules that move customers between them.
    pub journey: JourneyConfig,
    /// The churn-risk model, its signals and bands.
    pub churn: ChurnConfig,
    /// Whether touchpoints need the customer's consent for a purpose.
    pub consent: ConsentConfig,
    /// Limits that keep memory bounded and bad input out.
    pub limits: LimitsConfig,
    /// The Kafka connection: brokers, consumer group, librdkafka properties.
    pub kafka: KafkaConfig,
    /// The topics touchpoints are consumed from, each with its encoding.
    pub inputs: Vec<InputConfig>,
    /// The topics derived events go to, and their format.
    pub outputs: OutputsConfig,
    /// Where the Avro schemas of the Confluent wire format come from.
    pub schema_registry: SchemaRegistryConfig,
    /// The HTTP endpoint: metrics, health, customer look-ups.
    pub http: HttpConfig,
    /// Commits, shutdown, backpressure, guarantees, the state changelog.
    pub runtime: RuntimeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            time: TimeConfig::default(),
            journey: JourneyConfig::default(),
            churn: ChurnConfig::default(),
            consent: ConsentConfig::default(),
            limits: LimitsConfig::default(),
            kafka: KafkaConfig::default(),
            inputs: vec![InputConfig::default()],
            outputs: OutputsConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            http: HttpConfig::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

/// How the watermark advances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeMode {
    /// Event time, plus wall-clock progress when every input is idle, so
    /// inactivity timers fire on a quiet stream.
    #[default]
    Hybrid,
    /// Event time only: deterministic, for replays.
    Event,
}

/// Time semantics (docs/time.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeConfig {
    /// `hybrid` (default) or `event`.
    pub mode: TimeMode,
    /// How far behind the newest event time of a partition its watermark
    /// trails. Events are processed in event-time order once the watermark
    /// passes them, so this is also the added latency of every output.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// A partition with no events for this long (wall clock) stops holding
    /// the watermark back.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Events timestamped further than this ahead of the wall clock are rejected.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// A redelivered `event_id` is never applied twice while it is within
    /// this much event time of its customer's newest touchpoint; an older
    /// touchpoint whose id is no longer remembered is applied and counted.
    #[serde(with = "humantime_serde")]
    pub dedupe_horizon: Duration,
    /// Size of the tumbling funnel windows.
    #[serde(with = "humantime_serde")]
    pub funnel_window: Duration,
    /// A customer with no touchpoint for this long (event time) lapses.
    #[serde(with = "humantime_serde")]
    pub lapse_after: Duration,
    /// A customer with no touchpoint for this long is evicted from memory,
    /// after their final lapse and churn events are out.
    #[serde(with = "humantime_serde")]
    pub state_ttl: Duration,
}

impl Default for TimeConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        TimeConfig {
            mode: TimeMode::Hybrid,
            allowed_lateness: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_future_skew: Duration::from_secs(300),
            dedupe_horizon: Duration::from_secs(DAY),
            funnel_window: Duration::from_secs(60),
            lapse_after: Duration::from_secs(90 * DAY),
            state_ttl: Duration::from_secs(400 * DAY),
        }
    }
}

/// Bounds on memory and input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Event ids remembered per customer for de-duplication (1 to 64): a
    /// late touchpoint older than the customer's last this many within
    /// `time.dedupe_horizon` cannot be verified as new and is refused.
    pub dedupe_per_customer: usize,
    /// Events held at most in the event-time reorder buffer; when it is full
    /// the oldest buffered event is processed early.
    pub max_buffered_events: usize,
    /// Bytes held at most in the event-time reorder buffer (events and
    /// their ids); when full, the oldest buffered event is processed early.
    pub max_buffered_bytes: usize,
    /// Customers held at most by one instance; a touchpoint of a new
    /// customer beyond it is refused to the dead-letter topic (`capacity`).
    pub max_customers: usize,
    /// Messages larger than this many bytes are rejected as oversized.
    pub max_message_bytes: usize,
    /// The longest `customer_id` and `event_id`, in bytes; ids become map
    /// keys, changelog keys and fields of every output.
    pub max_id_length: usize,
    /// The longest `action`, in bytes.
    pub max_action_length: usize,
    /// The longest `channel`, in bytes (unknown channels count as `other`,
    /// but are still bounded).
    pub max_channel_length: usize,
    /// The longest key of `attributes`, in bytes.
    pub max_attribute_key_length: usize,
    /// The longest value of `attributes`, in bytes.
    pub max_attribute_value_length: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            dedupe_per_customer: 8,
            max_buffered_events: 1_000_000,
            max_buffered_bytes: 256 << 20,
            max_customers: 10_000_000,
            max_message_bytes: 1 << 20,
            max_id_length: FieldLimits::DEFAULT_ID,
            max_action_length: FieldLimits::DEFAULT_ACTION,
            max_channel_length: FieldLimits::DEFAULT_CHANNEL,
            max_attribute_key_length: FieldLimits::DEFAULT_ATTRIBUTE_KEY,
            max_attribute_value_length: FieldLimits::DEFAULT_ATTRIBUTE_VALUE,
        }
    }
}

impl LimitsConfig {
    /// The field length limits, for the decoders.
    pub fn field_limits(&self) -> FieldLimits {
        FieldLimits {
            id: self.max_id_length,
            action: self.max_action_length,
            channel: self.max_channel_length,
            attribute_key: self.max_attribute_key_length,
            attribute_value: self.max_attribute_value_length,
        }
    }

    /// Each field length limit with its key, for validation and docs.
    pub(crate) fn field_limit_keys(&self) -> [(&'static str, usize); 5] {
        [
            ("limits.max_id_length", self.max_id_length),
            ("limits.max_action_length", self.max_action_length),
            ("limits.max_channel_length", self.max_channel_length),
            (
                "limits.max_attribute_key_length",
                self.max_attribute_key_length,
            ),
            (
                "limits.max_attribute_value_length",
                self.max_attribute_value_length,
            ),
        ]
    }
}
