//! The demo's terminal view: a full frame (under 80 columns, 23 lines) for
//! a terminal, or one compact `key=value` line for logs and pipes.
//!
//! Rendering is pure: a [`Frame`] of numbers in, text out. Where the
//! numbers come from is [`super::reading`] (the Prometheus registry), the
//! producer's counters and the stage-change consumer's ring.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::reading::{Layout, PairReading, Reading, ScoreReading};
use super::watch::Change;
use crate::model::OutputKind;

/// Width of the longest stage-count bar.
const BAR: usize = 12;
/// Widest stage name shown; longer names are cut.
const NAME: usize = 13;
/// Widest trigger action shown.
const ACTION: usize = 20;
/// Widest customer id shown.
const CUSTOMER: usize = 16;

/// Everything one refresh shows.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    /// Time since the demo started.
    pub uptime: Duration,
    /// `ready`, `starting`, `stopped`, ...
    pub status: &'a str,
    /// The generator run under way, from 1.
    pub run: u64,
    /// Simulated days since that run started.
    pub sim_day: i64,
    /// The embedded cluster's bootstrap address.
    pub bootstrap: &'a str,
    /// Where `/metrics` is served.
    pub http: SocketAddr,
    /// Touchpoints the producer got acknowledged.
    pub produced: u64,
    /// Touchpoints consumed per second since the previous refresh.
    pub rate: f64,
    /// The registry's numbers.
    pub reading: &'a Reading,
    /// Names to show them under.
    pub layout: &'a Layout,
    /// Stage changes read from the output topic, and the latest, newest first.
    pub changes_seen: u64,
    pub recent: &'a [Change],
}

/// The full view, one line per `\n`, no trailing newline.
pub fn render(f: &Frame<'_>) -> String {
    let r = f.reading;
    let mut out = String::with_capacity(2_048);
    let up = f.uptime.as_secs();
    let (h, m, s) = (up / 3_600, up / 60 % 60, up % 60);
    let _ = writeln!(
        out,
        "journeyd demo  {h:02}:{m:02}:{s:02}  run {}, simulated day {}  {}",
        f.run, f.sim_day, f.status
    );
    let _ = writeln!(
        out,
        "kafka {}   metrics http://{}/metrics   Ctrl-C stops",
        f.bootstrap, f.http
    );
    let _ = writeln!(
        out,
        "touchpoints  produced {}   consumed {}   {}/s   lag {}",
        n(f.produced),
        n(r.consumed),
        n(f.rate.round() as u64),
        n(r.lag)
    );
    let _ = writeln!(
        out,
        "rejected     {} to {}   duplicates {}   late {}",
        n(r.invalid),
        f.layout.outputs[OutputKind::ALL.len()],
        n(r.duplicates),
        n(r.late)
    );
    let published: Vec<String> = (OutputKind::ALL.iter().zip(r.published))
        .map(|(kind, count)| format!("{} {}", kind.title(), n(count)))
        .collect();
    let _ = writeln!(out, "published    {}", published.join("   "));
    let [low, medium, high] = r.bands;
    let _ = writeln!(
        out,
        "customers    {} tracked  churn low {} medium {} high {}",
        n(r.tracked),
        n(low),
        n(medium),
        n(high)
    );
    score_row(&mut out, &r.scores);
    moments_row(&mut out, f.layout, &r.moments);
    stage_rows(&mut out, f.layout, &r.stages);
    out.push_str("drop-off in the last closed window (one simulated day)\n");
    for ((from, to), pair) in f.layout.pairs.iter().zip(&r.pairs) {
        pair_row(&mut out, from, to, pair);
    }
    let _ = write!(out, "recent stage changes ({} read)", n(f.changes_seen));
    for change in f.recent {
        out.push('\n');
        change_row(&mut out, change);
    }
    out
}

/// One compact line: `t=12s run=1 day=6 consumed=23456 rate=1987/s ...`.
pub fn line(f: &Frame<'_>) -> String {
    let r = f.reading;
    format!(
        "t={}s run={} day={} consumed={} rate={}/s customers={} changes={} invalid={} lag={}",
        f.uptime.as_secs(),
        f.run,
        f.sim_day,
        r.consumed,
        f.rate.round() as u64,
        r.tracked,
        r.published[0],
        r.invalid,
        r.lag
    )
}

/// Abandoned journey moments (abandoned carts first, by default): how
/// many of those that ended were abandoned; nothing without moments.
fn moments_row(out: &mut String, layout: &Layout, moments: &[[u64; 3]]) {
    if moments.is_empty() {
        return;
    }
    let cells: Vec<String> = (layout.moments.iter().zip(moments))
        .map(|(name, &[_, completed, abandoned])| {
            let ended = completed + abandoned;
            let share = match ended {
                0 => "-".to_owned(),
                _ => format!("{:.0}%", 100.0 * abandoned as f64 / ended as f64),
            };
            format!(
                "{} {} of {} ({share})",
                cut(name, NAME),
                n(abandoned),
                n(ended)
            )
        })
        .collect();
    let _ = writeln!(out, "abandoned    {}", cells.join("   "));
}

/// NPS, CSAT and CES of the last closed window with responses.
fn score_row(out: &mut String, scores: &[Option<ScoreReading>; 3]) {
    out.push_str("scores      ");
    let shown = [("NPS", ""), ("CSAT", "%"), ("CES", "")];
    let mut any = false;
    for ((name, unit), score) in shown.iter().zip(scores) {
        if let Some(s) = score {
            let answers = if s.responses == 1 {
                "answer"
            } else {
                "answers"
            };
            let _ = write!(
                out,
                " {name} {:.1}{unit} ({} {answers})  ",
                s.score,
                n(s.responses)
            );
            any = true;
        }
    }
    if !any {
        out.push_str(" no survey answered yet");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
}

/// Customers per stage, two stages per row, each with a bar.
fn stage_rows(out: &mut String, layout: &Layout, counts: &[u64]) {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let cells: Vec<String> = (layout.stages.iter().zip(counts))
        .map(|(name, &count)| {
            let bar = "#".repeat((count as usize * BAR).div_ceil(max as usize).min(BAR));
            format!("{:<NAME$} {:>9} {bar:<BAR$}", cut(name, NAME), n(count))
        })
        .collect();
    let rows = cells.len().div_ceil(2);
    for i in 0..rows {
        let right = cells.get(i + rows).map_or("", String::as_str);
        let row = format!("  {} {right}", cells[i]);
        let _ = writeln!(out, "{}", row.trim_end());
    }
}

/// One conversion pair: ratio and counts, or `-` when nothing happened.
fn pair_row(out: &mut String, from: &str, to: &str, pair: &PairReading) {
    let (from, to) = (cut(from, NAME), cut(to, NAME));
    let total = pair.conversions + pair.dropoffs;
    match pair.ratio {
        Some(ratio) => writeln!(
            out,
            "  {from:<NAME$} > {to:<NAME$} {:>6.1}%   {} of {} dropped",
            ratio * 100.0,
            n(pair.dropoffs),
            n(total)
        ),
        None => writeln!(out, "  {from:<NAME$} > {to:<NAME$} {:>7}", "-"),
    }
    .unwrap_or_default();
}

/// One stage change: who, from where to where, how and why.
fn change_row(out: &mut String, c: &Change) {
    let from = c.from_stage.as_deref().unwrap_or("(new)");
    let action = c.trigger_action.as_deref().unwrap_or("(timer)");
    let _ = write!(
        out,
        "  {:<CUSTOMER$} {:>NAME$} > {:<NAME$} {:<7} {}",
        cut(&c.customer_id, CUSTOMER),
        cut(from, NAME),
        cut(&c.to_stage, NAME),
        cut(&c.direction, 7),
        cut(action, ACTION)
    );
}

/// At most `width` characters of `s`.
fn cut(s: &str, width: usize) -> &str {
    s.char_indices().nth(width).map_or(s, |(i, _)| &s[..i])
}

/// `n` with thousands separators: `1,234,567`.
fn n(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn change(i: u64) -> Change {
        Change {
            customer_id: format!("r12-c-{i:010}"),
            from_stage: i.is_multiple_of(2).then(|| "consideration".to_owned()),
            to_stage: "purchase".into(),
            direction: "advance".into(),
            trigger_action: (!i.is_multiple_of(3))
                .then(|| "subscription_downgraded_twice".to_owned()),
        }
    }

    fn reading() -> Reading {
        Reading {
            consumed: 12_345_678,
            invalid: 24_690,
            duplicates: 12_000,
            late: 3,
            tracked: 1_234_567,
            stages: vec![400_000, 300_000, 200_000, 100_000, 50_000, 184_567],
            bands: [900_000, 200_000, 100_000],
            moments: vec![[12_000, 7_600, 2_400], [5_000, 3_700, 300]],
            pairs: vec![
                PairReading {
                    conversions: 120,
                    dropoffs: 80,
                    ratio: Some(0.4),
                },
                PairReading::default(),
                PairReading::default(),
                PairReading::default(),
            ],
            lag: 1_234,
            published: [2_345_678, 123_456, 600, 1_234, 24_690],
            watermark_lag: 1.5,
            scores: [
                Some(ScoreReading {
                    score: 23.5,
                    responses: 1_234,
                }),
                None,
                Some(ScoreReading {
                    score: 3.25,
                    responses: 56,
                }),
            ],
        }
    }

    fn frame<'a>(reading: &'a Reading, layout: &'a Layout, recent: &'a [Change]) -> Frame<'a> {
        Frame {
            uptime: Duration::from_secs(3_723),
            status: "ready",
            run: 12,
            sim_day: 641,
            bootstrap: "127.0.0.1:40123",
            http: "127.0.0.1:9464".parse().unwrap(),
            produced: 12_400_000,
            rate: 1_987.4,
            reading,
            layout,
            changes_seen: 2_345_678,
            recent,
        }
    }

    #[test]
    fn the_frame_fits_an_80_by_24_terminal() {
        let (reading, layout) = (reading(), Layout::of(&Config::default()));
        let recent: Vec<Change> = (0..super::super::watch::RECENT as u64)
            .map(change)
            .collect();
        let text = render(&frame(&reading, &layout, &recent));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 23, "{text}");
        for line in &lines {
            assert!(line.chars().count() < 80, "too wide: {line:?}");
        }
        assert!(lines[0].starts_with("journeyd demo  01:02:03  run 12, simulated day 641"));
        assert!(text.contains("consumed 12,345,678   1,987/s   lag 1,234"));
        assert!(text.contains("  awareness       400,000 ############ "));
        assert!(text.contains("awareness     > consideration   40.0%   80 of 200 dropped"));
        assert!(text.contains("consideration > purchase            -"));
        assert!(text.contains("r12-c-0000000001         (new) > purchase"));
        assert!(text.contains("(timer)"));
        assert!(text.contains("scores       NPS 23.5 (1,234 answers)   CES 3.2 (56 answers)\n"));
        assert!(
            text.contains("abandoned    cart 2,400 of 10,000 (24%)   checkout 300 of 4,000 (8%)\n"),
            "{text}"
        );
    }

    #[test]
    fn the_compact_line_is_short_and_parseable() {
        let (reading, layout) = (reading(), Layout::of(&Config::default()));
        let text = line(&frame(&reading, &layout, &[]));
        assert!(text.chars().count() < 110, "{text}");
        assert!(text.starts_with("t=3723s run=12 day=641 consumed=12345678 rate=1987/s"));
        assert!(text.ends_with("changes=2345678 invalid=24690 lag=1234"));
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1_000), "1,000");
        assert_eq!(n(12_345_678), "12,345,678");
        assert_eq!(cut("consideration-stage", NAME), "consideration");
    }
}
