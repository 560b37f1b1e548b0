//! `journeyd generate`: the synthetic clickstream, to a file or to Kafka.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::clock::Stopwatch;
use crate::tools::feed::{self, FeedPlan, FeedStats, Timing};
use crate::tools::{GeneratorConfig, write_ndjson};

/// How often progress is logged while producing to Kafka.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Options of `journeyd generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of customers to simulate (per run, when live).
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Output file; standard output if absent (ignored with --brokers).
    #[arg(long, conflicts_with = "brokers")]
    out: Option<PathBuf>,
    /// Random seed: the same seed gives the same records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated event-time span in days.
    #[arg(long, default_value_t = 120)]
    days: u64,
    /// Share of deliberately invalid records.
    #[arg(long, default_value_t = 0.002)]
    invalid_ratio: f64,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// Produce to this Kafka cluster (`bootstrap.servers`) instead of
    /// writing a file.
    #[arg(long)]
    brokers: Option<String>,
    /// The topic to produce to.
    #[arg(long, default_value = "touchpoints", requires = "brokers")]
    topic: String,
    /// Records per second at most; 0: as fast as the broker takes them.
    #[arg(long, default_value_t = 1_000, requires = "brokers")]
    rate: u64,
    /// How records are timed when producing to Kafka.
    #[arg(long, value_enum, default_value_t = Timestamps::Live, requires = "brokers")]
    timestamps: Timestamps,
    /// A librdkafka producer property, `KEY=VALUE` (repeatable): security
    /// settings (`security.protocol`, `sasl.*`, `ssl.*`) or tuning.
    #[arg(short = 'X', long = "property", value_parser = parse_property, requires = "brokers")]
    properties: Vec<(String, String)>,
}

/// How records produced to Kafka are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Timestamps {
    /// Stamped with the wall clock as they leave, on the demo's compressed
    /// calendar (one simulated day every two seconds); runs of `--customers`
    /// repeat with new ids until stopped or `--limit` is reached.
    Live,
    /// One pass with the generator's own timestamps (`--seed`, `--days`),
    /// the records `--out` would write.
    Generated,
}

/// Runs `journeyd generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let generator = GeneratorConfig {
        customers: args.customers,
        seed: args.seed,
        span: Duration::from_secs(args.days * 86_400),
        invalid_ratio: args.invalid_ratio,
        ..GeneratorConfig::default()
    };
    generator.validate()?;
    match args.brokers {
        Some(brokers) => {
            let timing = match args.timestamps {
                Timestamps::Live => Timing::Live {
                    customers: args.customers,
                },
                Timestamps::Generated => Timing::AsGenerated(generator),
            };
            let plan = FeedPlan {
                bootstrap: brokers,
                topic: args.topic,
                rate: (args.rate > 0).then_some(args.rate),
                timing,
                limit: args.limit,
                client_id: "journeyd-generate".into(),
                properties: args.properties,
            };
            produce(plan)
        }
        None => write_file(&generator, args.limit, args.out),
    }
}

fn write_file(
    cfg: &GeneratorConfig,
    limit: Option<u64>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let stats = match out {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            write_ndjson(cfg, limit, file)?
        }
        None => write_ndjson(cfg, limit, std::io::stdout().lock())?,
    };
    tracing::info!(
        records = stats.records,
        invalid = stats.invalid,
        customers = cfg.customers,
        "Generated workload."
    );
    Ok(())
}

/// Produces until the plan ends or SIGINT/SIGTERM, logging progress; an
/// error if any record was not delivered.
fn produce(plan: FeedPlan) -> anyhow::Result<()> {
    let (topic, bootstrap) = (plan.topic.clone(), plan.bootstrap.clone());
    let stats = Arc::new(FeedStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feed::spawn(plan, Arc::clone(&stats), Arc::clone(&stop))?;
    tracing::info!(%bootstrap, %topic, "Producing; Ctrl-C stops.");
    let clock = Stopwatch::start();
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(watch(&feed, &stats, &stop, &clock));
    let result = feed
        .join()
        .map_err(|_| anyhow::anyhow!("the producer thread panicked"))?;
    let (delivered, failed) = (stats.delivered.load(Relaxed), stats.failed.load(Relaxed));
    let secs = clock.elapsed().as_secs_f64();
    tracing::info!(
        delivered,
        failed,
        invalid = stats.invalid.load(Relaxed),
        seconds = format_args!("{secs:.1}"),
        per_second = format_args!("{:.0}", delivered as f64 / secs.max(1e-3)),
        "Done."
    );
    result?;
    anyhow::ensure!(
        failed == 0,
        "{failed} records were not delivered to {topic}"
    );
    Ok(())
}

/// Waits for the producer to end, stopping it on SIGINT or SIGTERM and
/// logging progress meanwhile.
async fn watch(
    feed: &std::thread::JoinHandle<anyhow::Result<()>>,
    stats: &FeedStats,
    stop: &AtomicBool,
    clock: &Stopwatch,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut last_report = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(()) = async { term.as_mut()?.recv().await } => break,
            _ = ticker.tick() => {
                if feed.is_finished() {
                    return;
                }
                if clock.elapsed() - last_report >= PROGRESS_EVERY {
                    last_report = clock.elapsed();
                    progress(stats);
                }
            }
        }
    }
    tracing::info!("Stopping: flushing what is queued.");
    stop.store(true, Relaxed);
}

fn progress(stats: &FeedStats) {
    tracing::info!(
        delivered = stats.delivered.load(Relaxed),
        failed = stats.failed.load(Relaxed),
        "Producing."
    );
}

/// Parses `KEY=VALUE`.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_key_value_pairs() {
        assert_eq!(
            parse_property("security.protocol=SASL_SSL"),
            Ok(("security.protocol".into(), "SASL_SSL".into()))
        );
        assert_eq!(parse_property("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=x").is_err());
    }
}
