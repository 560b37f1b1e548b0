//! `journeyd replay`: the engine fed from a file.
//!
//! Reads NDJSON touchpoints or an Avro object container file, runs the
//! engine in event-time mode and writes every derived output as one NDJSON
//! line with a `type` field. Invalid records are written too, as
//! `invalid_record` lines with their position and reason, so nothing is
//! silently dropped. The output depends only on the file and the
//! configuration: the same input gives byte-identical output.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::codec::file::RecordReader;
use crate::codec::{Invalid, Validator};
use crate::config::{Config, TimeMode};
use crate::engine::{Engine, EngineStats};
use crate::model::{Band, EventTime, Output};

/// What to replay and where to.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// NDJSON or Avro container file.
    pub input: PathBuf,
    /// NDJSON output; standard output when `None`.
    pub output: Option<PathBuf>,
    /// Show a progress spinner on stderr.
    pub progress: bool,
}

/// An invalid input record, as written to the replay output.
#[derive(Serialize)]
struct InvalidLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    position: u64,
    reason: &'static str,
    detail: &'a str,
}

/// Replays `options.input` with `config` (forced to event-time mode). The
/// wall clock is read once, only to reject timestamps from the future.
pub fn run(config: &Config, options: &ReplayOptions) -> anyhow::Result<ReplaySummary> {
    let wall_now = crate::clock::wall_now();
    let sink: Box<dyn Write> = match &options.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let started = crate::clock::Stopwatch::start();
    let mut summary = replay_into(
        config,
        options,
        wall_now,
        BufWriter::with_capacity(1 << 16, sink),
    )?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The deterministic core of [`run`], writing to any sink.
pub fn replay_into(
    config: &Config,
    options: &ReplayOptions,
    wall_now: EventTime,
    mut sink: impl Write,
) -> anyhow::Result<ReplaySummary> {
    let mut config = config.clone();
    config.time.mode = TimeMode::Event;
    let mut engine = Engine::new(&config)?;
    let validator = Validator::from_config(&config);
    let mut reader = RecordReader::open(&options.input)
        .with_context(|| format!("cannot read {}", options.input.display()))?
        .with_max_record_bytes(config.limits.max_message_bytes)
        .with_field_limits(config.limits.field_limits())
        .with_attributes(validator.attributes.clone());
    let progress = Progress::new(options.progress);
    let mut outputs = Vec::new();
    let mut summary = ReplaySummary::default();
    let mut latest = EventTime::MIN;
    while let Some(record) = reader
        .next_record()
        .with_context(|| format!("reading {} failed", options.input.display()))?
    {
        summary.records += 1;
        progress.tick(summary.records);
        let checked = record
            .result
            .and_then(|tp| validator.check(&tp, wall_now).map(|()| tp));
        match checked {
            Ok(tp) => {
                latest = latest.max(tp.occurred_at);
                let ingested = engine.ingest(0, &tp, latest, &mut outputs);
                if let Some(refused) = Invalid::not_ingested(ingested) {
                    write_invalid(&mut sink, record.position, refused, &mut summary)?;
                }
            }
            Err(invalid) => write_invalid(&mut sink, record.position, &invalid, &mut summary)?,
        }
        write_outputs(&mut sink, &mut outputs)?;
    }
    engine.finish(&mut outputs);
    write_outputs(&mut sink, &mut outputs)?;
    sink.flush()?;
    progress.finish();
    summary.fill_from(&engine);
    Ok(summary)
}

fn write_outputs(sink: &mut impl Write, outputs: &mut Vec<Output>) -> anyhow::Result<()> {
    for output in outputs.drain(..) {
        serde_json::to_writer(&mut *sink, &output)?;
        sink.write_all(b"\n")?;
    }
    Ok(())
}

fn write_invalid(
    sink: &mut impl Write,
    position: u64,
    invalid: &Invalid,
    summary: &mut ReplaySummary,
) -> anyhow::Result<()> {
    let reason = invalid.reason.as_str();
    *summary.invalid.entry(reason).or_default() += 1;
    let line = InvalidLine {
        kind: "invalid_record",
        position,
        reason,
        detail: &invalid.detail,
    };
    serde_json::to_writer(&mut *sink, &line)?;
    sink.write_all(b"\n")?;
    Ok(())
}

/// A spinner on stderr, when asked for.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress(enabled.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {human_pos} records ({per_sec}) {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        }))
    }

    fn tick(&self, records: u64) {
        if let Some(bar) = &self.0
            && records.is_multiple_of(4096)
        {
            bar.set_position(records);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// What a replay did, printed on stderr as the funnel summary.
#[derive(Clone, Debug, Default)]
pub struct ReplaySummary {
    pub records: u64,
    /// Invalid records by reason label.
    pub invalid: BTreeMap<&'static str, u64>,
    pub stats: EngineStats,
    /// `(stage, customers now in it)`, by ordinal.
    pub stages: Vec<(String, u64)>,
    /// `(from, to, conversions, drop-offs)` per conversion pair.
    pub pairs: Vec<(String, String, u64, u64)>,
    pub revenue: f64,
    /// `(moment, [started, completed, abandoned])` per journey moment.
    pub moments: Vec<(String, [u64; 3])>,
    pub tracked_customers: usize,
    pub elapsed: Duration,
}

impl ReplaySummary {
    fn fill_from(&mut self, engine: &Engine) {
        let rules = engine.rules();
        let stats = engine.stats();
        self.stages = rules
            .stages
            .iter()
            .zip(&stats.customers_per_stage)
            .map(|(s, &n)| (s.name.to_string(), n))
            .collect();
        let totals = engine.funnel_totals();
        self.pairs = rules
            .conversions
            .iter()
            .map(|c| {
                let name = |s| rules.stage_name(s).to_string();
                (
                    name(c.from),
                    name(c.to),
                    totals.conversions[c.index],
                    totals.dropoffs[c.index],
                )
            })
            .collect();
        self.revenue = totals.revenue;
        self.moments = (rules.moments.iter().zip(&stats.moments))
            .map(|(m, &counts)| (m.name.to_string(), counts))
            .collect();
        self.stats = stats.clone();
        self.tracked_customers = engine.tracked_customers();
    }
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let invalid: u64 = self.invalid.values().sum();
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.records as f64 / secs
        } else {
            0.0
        };
        writeln!(
            f,
            "Replayed {} records ({invalid} invalid) in {secs:.2} s ({rate:.0} records/s).",
            self.records
        )?;
        let s = &self.stats;
        writeln!(
            f,
            "Events applied {}, duplicates {}, late {}; stage changes {}, churn-band changes {}.",
            s.events, s.duplicates, s.late, s.stage_changes, s.churn_changes
        )?;
        let withdrawals: u64 = s.consent_erasures.iter().sum();
        if s.without_consent > 0 || withdrawals > 0 {
            writeln!(
                f,
                "Without consent {} (not processed); consent withdrawals {} (customers erased).",
                s.without_consent, withdrawals
            )?;
        }
        writeln!(
            f,
            "\nCustomers per stage ({} tracked):",
            self.tracked_customers
        )?;
        for (stage, n) in &self.stages {
            writeln!(f, "  {stage:<16} {n:>10}")?;
        }
        writeln!(f, "\nFunnel (all windows):")?;
        for (from, to, conversions, dropoffs) in &self.pairs {
            let total = conversions + dropoffs;
            let ratio = if total > 0 {
                format!("{:.1}%", 100.0 * *dropoffs as f64 / total as f64)
            } else {
                "-".into()
            };
            let pair = format!("{from} -> {to}");
            writeln!(
                f,
                "  {pair:<30} converted {conversions:>9}  dropped {dropoffs:>9}  drop-off {ratio:>6}"
            )?;
        }
        writeln!(f, "  revenue {:.2}", self.revenue)?;
        if !self.moments.is_empty() {
            writeln!(f, "\nJourney moments:")?;
        }
        for (moment, [started, completed, abandoned]) in &self.moments {
            let ended = completed + abandoned;
            let rate = if ended > 0 {
                format!("{:.1}%", 100.0 * *abandoned as f64 / ended as f64)
            } else {
                "-".into()
            };
            writeln!(
                f,
                "  {moment:<16} started {started:>9}  completed {completed:>9}  abandoned {abandoned:>9}  abandonment {rate:>6}"
            )?;
        }
        writeln!(f, "\nChurn bands:")?;
        for band in Band::ALL {
            writeln!(
                f,
                "  {:<16} {:>10}",
                band.as_str(),
                s.customers_per_band[band as usize]
            )?;
        }
        if !self.invalid.is_empty() {
            writeln!(f, "\nInvalid records by reason:")?;
            for (reason, n) in &self.invalid {
                writeln!(f, "  {reason:<24} {n:>8}")?;
            }
        }
        Ok(())
    }
}
