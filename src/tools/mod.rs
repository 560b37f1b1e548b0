//! Tools around the pipeline: the synthetic workload generator.

pub mod demo;
pub mod generate;

pub use generate::{
    DEFAULT_START, GenerateStats, GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig,
    InvalidGeneratorConfig, write_ndjson,
};
