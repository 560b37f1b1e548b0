//! Tools around the pipeline: the synthetic workload generator, the
//! producer that writes it to Kafka, and the demo.

pub mod demo;
pub mod feed;
pub mod generate;

pub use generate::{
    DEFAULT_START, GenerateStats, GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig,
    InvalidGeneratorConfig, write_ndjson,
};
