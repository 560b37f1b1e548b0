//! Where touchpoints come from.

pub mod kafka;
