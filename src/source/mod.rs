//! Where touchpoints and erasure requests come from.

pub mod erasure;
pub mod kafka;

#[cfg(test)]
mod tests;
