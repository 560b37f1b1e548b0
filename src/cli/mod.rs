//! The `journeyd` command line: argument parsing and dispatch.
//!
//! Each subcommand is a thin wrapper: it loads the configuration, calls the
//! library function that does the work and reports how it ended.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

mod generate;
mod model;

use self::generate::GenerateArgs;
use self::model::ModelArgs;
use crate::config::Config;
use crate::replay::{self, ReplayOptions};

/// A real-time customer-journey processor.
#[derive(Debug, Parser)]
#[command(name = "journeyd", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "JOURNEYD_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume touchpoints from Kafka, publish derived events and serve
    /// metrics until SIGTERM or SIGINT.
    Run {
        /// The configuration file (defaults and JOURNEYD__* variables apply).
        #[arg(long, env = "JOURNEYD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The whole pipeline on an embedded Kafka-protocol cluster with a
    /// built-in clickstream, metrics on :9464 and a live summary; needs
    /// nothing installed. Ctrl-C ends it.
    Demo {
        /// Touchpoints per second the built-in generator produces, at most.
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        /// Customers the generator simulates.
        #[arg(long, default_value_t = 200_000)]
        customers: u64,
        /// HTTP port for /metrics, /healthz, /readyz and /customers/{id}.
        #[arg(long, default_value_t = 9464)]
        http_port: u16,
        /// Stop by itself after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Process an NDJSON or Avro container file offline, deterministically
    /// (event-time mode), writing derived events as NDJSON and a funnel
    /// summary on stderr.
    Replay {
        /// The input: NDJSON touchpoints, or an Avro object container file.
        file: PathBuf,
        /// Where to write derived events (NDJSON); standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The configuration file (defaults apply without one).
        #[arg(long, env = "JOURNEYD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Synthetic, realistic touchpoints: NDJSON to a file (deterministic
    /// per seed), or produced to Kafka at a target rate for load tests.
    Generate(GenerateArgs),
    /// Fit the churn and spend models to purchase summaries, and compute
    /// customer lifetime value: offline, from standard input.
    Model(ModelArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // The demo draws a live summary on stderr; routine log lines would
    // interleave with it, so it logs only warnings unless RUST_LOG says more.
    let default_level = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    };
    init_tracing(cli.log_format, default_level);
    match cli.command {
        Command::Run { config } => crate::runtime::run(Config::load(config.as_deref())?),
        Command::Demo {
            rate,
            customers,
            http_port,
            duration,
        } => {
            let options = crate::tools::demo::DemoOptions {
                rate,
                customers,
                http_port,
                duration: duration.map(std::time::Duration::from_secs),
            };
            crate::tools::demo::run(&options)
        }
        Command::Replay { file, out, config } => {
            let config = Config::load(config.as_deref())?;
            let options = ReplayOptions {
                input: file,
                output: out,
                progress: std::io::stderr().is_terminal(),
            };
            let summary = replay::run(&config, &options)?;
            eprint!("{summary}");
            Ok(())
        }
        Command::Generate(args) => generate::run(args),
        Command::Model(args) => model::run(args),
    }
}

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is not an error worth reporting.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
