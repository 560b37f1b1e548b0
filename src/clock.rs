//! The one place that reads clocks.
//!
//! The engine never reads time; drivers read it here and pass it in.
//! `clippy.toml` forbids `SystemTime::now` and `Instant::now` everywhere else.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::model::EventTime;

/// The wall clock as an [`EventTime`].
#[allow(clippy::disallowed_methods)]
pub fn wall_now() -> EventTime {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    EventTime(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

/// Measures elapsed monotonic time.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring now.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    /// Time from `earlier` to this one (zero if `earlier` is later),
    /// without reading the clock again.
    pub fn since(&self, earlier: Stopwatch) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }
}
