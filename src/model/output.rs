//! The derived events journeyd publishes (docs/outputs.md).
//!
//! Field names here are the wire names: NDJSON output is these structs
//! serialized with a `type` tag, and the Avro schemas in `schemas/` use the
//! same names.

use compact_str::CompactString;
use serde::Serialize;

use super::{CustomerErased, EventTime};

/// How a stage change moved the customer through the journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// To the next stage up (or into the first stage of the journey).
    Advance,
    /// To a higher stage, passing over at least one stage.
    Skip,
    /// Down to a lower stage by an explicit regress rule.
    Regress,
    /// Out of the journey into the lapsed stage.
    Lapse,
    /// Back from the lapsed stage.
    Return,
}

impl Direction {
    /// Every direction, for metric label pre-resolution and summaries.
    pub const ALL: [Direction; 5] = [
        Direction::Advance,
        Direction::Skip,
        Direction::Regress,
        Direction::Lapse,
        Direction::Return,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Advance => "advance",
            Direction::Skip => "skip",
            Direction::Regress => "regress",
            Direction::Lapse => "lapse",
            Direction::Return => "return",
        }
    }
}

/// A churn-risk band. Ordered from safest to riskiest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Low,
    Medium,
    High,
}

impl Band {
    /// Every band, lowest first.
    pub const ALL: [Band; 3] = [Band::Low, Band::Medium, Band::High];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }
}

/// What made the churn risk change band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnCause {
    /// A touchpoint of the customer.
    Event,
    /// Time alone: P(alive) decayed, or a negative signal left its window.
    Timer,
}

/// `journey.stage-changes`: a customer moved from one stage to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageChanged {
    pub customer_id: CompactString,
    /// Per-customer, dense: 1, 2, 3, ... on this output.
    pub sequence: u64,
    /// `None` when the customer enters the journey.
    pub from_stage: Option<CompactString>,
    pub to_stage: CompactString,
    pub direction: Direction,
    /// The touchpoint that caused it; `None` when a timer did (lapse by inactivity).
    pub trigger_event_id: Option<CompactString>,
    pub trigger_action: Option<CompactString>,
    pub trigger_channel: Option<&'static str>,
    /// Event time of the change: the trigger's `occurred_at`, or the timer's due time.
    pub event_time: i64,
    /// When journeyd detected it (the driver's processing time).
    pub detected_at: i64,
    /// Milliseconds spent in `from_stage`; 0 on entry.
    pub time_in_previous_stage_ms: i64,
    /// Touchpoints of this customer processed so far.
    pub touchpoint_count: u64,
    /// Milliseconds since the journey's first touchpoint; `None` when the
    /// journey began before its start was kept (state restored from an
    /// older changelog format).
    pub time_since_first_touchpoint_ms: Option<i64>,
}

/// `journey.churn-risk`: a customer's churn-risk band changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChurnRiskChanged {
    pub customer_id: CompactString,
    /// Per-customer, dense: 1, 2, 3, ... on this output.
    pub sequence: u64,
    /// Risk in [0, 1].
    pub risk: f64,
    pub band: Band,
    /// `None` the first time the customer gets a band.
    pub previous_band: Option<Band>,
    /// The buy-till-you-die probability that the customer is still active.
    pub p_alive: f64,
    /// Names of the negative signals that raised the risk (in config order).
    pub signals: Vec<CompactString>,
    pub cause: ChurnCause,
    /// The touchpoint that caused it, when `cause` is `event`.
    pub trigger_event_id: Option<CompactString>,
    pub event_time: i64,
    pub detected_at: i64,
}

/// How a journey moment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MomentOutcome {
    /// A completion action came before the deadline.
    Completed,
    /// The deadline passed first.
    Abandoned,
}

impl MomentOutcome {
    /// Both outcomes, in the order of the Avro enum.
    pub const ALL: [MomentOutcome; 2] = [MomentOutcome::Completed, MomentOutcome::Abandoned];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MomentOutcome::Completed => "completed",
            MomentOutcome::Abandoned => "abandoned",
        }
    }
}

/// `journey.moments`: a customer's journey moment (`cart`, `checkout`)
/// ended, completed ([`Output::MomentCompleted`]) or abandoned
/// ([`Output::MomentAbandoned`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MomentEnded {
    pub customer_id: CompactString,
    /// Per-customer, dense: 1, 2, 3, ... on this output.
    pub sequence: u64,
    /// The moment's configured name.
    pub moment: CompactString,
    /// Also told by the JSON `type` tag; the Avro record's way to tell.
    pub outcome: MomentOutcome,
    /// Event time of the start that opened it.
    pub started_at: i64,
    /// The completing touchpoint's `occurred_at`, or the deadline.
    pub event_time: i64,
    /// `event_time - started_at`: how long it took to complete, or how
    /// long it was open before it was abandoned.
    pub duration_ms: i64,
    /// The completing touchpoint; `None` when abandoned.
    pub trigger_event_id: Option<CompactString>,
    /// When journeyd detected it (the driver's processing time).
    pub detected_at: i64,
}

/// Entries into one stage within a funnel window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageCount {
    pub stage: CompactString,
    pub count: u64,
}

/// Conversions and drop-offs for one stage pair within a funnel window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairCount {
    pub from_stage: CompactString,
    pub to_stage: CompactString,
    pub conversions: u64,
    pub dropoffs: u64,
    /// `dropoffs / (dropoffs + conversions)`; `None` when both are zero.
    pub dropoff_ratio: Option<f64>,
    /// Customers whose deadline for this pair was still running at the
    /// window's end: neither converted nor dropped off yet, and never
    /// counted as dropped.
    pub in_flight: u64,
}

/// `journey.funnel`: one closed tumbling event-time window, keyed by its start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunnelWindow {
    /// Dense per processor: 1, 2, 3, ... in window order.
    pub sequence: u64,
    pub window_start: i64,
    pub window_end: i64,
    /// Entries per stage, in stage-ordinal order; every stage is listed.
    pub entries: Vec<StageCount>,
    /// One row per configured conversion pair, in config order.
    pub pairs: Vec<PairCount>,
    /// Distinct customers with a touchpoint in the window.
    pub active_customers: u64,
    /// Sum of `value` over revenue actions in the window.
    pub revenue: f64,
    /// Late events that arrived while this window was the oldest open one and
    /// belonged to an already-emitted window (so are not in any counts).
    pub late_events: u64,
    /// Touchpoints per channel, in the channel vocabulary's order (`other`
    /// last); channels without a touchpoint in the window are left out.
    pub channels: Vec<ChannelCount>,
    /// NPS, CSAT and CES over every response in the window.
    pub scores: ExperienceScores,
    /// The same per stage the customers were in when answering, in
    /// stage-ordinal order; stages without a response are left out.
    pub scores_by_stage: Vec<StageScores>,
    /// Time to convert per stage pair, in config order; pairs without a
    /// conversion in the window are left out.
    pub time_to_convert: Vec<ConversionTimes>,
    /// Per journey moment, in config order; moments with nothing in the
    /// window are left out.
    pub moments: Vec<MomentCounts>,
}

/// One journey moment in a funnel window: moments started, completed and
/// abandoned in it (each counted in the window of its own event time: the
/// start, the completion, the deadline), and how long the completed ones
/// took.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MomentCounts {
    pub moment: CompactString,
    pub started: u64,
    pub completed: u64,
    pub abandoned: u64,
    /// `abandoned / (abandoned + completed)`; `None` when both are zero.
    pub abandonment_rate: Option<f64>,
    /// Completed moments per duration bucket (the time-to-convert
    /// buckets, 1 min to 180 d and the rest).
    pub buckets: Vec<u64>,
    /// Median and 90th percentile duration, ms; `None` without completions.
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

/// How long one stage pair's conversions in a window took.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversionTimes {
    pub from_stage: CompactString,
    pub to_stage: CompactString,
    /// Conversions counted in the buckets.
    pub conversions: u64,
    /// Conversions per bucket, the buckets' upper bounds being 1 min,
    /// 5 min, 15 min, 1 h, 4 h, 12 h, 1 d, 3 d, 7 d, 14 d, 30 d, 90 d,
    /// 180 d, and the rest.
    pub buckets: Vec<u64>,
    /// Median and 90th percentile, ms, interpolated in their buckets.
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

/// Touchpoints of one channel in a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelCount {
    /// The channel's name (`web`, ..., `other`).
    pub channel: &'static str,
    pub touchpoints: u64,
}

/// Experience scores of a window (or of one stage in it).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExperienceScores {
    pub nps: NpsScore,
    pub csat: CsatScore,
    pub ces: CesScore,
}

/// Net Promoter Score: % promoters minus % detractors, -100 to 100;
/// `None` without responses.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NpsScore {
    pub responses: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub score: Option<f64>,
}

/// Customer satisfaction: % of responses counted satisfied, 0 to 100.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CsatScore {
    pub responses: u64,
    pub satisfied: u64,
    pub score: Option<f64>,
}

/// Customer effort: the mean response.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CesScore {
    pub responses: u64,
    pub score: Option<f64>,
}

/// The scores of the customers in one stage when they answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageScores {
    pub stage: CompactString,
    pub nps: NpsScore,
    pub csat: CsatScore,
    pub ces: CesScore,
}

/// `journey.audit`: a customer inactive for `time.state_ttl` was dropped
/// from state (their changelog record is tombstoned). Their next touchpoint
/// starts a new journey whose sequences start again at 1, so a consumer
/// that de-duplicates by `(customer_id, sequence)` resets on this record.
/// Emitted after the customer's final lapse and churn events.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerEvicted {
    pub customer_id: CompactString,
    /// Event time of the customer's latest touchpoint.
    pub last_seen: i64,
    /// Event time of the eviction: `last_seen + state_ttl`.
    pub evicted_at: i64,
    /// When journeyd evicted them (the driver's processing time).
    pub detected_at: i64,
    /// Sequence of the last `StageChanged` of the journey that ended (0: none).
    pub last_stage_sequence: u64,
    /// Sequence of the last `ChurnRiskChanged` of that journey (0: none).
    pub last_churn_sequence: u64,
}

/// Any derived output of the engine.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    StageChanged(StageChanged),
    ChurnRiskChanged(ChurnRiskChanged),
    FunnelWindow(FunnelWindow),
    /// A journey moment completed before its deadline.
    MomentCompleted(MomentEnded),
    /// A journey moment's deadline passed first.
    MomentAbandoned(MomentEnded),
    /// On the audit topic, beside the erasure confirmations.
    CustomerEvicted(CustomerEvicted),
    /// On the audit topic: a consent withdrawal erased the customer
    /// (`source = consent`); the same record as an erasure request's
    /// confirmation.
    CustomerErased(CustomerErased),
}

/// Which output topic (and Avro schema) an output belongs to: **the one
/// table of output types**. Everything that lists outputs iterates it: the
/// `[outputs]` topics and `output_schema_ids`
/// ([`crate::config::OutputsConfig::topic`]), the topics the pipeline
/// sends to and counts deliveries on, the schemas registered and their
/// subjects ([`crate::registry::register_outputs`]), the topics start-up
/// checks or creates, and the topics `journeyd demo` creates and reads.
/// A new output type is a variant here, its model type and [`Output`]
/// variant, its `[outputs]` key and default, its schema
/// (`codec/schemas.rs`), its encoding (`codec/output.rs`) and the engine
/// code that emits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputKind {
    /// `StageChanged`, on `[outputs] stage_changes`.
    StageChanges,
    /// `ChurnRiskChanged`, on `[outputs] churn_risk`.
    ChurnRisk,
    /// `FunnelWindow`, on `[outputs] funnel`.
    Funnel,
    /// `MomentCompleted` and `MomentAbandoned`, on `[outputs] moments`.
    Moments,
    /// `CustomerEvicted`, and `CustomerErased` of a consent withdrawal, on
    /// `[outputs] audit` beside the erasure confirmations; their schema ids
    /// are not among `output_schema_ids`.
    Audit,
}

impl OutputKind {
    /// Every kind with a schema id in `output_schema_ids`.
    pub const ALL: [OutputKind; 4] = [
        OutputKind::StageChanges,
        OutputKind::ChurnRisk,
        OutputKind::Funnel,
        OutputKind::Moments,
    ];

    /// Every kind, [`OutputKind::Audit`] included, indexed by
    /// [`OutputKind::index`].
    pub const EVERY: [OutputKind; 5] = [
        OutputKind::StageChanges,
        OutputKind::ChurnRisk,
        OutputKind::Funnel,
        OutputKind::Moments,
        OutputKind::Audit,
    ];

    /// How many kinds there are.
    pub const COUNT: usize = OutputKind::EVERY.len();

    /// The configuration key of the topic (`[outputs]` and
    /// `output_schema_ids`); also a low-cardinality metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutputKind::StageChanges => "stage_changes",
            OutputKind::ChurnRisk => "churn_risk",
            OutputKind::Funnel => "funnel",
            OutputKind::Moments => "moments",
            OutputKind::Audit => "audit",
        }
    }

    /// The kind in words, for people (`journeyd demo`).
    pub const fn title(self) -> &'static str {
        match self {
            OutputKind::StageChanges => "stages",
            OutputKind::ChurnRisk => "churn",
            OutputKind::Funnel => "funnel",
            OutputKind::Moments => "moments",
            OutputKind::Audit => "audit",
        }
    }

    /// Whether its records follow customers' changes, keyed by customer
    /// id (the high-volume topics); funnel windows and audit records are
    /// few.
    pub const fn per_customer(self) -> bool {
        matches!(
            self,
            OutputKind::StageChanges | OutputKind::ChurnRisk | OutputKind::Moments
        )
    }

    /// Its place in [`OutputKind::EVERY`], for tables indexed by kind.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl Output {
    /// Which output topic (and schema) it belongs to.
    pub const fn kind(&self) -> OutputKind {
        match self {
            Output::StageChanged(_) => OutputKind::StageChanges,
            Output::ChurnRiskChanged(_) => OutputKind::ChurnRisk,
            Output::FunnelWindow(_) => OutputKind::Funnel,
            Output::MomentCompleted(_) | Output::MomentAbandoned(_) => OutputKind::Moments,
            Output::CustomerEvicted(_) | Output::CustomerErased(_) => OutputKind::Audit,
        }
    }

    /// The event time the output is about.
    pub fn event_time(&self) -> EventTime {
        EventTime(match self {
            Output::StageChanged(s) => s.event_time,
            Output::ChurnRiskChanged(c) => c.event_time,
            Output::FunnelWindow(w) => w.window_start,
            Output::MomentCompleted(m) | Output::MomentAbandoned(m) => m.event_time,
            Output::CustomerEvicted(e) => e.evicted_at,
            Output::CustomerErased(e) => e.requested_at,
        })
    }
}
