//! Tools around the pipeline: the synthetic workload generator, the
//! producer that writes it to Kafka, a generated state changelog for the
//! restore benchmarks, the demo, and fitting and applying the lifetime-value
//! models offline.

pub mod changelog;
pub mod demo;
pub mod feed;
pub mod generate;
pub mod model;

pub use changelog::GeneratedChangelog;
pub use generate::{
    DEFAULT_START, GenerateStats, GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig,
    InvalidGeneratorConfig, write_ndjson,
};
