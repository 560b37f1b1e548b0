//! The live summary: gathers a [`Frame`] from the registry, the producer
//! and the stage-change ring once per refresh, works out the consumption
//! rate over the last few refreshes and shows it on the [`Screen`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus::Registry;

use super::reading::{Layout, Reading};
use super::screen::Screen;
use super::summary::{Frame, line, render};
use super::watch::{Change, Recent};
use crate::clock::Stopwatch;
use crate::telemetry::{NotReady, Readiness};
use crate::tools::feed::FeedStats;

/// Refreshes the consumption rate is averaged over: records arrive in
/// batches, so a one-second rate jumps around.
const RATE_WINDOW: usize = 5;

/// Where one refresh reads from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The service's metrics.
    pub registry: &'a Registry,
    /// The service's readiness, for the status word.
    pub readiness: &'a Readiness,
    /// The producer's counters.
    pub feed: &'a FeedStats,
    /// The stage changes read back from the output topic.
    pub recent: &'a Recent,
    /// The embedded cluster's address.
    pub bootstrap: &'a str,
    /// Where HTTP is served.
    pub http: SocketAddr,
}

/// The summary's state between refreshes.
pub struct Dashboard {
    /// What to read from the registry, in display order.
    layout: Layout,
    /// Standard error, live or line by line.
    screen: Screen,
    /// Since the demo started.
    clock: Stopwatch,
    /// Uptime and touchpoints consumed at the last [`RATE_WINDOW`]
    /// refreshes, oldest first.
    history: VecDeque<(Duration, u64)>,
}

impl Dashboard {
    /// A dashboard for `layout`, on standard error.
    pub fn new(layout: Layout) -> Dashboard {
        Dashboard {
            layout,
            screen: Screen::stderr(),
            clock: Stopwatch::start(),
            history: VecDeque::from([(Duration::ZERO, 0)]),
        }
    }

    /// Time since the demo started.
    pub fn uptime(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Reads everything and shows it.
    pub fn refresh(&mut self, sources: &Sources<'_>) {
        let reading = Reading::of(sources.registry, &self.layout);
        let rate = self.rate(reading.consumed);
        let status = status(sources.readiness);
        let recent = sources.recent.latest();
        let frame = self.frame(sources, &reading, &recent, status, rate);
        self.screen.show(&render(&frame), &line(&frame));
    }

    /// Touchpoints consumed per second over the last few refreshes, given
    /// the count now.
    fn rate(&mut self, consumed: u64) -> f64 {
        let now = (self.clock.elapsed(), consumed);
        if self.history.len() == RATE_WINDOW {
            self.history.pop_front();
        }
        let (then, consumed_then) = self.history.front().copied().unwrap_or(now);
        self.history.push_back(now);
        let seconds = (now.0 - then).as_secs_f64();
        if seconds > 0.0 {
            consumed.saturating_sub(consumed_then) as f64 / seconds
        } else {
            0.0
        }
    }

    /// Leaves the live view and prints the final summary, then `closing`.
    pub fn finish(&mut self, sources: &Sources<'_>, closing: &str) {
        self.screen.close();
        let reading = Reading::of(sources.registry, &self.layout);
        let uptime = self.clock.elapsed().as_secs_f64().max(1e-3);
        let rate = reading.consumed as f64 / uptime;
        let recent = sources.recent.latest();
        let frame = self.frame(sources, &reading, &recent, "stopped", rate);
        eprintln!("{}\n{closing}", render(&frame));
    }

    fn frame<'a>(
        &'a self,
        sources: &'a Sources<'a>,
        reading: &'a Reading,
        recent: &'a [Change],
        status: &'a str,
        rate: f64,
    ) -> Frame<'a> {
        let feed = sources.feed;
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        Frame {
            uptime: self.clock.elapsed(),
            status,
            run: feed.run.load(relaxed),
            sim_day: feed.sim_day.load(relaxed),
            bootstrap: sources.bootstrap,
            http: sources.http,
            produced: feed.delivered.load(relaxed),
            rate,
            reading,
            layout: &self.layout,
            changes_seen: sources.recent.seen(),
            recent,
        }
    }
}

/// One word for the service's readiness.
fn status(readiness: &Readiness) -> &'static str {
    match readiness.snapshot().reason {
        None => "ready",
        Some(NotReady::Stopping) => "stopping",
        Some(NotReady::Restoring) => "restoring",
        Some(NotReady::NoPartitionsAssigned | NotReady::Starting) => "starting",
    }
}
