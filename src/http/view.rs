//! A customer's journey as `GET /customers/{id}` shows it.
//!
//! [`CustomerView`] is an owned copy built on the engine's thread from the
//! engine's public API and sent to the HTTP side; it holds nothing that
//! borrows from the engine. Times are RFC 3339 strings (UTC, millisecond
//! precision), absent when the engine has no value yet.

use serde::Serialize;

use crate::engine::Engine;
use crate::engine::customer::{Customer, NO_SCORE, NO_STAGE};
use crate::model::{Band, EventTime};

/// One customer's current journey.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerView {
    /// The customer id (the Kafka key).
    pub customer_id: String,
    /// Current stage; absent while the first touchpoint still waits for
    /// the watermark.
    pub stage: Option<String>,
    /// The stage's ordinal in the journey model.
    pub stage_ordinal: Option<u8>,
    /// When the current stage was entered (event time).
    pub stage_entered_at: Option<String>,
    /// Event time of the latest processed touchpoint.
    pub last_seen_at: Option<String>,
    /// Touchpoints processed for this customer.
    pub touchpoint_count: u32,
    /// Touchpoints received but still waiting for the watermark.
    pub pending_events: u64,
    /// Whether a conversion deadline from the current stage is running.
    pub conversion_pending: bool,
    /// Purchases and churn band.
    pub churn: ChurnView,
    /// Sequence numbers of the latest derived events, to match them on the
    /// output topics.
    pub sequences: Sequences,
    /// The customer's latest experience-score responses.
    pub scores: LatestScores,
    /// Their consent for `consent.purpose`.
    pub consent: ConsentView,
}

/// A customer's consent (docs/personal-data.md#consent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// `consent.mode`: `off`, `opt_out` or `opt_in`, to read the state by.
    pub mode: &'static str,
    /// `unknown` (never granted nor withdrawn), `granted` or `withdrawn`.
    pub state: &'static str,
    /// Event time of the latest grant or withdrawal.
    pub changed_at: Option<String>,
}

/// The latest response to each experience score (`journey.scores`);
/// absent when the customer never answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LatestScores {
    pub nps: Option<u8>,
    pub csat: Option<u8>,
    pub ces: Option<u8>,
}

/// The churn side of a journey.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChurnView {
    /// Current band; absent before the first purchase.
    pub band: Option<Band>,
    /// Purchases seen.
    pub purchases: u32,
    /// Event time of the first and latest purchase.
    pub first_purchase_at: Option<String>,
    pub last_purchase_at: Option<String>,
    /// A cancellation set the risk to 1 (until the next purchase).
    pub cancelled: bool,
}

/// Sequence numbers of the last events emitted for the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sequences {
    /// Last `sequence` on `journey.stage-changes` (0: none yet).
    pub stage_changes: u32,
    /// Last `sequence` on `journey.churn-risk` (0: none yet).
    pub churn_risk: u32,
}

impl CustomerView {
    /// The view of customer `id`, if the engine holds them.
    pub fn from_engine(engine: &Engine, id: &str) -> Option<CustomerView> {
        let customer = engine.customer(id)?;
        let rules = engine.rules();
        let stage = (customer.stage != NO_STAGE)
            .then(|| rules.stages.get(usize::from(customer.stage)))
            .flatten();
        Some(CustomerView {
            customer_id: customer.id.to_string(),
            stage: stage.map(|s| s.name.to_string()),
            stage_ordinal: stage.map(|s| s.ordinal),
            stage_entered_at: stage.and(rfc3339(customer.stage_since)),
            last_seen_at: rfc3339(customer.last_seen),
            touchpoint_count: customer.touchpoints,
            pending_events: customer.pending.into(),
            conversion_pending: customer.conversion_pending,
            churn: ChurnView::of(customer),
            sequences: Sequences {
                stage_changes: customer.stage_seq,
                churn_risk: customer.churn_seq,
            },
            scores: {
                let [nps, csat, ces] = customer.latest_scores.map(|s| (s != NO_SCORE).then_some(s));
                LatestScores { nps, csat, ces }
            },
            consent: ConsentView {
                mode: engine.consent_mode().as_str(),
                state: customer.consent.as_str(),
                changed_at: rfc3339(customer.consent_at),
            },
        })
    }
}

impl ChurnView {
    fn of(customer: &Customer) -> Self {
        let purchased = customer.purchases > 0;
        ChurnView {
            band: customer.band,
            purchases: customer.purchases,
            first_purchase_at: purchased
                .then(|| rfc3339(customer.first_purchase))
                .flatten(),
            last_purchase_at: purchased.then(|| rfc3339(customer.last_purchase)).flatten(),
            cancelled: customer.cancelled,
        }
    }
}

/// RFC 3339, or `None` for the "no value" sentinels.
fn rfc3339(t: EventTime) -> Option<String> {
    (t != EventTime::MIN && t != EventTime::MAX).then(|| t.to_rfc3339())
}
