//! Where derived events go.

pub mod kafka;
