//! Where derived events go.

pub mod kafka;
pub mod transactions;

/// Identifies one output handed to the producer, in its delivery report;
/// dense and increasing (the commit tracker, `runtime::acks`, numbers them).
pub type OutputId = u64;
