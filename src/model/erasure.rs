//! Erasure of a customer (docs/erasure.md): the confirmation journeyd
//! publishes on the audit topic.

use compact_str::CompactString;
use serde::Serialize;

/// How an erasure request reached journeyd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureSource {
    /// `DELETE /customers/{id}` on some instance, forwarded through the
    /// erasure topic.
    Http,
    /// A record produced to the erasure topic by another system.
    Topic,
    /// A touchpoint withdrawing the customer's consent (`consent.mode`):
    /// the customer is erased but for their consent.
    Consent,
}

impl ErasureSource {
    /// Every source, for metric label pre-resolution.
    pub const ALL: [ErasureSource; 3] = [
        ErasureSource::Http,
        ErasureSource::Topic,
        ErasureSource::Consent,
    ];

    /// The wire name, also a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErasureSource::Http => "http",
            ErasureSource::Topic => "topic",
            ErasureSource::Consent => "consent",
        }
    }

    /// The source named `name` on the wire, if any.
    pub fn parse(name: &str) -> Option<ErasureSource> {
        ErasureSource::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// `journey.audit`: proof that a customer was erased from this instance.
///
/// Published by the instance that owns the customer's partition once the
/// customer is gone from its memory, de-duplication memory and timers;
/// derived events published before are not rewritten. An erasure request
/// is confirmed by the pipeline; a consent withdrawal by the engine, as
/// one of its outputs ([`crate::model::Output::CustomerErased`]), with the
/// withdrawal's event time as `requested_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomerErased {
    /// The customer erased (also the Kafka key).
    pub customer_id: CompactString,
    /// When the erasure was requested (epoch ms): the request's
    /// `requested_at`, else its Kafka timestamp.
    pub requested_at: i64,
    /// When journeyd removed the customer (epoch ms, wall clock).
    pub completed_at: i64,
    /// How the request arrived.
    pub source: ErasureSource,
    /// Whether this instance held state for the customer. `false` when the
    /// customer was never seen here, was already evicted or erased, or
    /// lives on a partition whose producers partition keys differently.
    pub state_found: bool,
}
