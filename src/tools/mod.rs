//! Tools around the pipeline: the synthetic workload generator, the
//! producer that writes it to Kafka, a generated state changelog for the
//! restore benchmarks, and the demo.

pub mod changelog;
pub mod demo;
pub mod feed;
pub mod generate;

pub use changelog::GeneratedChangelog;
pub use generate::{
    DEFAULT_START, GenerateStats, GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig,
    InvalidGeneratorConfig, write_ndjson,
};
