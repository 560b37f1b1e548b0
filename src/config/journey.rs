//! The journey model as data: stages, entry signals, lapse, regress rules
//! and conversion timeouts. Defaults are the model of docs/journey-model.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Stages and the rules between them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JourneyConfig {
    /// Every stage with its ordinal. Ordinals are unique; the lapse stage has
    /// the lowest, the customer's entry stage the next.
    pub stages: Vec<StageConfig>,
    /// The stage every new customer enters unless their first event signals higher.
    pub entry_stage: String,
    /// How customers leave the journey.
    pub lapse: LapseConfig,
    /// Signals that enter a stage. A customer's stage is the highest one signalled.
    pub signals: Vec<EntrySignal>,
    /// Explicit downward moves (none by default).
    pub regress: Vec<RegressRule>,
    /// Conversion deadlines per stage pair, for drop-off detection.
    pub conversions: Vec<ConversionConfig>,
    /// Actions whose `value` counts as revenue in the funnel windows.
    pub revenue_actions: Vec<String>,
    /// Experience scores: NPS, CSAT and CES responses.
    pub scores: ScoresConfig,
    /// Journey moments (`[[journey.moments]]`): a start action opens one,
    /// a completion action within `within` completes it, otherwise it is
    /// abandoned (docs/journey-model.md#journey-moments).
    pub moments: Vec<MomentConfig>,
}

/// The most moments `journey.moments` may list: each costs every
/// customer 16 bytes of state and every funnel window a row.
pub const MAX_MOMENTS: usize = 16;

/// One journey moment: `start` opens it for a customer, `complete` within
/// `within` of the latest start completes it; when `within` passes first,
/// it is abandoned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentConfig {
    /// The name on outputs and metrics (`cart`): lowercase letters,
    /// digits and `_`, at most 32 characters.
    pub name: String,
    /// Actions that open the moment (or extend an open one's deadline).
    pub start: Vec<String>,
    /// Actions that complete an open moment.
    pub complete: Vec<String>,
    /// How long after its latest start an open moment may complete.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

/// Experience-score responses (`[journey.scores]`): which action carries
/// each score in its `value`, and the scales. A response off its scale (or
/// not a whole number) is not counted; the touchpoint is processed as any
/// other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoresConfig {
    /// Net Promoter Score responses, 0 to `nps_max`.
    pub nps_action: String,
    pub nps_max: u8,
    /// Responses at or above this are promoters.
    pub nps_promoter_min: u8,
    /// Responses at or below this are detractors; those between, passives.
    pub nps_detractor_max: u8,
    /// Customer satisfaction responses, 1 to `csat_max`.
    pub csat_action: String,
    pub csat_max: u8,
    /// Responses at or above this count as satisfied.
    pub csat_satisfied_min: u8,
    /// Customer effort responses, 1 to `ces_max`.
    pub ces_action: String,
    pub ces_max: u8,
}

impl Default for ScoresConfig {
    fn default() -> Self {
        ScoresConfig {
            nps_action: "nps_response".to_owned(),
            nps_max: 10,
            nps_promoter_min: 9,
            nps_detractor_max: 6,
            csat_action: "csat_response".to_owned(),
            csat_max: 5,
            csat_satisfied_min: 4,
            ces_action: "ces_response".to_owned(),
            ces_max: 7,
        }
    }
}

/// One stage of the journey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The name used in outputs, metrics and rules.
    pub name: String,
    /// Position in the journey; higher is further along.
    pub ordinal: u8,
}

/// Leaving the journey: by explicit signal or by inactivity (`time.lapse_after`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LapseConfig {
    /// The lapsed stage's name.
    pub stage: String,
    /// Actions that lapse the customer at once, from any stage.
    pub actions: Vec<String>,
}

/// An entry signal: events matching it enter `stage`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySignal {
    /// The stage entered.
    pub stage: String,
    /// Any of these actions matches.
    pub actions: Vec<String>,
    /// Only events from this channel match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only events with `value >= min_value` match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    /// Only events with `value <= max_value` match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    /// Windowed: fires when at least `count` matching events fall within `within`
    /// (event time, the customer's own history). Needs `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The window for `count`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub within: Option<Duration>,
}

/// An explicit downward move.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressRule {
    /// The action that triggers it.
    pub action: String,
    /// Applies only to customers currently in one of these stages.
    pub from: Vec<String>,
    /// The stage they move to; below every stage in `from`.
    pub to: String,
    /// Only events from this channel match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only events with `value >= min_value` match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    /// Only events with `value <= max_value` match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
}

/// A conversion deadline: a customer entering `from` who has not reached
/// `to` (or higher) within `timeout` has dropped off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionConfig {
    pub from: String,
    pub to: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

const DAY: u64 = 86_400;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn signal(stage: &str, actions: &[&str]) -> EntrySignal {
    EntrySignal {
        stage: stage.to_owned(),
        actions: strings(actions),
        channel: None,
        min_value: None,
        max_value: None,
        count: None,
        within: None,
    }
}

fn moment(name: &str, start: &str, complete: &str, minutes: u64) -> MomentConfig {
    MomentConfig {
        name: name.to_owned(),
        start: strings(&[start]),
        complete: strings(&[complete]),
        within: Duration::from_secs(minutes * 60),
    }
}

fn conversion(from: &str, to: &str, days: u64) -> ConversionConfig {
    ConversionConfig {
        from: from.to_owned(),
        to: to.to_owned(),
        timeout: Duration::from_secs(days * DAY),
    }
}

impl Default for JourneyConfig {
    fn default() -> Self {
        let stages = [
            "lapsed",
            "awareness",
            "consideration",
            "purchase",
            "retention",
            "advocacy",
        ]
        .iter()
        .zip(0u8..)
        .map(|(name, ordinal)| StageConfig {
            name: (*name).to_owned(),
            ordinal,
        })
        .collect();
        let signals = vec![
            signal(
                "awareness",
                &[
                    "ad_click",
                    "ad_impression",
                    "social_engagement",
                    "search_click",
                ],
            ),
            signal(
                "consideration",
                &[
                    "pricing_view",
                    "review_read",
                    "comparison_view",
                    "demo_request",
                    "add_to_cart",
                ],
            ),
            EntrySignal {
                count: Some(3),
                within: Some(Duration::from_secs(7 * DAY)),
                ..signal("consideration", &["product_view"])
            },
            signal("purchase", &["purchase"]),
            EntrySignal {
                count: Some(2),
                within: Some(Duration::from_secs(180 * DAY)),
                ..signal("retention", &["purchase"])
            },
            signal("retention", &["subscription_renewed"]),
            signal("advocacy", &["referral_sent"]),
            EntrySignal {
                min_value: Some(4.0),
                ..signal("advocacy", &["review_posted"])
            },
            EntrySignal {
                min_value: Some(9.0),
                ..signal("advocacy", &["nps_response"])
            },
        ];
        JourneyConfig {
            stages,
            entry_stage: "awareness".to_owned(),
            lapse: LapseConfig::default(),
            signals,
            regress: Vec::new(),
            conversions: vec![
                conversion("awareness", "consideration", 30),
                conversion("consideration", "purchase", 7),
                conversion("purchase", "retention", 180),
                conversion("retention", "advocacy", 365),
            ],
            revenue_actions: strings(&["purchase"]),
            scores: ScoresConfig::default(),
            moments: vec![
                moment("cart", "add_to_cart", "purchase", 60),
                moment("checkout", "checkout_started", "purchase", 30),
            ],
        }
    }
}

impl Default for LapseConfig {
    fn default() -> Self {
        LapseConfig {
            stage: "lapsed".to_owned(),
            actions: strings(&["subscription_cancelled", "account_closed"]),
        }
    }
}
