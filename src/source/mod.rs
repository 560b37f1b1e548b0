//! Where touchpoints and erasure requests come from.

pub mod erasure;
pub mod group;
pub mod kafka;

#[cfg(test)]
mod tests;
