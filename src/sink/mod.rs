//! Where derived events go.

pub mod kafka;
pub mod transactions;
