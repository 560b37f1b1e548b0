//! Encoding derived outputs (docs/outputs.md) as Kafka record values and keys.
//!
//! Owns the wire form of [`Output`] on the output topics:
//!
//! - **JSON** (`[outputs] format = "json"`): the object `journeyd replay`
//!   writes as one NDJSON line, with its `type` tag, without the newline.
//! - **Avro** (`format = "avro"`): the Confluent wire format (magic byte 0,
//!   the 4-byte big-endian schema id, then the Avro binary datum) of
//!   `schemas/stage_changed.avsc`, `churn_risk_changed.avsc`,
//!   `funnel_window.avsc` or `moment_ended.avsc` (both moment outputs),
//!   written by hand in the schemas' field order.
//!
//! The audit topic carries two kinds of record, each Avro under its own
//! schema id so that a consumer tells them apart by it (or by the JSON
//! `type` tag): the erasure confirmation [`CustomerErased`], which is not an
//! engine output but is written the same way
//! ([`OutputEncoder::encode_erased`]), tagged `customer_erased`, per
//! `schemas/customer_erased.avsc`; and the engine's [`CustomerEvicted`],
//! tagged `customer_evicted`, per `schemas/customer_evicted.avsc`. The
//! erasure confirmation's bytes and schema id are the same as before
//! evictions were announced, so its consumers decode it as they did. An
//! Avro encoder given no schema id for an audit record writes it as JSON.
//!
//! Keys are the customer id, or for funnel windows the window start in
//! decimal milliseconds. [`topic_kind`] tells which output topic a value
//! belongs on. Encoding writes into a caller-owned buffer and allocates
//! nothing else. This module does no I/O and knows no Kafka client; the
//! schema ids come from the configuration or a registry look-up done by
//! the caller at start-up.
//!
//! ```
//! use journeyd::codec::output::{OutputEncoder, OutputFormat, OutputSchemaIds};
//! use journeyd::model::{FunnelWindow, Output};
//!
//! let ids = OutputSchemaIds { stage_changes: 1, churn_risk: 2, funnel: 3, moments: 4 };
//! let encoder = OutputEncoder::new(OutputFormat::Avro, ids);
//! let window = Output::FunnelWindow(FunnelWindow {
//!     sequence: 1,
//!     window_start: 60_000,
//!     window_end: 120_000,
//!     entries: vec![],
//!     pairs: vec![],
//!     active_customers: 0,
//!     revenue: 0.0,
//!     late_events: 0,
//!     channels: vec![],
//!     scores: Default::default(),
//!     scores_by_stage: vec![],
//!     time_to_convert: vec![],
//!     moments: vec![],
//! });
//! let (mut key, mut value) = (Vec::new(), Vec::new());
//! encoder.key(&window, &mut key);
//! encoder.encode(&window, &mut value);
//! assert_eq!(key, b"60000");
//! assert_eq!(value[..5], [0, 0, 0, 0, 3]);
//! ```

use super::avro_binary::{put_long, put_str};
use super::confluent::MAGIC;
use super::dlq::Decimal;
use super::schemas;
use crate::config::OutputsConfig;
pub use crate::config::{OutputFormat, OutputSchemaIds};
pub use crate::model::OutputKind;
use crate::model::{
    Band, CesScore, ChurnCause, ChurnRiskChanged, CsatScore, CustomerErased, CustomerEvicted,
    Direction, ErasureSource, FunnelWindow, MomentEnded, MomentOutcome, NpsScore, Output,
    PairCount, StageChanged, StageCount,
};

/// The encoding side of the table of output types ([`OutputKind`]).
impl OutputKind {
    /// The configured topic name ([`OutputsConfig::topic`]).
    pub fn topic(self, outputs: &OutputsConfig) -> &str {
        outputs.topic(self)
    }

    /// The text of the Avro schema, as registered with a schema registry.
    pub const fn schema(self) -> &'static str {
        match self {
            OutputKind::StageChanges => schemas::STAGE_CHANGED,
            OutputKind::ChurnRisk => schemas::CHURN_RISK_CHANGED,
            OutputKind::Funnel => schemas::FUNNEL_WINDOW,
            OutputKind::Moments => schemas::MOMENT_ENDED,
            OutputKind::Audit => schemas::CUSTOMER_EVICTED,
        }
    }

    /// The schema id of this kind among `ids`; `None` for
    /// [`OutputKind::Audit`], whose id the encoder holds apart.
    pub const fn schema_id(self, ids: &OutputSchemaIds) -> Option<u32> {
        ids.get(self)
    }
}

/// The topic kind of `output`, so that a sink can pick the topic.
pub const fn topic_kind(output: &Output) -> OutputKind {
    output.kind()
}

/// Writes outputs in the configured format. Cheap to copy; built once at
/// start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputEncoder {
    /// JSON or Avro in the Confluent wire format.
    format: OutputFormat,
    /// The ids written in the Confluent header; unused for JSON.
    schema_ids: OutputSchemaIds,
    /// The id of `schemas/customer_erased.avsc` on the audit topic; `None`
    /// writes audit records as JSON.
    audit_schema_id: Option<u32>,
    /// The id of `schemas/customer_evicted.avsc` on the audit topic;
    /// `None` writes [`CustomerEvicted`] as JSON.
    evicted_schema_id: Option<u32>,
}

impl OutputEncoder {
    /// An encoder writing `format`, with `schema_ids` in the headers of
    /// Avro values. Audit records are JSON until
    /// [`OutputEncoder::with_audit_schema_id`].
    pub const fn new(format: OutputFormat, schema_ids: OutputSchemaIds) -> OutputEncoder {
        OutputEncoder {
            format,
            schema_ids,
            audit_schema_id: None,
            evicted_schema_id: None,
        }
    }

    /// The same encoder, writing `id` in the header of Avro
    /// [`CustomerErased`] values.
    pub const fn with_audit_schema_id(mut self, id: u32) -> OutputEncoder {
        self.audit_schema_id = Some(id);
        self
    }

    /// The schema id of Avro [`CustomerErased`] values, if they are Avro.
    pub const fn audit_schema_id(&self) -> Option<u32> {
        self.audit_schema_id
    }

    /// The same encoder, writing `id` in the header of Avro
    /// [`CustomerEvicted`] values.
    pub const fn with_evicted_schema_id(mut self, id: u32) -> OutputEncoder {
        self.evicted_schema_id = Some(id);
        self
    }

    /// The schema id of Avro [`CustomerEvicted`] values, if they are Avro.
    pub const fn evicted_schema_id(&self) -> Option<u32> {
        self.evicted_schema_id
    }

    /// A JSON encoder: no schema ids needed.
    pub const fn json() -> OutputEncoder {
        let unused = OutputSchemaIds {
            stage_changes: 0,
            churn_risk: 0,
            funnel: 0,
            moments: 0,
        };
        OutputEncoder::new(OutputFormat::Json, unused)
    }

    /// The format values are written in.
    pub const fn format(&self) -> OutputFormat {
        self.format
    }

    /// The schema ids of Avro values.
    pub const fn schema_ids(&self) -> OutputSchemaIds {
        self.schema_ids
    }

    /// Replaces the contents of `buf` with the record value of `output`.
    pub fn encode(&self, output: &Output, buf: &mut Vec<u8>) {
        buf.clear();
        match self.avro_schema_id(output) {
            None => serde_json::to_writer(&mut *buf, output).expect(
                "writing to a Vec cannot fail, and outputs have no maps or fallible Serialize",
            ),
            Some(id) => {
                buf.push(MAGIC);
                buf.extend_from_slice(&id.to_be_bytes());
                encode_avro_datum(output, buf);
            }
        }
    }

    /// The schema id `output` is written under, `None` when it is JSON.
    const fn avro_schema_id(&self, output: &Output) -> Option<u32> {
        match (self.format, topic_kind(output)) {
            (OutputFormat::Json, _) => None,
            (OutputFormat::Avro, OutputKind::Audit) => match output {
                Output::CustomerErased(_) => self.audit_schema_id,
                _ => self.evicted_schema_id,
            },
            (OutputFormat::Avro, kind) => kind.schema_id(&self.schema_ids),
        }
    }

    /// Replaces the contents of `buf` with the record key of `output`: the
    /// customer id, or the decimal window start of a funnel window. The
    /// same in both formats.
    pub fn key(&self, output: &Output, buf: &mut Vec<u8>) {
        buf.clear();
        match output {
            Output::StageChanged(s) => buf.extend_from_slice(s.customer_id.as_bytes()),
            Output::ChurnRiskChanged(c) => buf.extend_from_slice(c.customer_id.as_bytes()),
            Output::CustomerEvicted(e) => buf.extend_from_slice(e.customer_id.as_bytes()),
            Output::CustomerErased(e) => buf.extend_from_slice(e.customer_id.as_bytes()),
            Output::MomentCompleted(m) | Output::MomentAbandoned(m) => {
                buf.extend_from_slice(m.customer_id.as_bytes());
            }
            Output::FunnelWindow(w) => {
                buf.extend_from_slice(Decimal::new(w.window_start).as_str().as_bytes());
            }
        }
    }
}

/// [`CustomerErased`] as JSON, with the `type` tag the outputs carry.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Audit<'a> {
    CustomerErased(&'a CustomerErased),
}

impl OutputEncoder {
    /// Replaces the contents of `buf` with the record value of an erasure
    /// confirmation; its key is the customer id.
    pub fn encode_erased(&self, erased: &CustomerErased, buf: &mut Vec<u8>) {
        buf.clear();
        match (self.format, self.audit_schema_id) {
            (OutputFormat::Avro, Some(id)) => {
                buf.push(MAGIC);
                buf.extend_from_slice(&id.to_be_bytes());
                customer_erased(erased, buf);
            }
            _ => {
                serde_json::to_writer(&mut *buf, &Audit::CustomerErased(erased))
                    .expect("writing to a Vec cannot fail, and the record has no maps");
            }
        }
    }
}

/// `schemas/customer_erased.avsc`, field by field.
fn customer_erased(e: &CustomerErased, buf: &mut Vec<u8>) {
    put_str(buf, &e.customer_id);
    put_long(buf, e.requested_at);
    put_long(buf, e.completed_at);
    put_long(buf, source_index(e.source));
    buf.push(u8::from(e.state_found));
}

/// The position of `s` among the symbols of the Avro enum `ErasureSource`.
const fn source_index(s: ErasureSource) -> i64 {
    match s {
        ErasureSource::Http => 0,
        ErasureSource::Topic => 1,
        ErasureSource::Consent => 2,
    }
}

/// Appends the Avro binary datum of `output` (no Confluent header) to `buf`,
/// per the schema of its [`OutputKind`].
pub fn encode_avro_datum(output: &Output, buf: &mut Vec<u8>) {
    match output {
        Output::StageChanged(s) => stage_changed(s, buf),
        Output::ChurnRiskChanged(c) => churn_risk_changed(c, buf),
        Output::FunnelWindow(w) => funnel_window(w, buf),
        Output::MomentCompleted(m) | Output::MomentAbandoned(m) => moment_ended(m, buf),
        Output::CustomerEvicted(e) => customer_evicted(e, buf),
        Output::CustomerErased(e) => customer_erased(e, buf),
    }
}

/// `schemas/moment_ended.avsc`, field by field.
fn moment_ended(m: &MomentEnded, buf: &mut Vec<u8>) {
    put_str(buf, &m.customer_id);
    put_count(buf, m.sequence);
    put_str(buf, &m.moment);
    put_long(buf, outcome_index(m.outcome));
    put_long(buf, m.started_at);
    put_long(buf, m.event_time);
    put_long(buf, m.duration_ms);
    put_opt_str(buf, m.trigger_event_id.as_deref());
    put_long(buf, m.detected_at);
}

/// The position of `o` among the symbols of the Avro enum `MomentOutcome`.
const fn outcome_index(o: MomentOutcome) -> i64 {
    match o {
        MomentOutcome::Completed => 0,
        MomentOutcome::Abandoned => 1,
    }
}

/// `schemas/customer_evicted.avsc`, field by field.
fn customer_evicted(e: &CustomerEvicted, buf: &mut Vec<u8>) {
    put_str(buf, &e.customer_id);
    put_long(buf, e.last_seen);
    put_long(buf, e.evicted_at);
    put_long(buf, e.detected_at);
    put_count(buf, e.last_stage_sequence);
    put_count(buf, e.last_churn_sequence);
}

/// `schemas/stage_changed.avsc`, field by field.
fn stage_changed(s: &StageChanged, buf: &mut Vec<u8>) {
    put_str(buf, &s.customer_id);
    put_count(buf, s.sequence);
    put_opt_str(buf, s.from_stage.as_deref());
    put_str(buf, &s.to_stage);
    put_long(buf, direction_index(s.direction));
    put_opt_str(buf, s.trigger_event_id.as_deref());
    put_opt_str(buf, s.trigger_action.as_deref());
    put_opt_str(buf, s.trigger_channel);
    put_long(buf, s.event_time);
    put_long(buf, s.detected_at);
    put_long(buf, s.time_in_previous_stage_ms);
    put_count(buf, s.touchpoint_count);
    put_opt(buf, s.time_since_first_touchpoint_ms, put_long);
}

/// `schemas/churn_risk_changed.avsc`, field by field.
fn churn_risk_changed(c: &ChurnRiskChanged, buf: &mut Vec<u8>) {
    put_str(buf, &c.customer_id);
    put_count(buf, c.sequence);
    put_double(buf, c.risk);
    put_long(buf, band_index(c.band));
    match c.previous_band {
        None => put_long(buf, 0),
        Some(band) => {
            put_long(buf, 1);
            put_long(buf, band_index(band));
        }
    }
    put_double(buf, c.p_alive);
    put_array(buf, &c.signals, |buf, signal| put_str(buf, signal));
    put_long(buf, cause_index(c.cause));
    put_opt_str(buf, c.trigger_event_id.as_deref());
    put_long(buf, c.event_time);
    put_long(buf, c.detected_at);
}

/// `schemas/funnel_window.avsc`, field by field.
fn funnel_window(w: &FunnelWindow, buf: &mut Vec<u8>) {
    put_count(buf, w.sequence);
    put_long(buf, w.window_start);
    put_long(buf, w.window_end);
    put_array(buf, &w.entries, stage_count);
    put_array(buf, &w.pairs, pair_count);
    put_count(buf, w.active_customers);
    put_double(buf, w.revenue);
    put_count(buf, w.late_events);
    put_array(buf, &w.channels, |buf, c| {
        put_str(buf, c.channel);
        put_count(buf, c.touchpoints);
    });
    experience_scores(buf, &w.scores.nps, &w.scores.csat, &w.scores.ces);
    put_array(buf, &w.scores_by_stage, |buf, s| {
        put_str(buf, &s.stage);
        experience_scores(buf, &s.nps, &s.csat, &s.ces);
    });
    put_array(buf, &w.time_to_convert, |buf, t| {
        put_str(buf, &t.from_stage);
        put_str(buf, &t.to_stage);
        put_count(buf, t.conversions);
        put_array(buf, &t.buckets, |buf, &n| put_count(buf, n));
        put_opt(buf, t.p50_ms, put_long);
        put_opt(buf, t.p90_ms, put_long);
    });
    put_array(buf, &w.moments, |buf, m| {
        put_str(buf, &m.moment);
        for n in [m.started, m.completed, m.abandoned] {
            put_count(buf, n);
        }
        put_opt(buf, m.abandonment_rate, put_double);
        put_array(buf, &m.buckets, |buf, &n| put_count(buf, n));
        put_opt(buf, m.p50_ms, put_long);
        put_opt(buf, m.p90_ms, put_long);
    });
}

/// The nested `NpsScore`, `CsatScore` and `CesScore` records.
fn experience_scores(buf: &mut Vec<u8>, nps: &NpsScore, csat: &CsatScore, ces: &CesScore) {
    for n in [nps.responses, nps.promoters, nps.passives, nps.detractors] {
        put_count(buf, n);
    }
    put_opt(buf, nps.score, put_double);
    put_count(buf, csat.responses);
    put_count(buf, csat.satisfied);
    put_opt(buf, csat.score, put_double);
    put_count(buf, ces.responses);
    put_opt(buf, ces.score, put_double);
}

/// The nested `StageCount` record.
fn stage_count(buf: &mut Vec<u8>, e: &StageCount) {
    put_str(buf, &e.stage);
    put_count(buf, e.count);
}

/// The nested `PairCount` record.
fn pair_count(buf: &mut Vec<u8>, p: &PairCount) {
    put_str(buf, &p.from_stage);
    put_str(buf, &p.to_stage);
    put_count(buf, p.conversions);
    put_count(buf, p.dropoffs);
    put_opt(buf, p.dropoff_ratio, put_double);
    put_count(buf, p.in_flight);
}

/// The position of `d` among the symbols of the Avro enum `Direction`.
const fn direction_index(d: Direction) -> i64 {
    match d {
        Direction::Advance => 0,
        Direction::Skip => 1,
        Direction::Regress => 2,
        Direction::Lapse => 3,
        Direction::Return => 4,
    }
}

/// The position of `b` among the symbols of the Avro enum `Band`.
const fn band_index(b: Band) -> i64 {
    match b {
        Band::Low => 0,
        Band::Medium => 1,
        Band::High => 2,
    }
}

/// The position of `c` among the symbols of the Avro enum `ChurnCause`.
const fn cause_index(c: ChurnCause) -> i64 {
    match c {
        ChurnCause::Event => 0,
        ChurnCause::Timer => 1,
    }
}

/// A count as a `long`. Avro has no unsigned type: a count above
/// `i64::MAX`, which no real stream reaches, is written as `i64::MAX`.
fn put_count(buf: &mut Vec<u8>, v: u64) {
    put_long(buf, i64::try_from(v).unwrap_or(i64::MAX));
}

/// A `double`: 8 bytes, little-endian.
fn put_double(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A `["null", "string"]` union: the branch index, then the string if any.
fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    put_opt(buf, s, put_str);
}

/// A `["null", T]` union: branch 0, or branch 1 and the value.
fn put_opt<T>(buf: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => put_long(buf, 0),
        Some(v) => {
            put_long(buf, 1);
            put(buf, v);
        }
    }
}

/// An array in one block: item count, items, then the terminating empty
/// block (just the 0 when there are no items).
fn put_array<T>(buf: &mut Vec<u8>, items: &[T], mut put: impl FnMut(&mut Vec<u8>, &T)) {
    if !items.is_empty() {
        put_long(buf, items.len() as i64);
        for item in items {
            put(buf, item);
        }
    }
    put_long(buf, 0);
}

#[cfg(test)]
mod tests;
