//! journeyd's integration tests, as one test binary: each module is one
//! area (its module docs say what it checks), and the helpers in
//! [`common`] are compiled once for all of them. Run one area with a
//! filter on its module path, e.g. `cargo test --test it replay::`.
//!
//! `tests/codec.rs` stays a binary of its own: it installs a counting global
//! allocator, which would otherwise be the allocator of every test here.
//!
//! Proptest keeps the regressions of a property in this binary in
//! `tests/proptest-regressions/<module>.txt` (found from `main.rs`, beside
//! which the module's file lies).

mod common;

mod churn_closed_form;
mod config;
mod demo;
mod deploy;
mod doc_links;
mod engine_capacity;
mod engine_changelog;
mod engine_clock;
mod engine_consent;
mod engine_dedupe;
mod engine_funnel;
mod engine_moments;
mod engine_partitions;
mod engine_properties;
mod engine_restore;
mod engine_rewind;
mod engine_scenarios;
mod erasure;
mod exactly_once;
mod generate_kafka;
mod generator;
mod http;
mod partition_index;
mod pipeline;
mod prometheus_alerts;
mod registry;
mod replay;
mod routing;
mod secrets;
mod state;
