//! The demo's time scale: simulated months played out over minutes.
//!
//! The generator simulates a business calendar (customers arrive over
//! months, come back days later, go quiet for 90 days). The demo plays it
//! [`SPEEDUP`] times faster than real time and stamps every touchpoint with
//! the wall-clock instant it is produced at, so the stream looks live: event
//! time and wall time agree, end-to-end latency is meaningful, and the hybrid
//! watermark keeps firing timers even when the stream pauses.
//!
//! Because event time now runs at wall speed, every event-time duration of
//! the journey model is divided by the same factor ([`compress_model`]): 90
//! simulated days of silence are 3 real minutes of event time, so the lapse
//! timer fires 3 minutes after a customer's last touchpoint.
//!
//! [`Timeline`] maps a generated event time onto the wall clock. When the
//! producer cannot keep up with the simulated calendar (the rate limit), the
//! timeline slips forward instead of stamping ever older times: simulated
//! time then runs a little slower, never backwards.

use std::time::Duration;

use crate::config::Config;
use crate::model::EventTime;

/// How much faster than real time the simulated calendar runs: one
/// simulated day every two seconds. A simulated hour lasts 83 ms, the 7-day
/// consideration -> purchase deadline 14 s, the 90 days of silence after
/// which a customer lapses 3 minutes. Fast enough that drop-offs show
/// within a minute and lapses within a few; slow enough that a one-day
/// funnel window (2 s) still holds hundreds of journeys at the default rate.
pub const SPEEDUP: u32 = 43_200;

/// Real time per simulated day.
pub const DAY_WALL: Duration = Duration::from_secs(86_400 / SPEEDUP as u64);

/// One simulated day, the size of the demo's funnel windows.
const FUNNEL_WINDOW: Duration = Duration::from_secs(86_400);

/// How far behind the wall clock the demo lets records fall before the
/// timeline slips: events may wait a little for the rate limit, but the
/// stream stays live.
const MAX_BEHIND_MS: i64 = 1_000;

/// The lateness the engine allows (wall time, not simulated): the producer
/// writes in event-time order, so only partition interleaving needs room.
const ALLOWED_LATENESS: Duration = Duration::from_secs(1);

/// How long a partition without records holds the watermark back. A thin
/// stream (few customers) leaves some partitions quiet for seconds at a
/// time; they should not hold every output back for the default minute.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// `d` of simulated time as real time, at least a millisecond (the
/// resolution of event time).
pub fn compress(d: Duration) -> Duration {
    (d / SPEEDUP).max(Duration::from_millis(1))
}

/// Divides every event-time duration of the journey model by [`SPEEDUP`]:
/// lapse and eviction, the de-duplication horizon, conversion deadlines,
/// journey moments' deadlines, windowed entry signals, the churn model's time unit and signal window. The funnel window becomes one
/// simulated day. Of the wall-clock settings, the lateness and idle timeout
/// fit a live, ordered stream; the rest (future skew, runtime intervals)
/// stay as they are.
pub fn compress_model(config: &mut Config) {
    let time = &mut config.time;
    time.lapse_after = compress(time.lapse_after);
    time.state_ttl = compress(time.state_ttl);
    time.dedupe_horizon = compress(time.dedupe_horizon);
    time.funnel_window = compress(FUNNEL_WINDOW);
    time.allowed_lateness = ALLOWED_LATENESS;
    time.idle_timeout = IDLE_TIMEOUT;
    for signal in &mut config.journey.signals {
        signal.within = signal.within.map(compress);
    }
    for conversion in &mut config.journey.conversions {
        conversion.timeout = compress(conversion.timeout);
    }
    for moment in &mut config.journey.moments {
        moment.within = compress(moment.within);
    }
    let churn = &mut config.churn;
    churn.time_unit = compress(churn.time_unit);
    churn.signal_window = compress(churn.signal_window);
}

/// Maps one generator run's event times onto the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// The generator's start: simulated time zero.
    sim_start: EventTime,
    /// The wall time simulated time zero maps to; moves forward when the
    /// producer falls behind.
    origin: EventTime,
}

impl Timeline {
    /// A timeline on which `sim_start` happens at wall time `origin`.
    pub fn new(sim_start: EventTime, origin: EventTime) -> Timeline {
        Timeline { sim_start, origin }
    }

    /// The wall time at which the simulated instant `sim` happens.
    pub fn wall_time(&self, sim: EventTime) -> EventTime {
        self.origin
            .plus_ms(sim.since(self.sim_start) / i64::from(SPEEDUP))
    }

    /// The event time to stamp on a record for `sim` when the wall clock
    /// reads `wall` (not before its scheduled time). When the record is due
    /// more than a second ago, the timeline slips so that it is stamped a
    /// second behind the wall clock and later records follow from there.
    pub fn stamp(&mut self, sim: EventTime, wall: EventTime) -> EventTime {
        let due = self.wall_time(sim);
        let behind = wall.since(due) - MAX_BEHIND_MS;
        if behind > 0 {
            self.origin = self.origin.plus_ms(behind);
            return due.plus_ms(behind);
        }
        due
    }

    /// Simulated time elapsed since the start, for `sim`, in whole days.
    pub fn sim_day(&self, sim: EventTime) -> i64 {
        sim.since(self.sim_start).div_euclid(86_400_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn a_simulated_day_lasts_two_seconds() {
        assert_eq!(DAY_WALL, Duration::from_secs(2));
        assert_eq!(
            compress(Duration::from_secs(90 * 86_400)),
            Duration::from_secs(180)
        );
        assert_eq!(compress(Duration::from_secs(3_600)).as_millis(), 83);
        assert_eq!(compress(Duration::ZERO), Duration::from_millis(1));
    }

    #[test]
    fn the_compressed_default_model_is_valid() {
        let mut config = Config::default();
        compress_model(&mut config);
        assert_eq!(config.validate().map_err(|e| e.to_string()), Ok(()));
        assert_eq!(config.time.lapse_after, Duration::from_secs(180));
        assert_eq!(config.time.funnel_window, Duration::from_secs(2));
        assert_eq!(config.churn.time_unit, Duration::from_secs(14));
        let timeouts: Vec<u64> = config
            .journey
            .conversions
            .iter()
            .map(|c| c.timeout.as_secs())
            .collect();
        assert_eq!(timeouts, [60, 14, 360, 730]);
    }

    #[test]
    fn records_are_stamped_when_due_and_slip_when_late() {
        let sim0 = EventTime(1_000_000);
        let mut timeline = Timeline::new(sim0, EventTime(5_000));
        // Ten simulated days are twenty seconds.
        let day10 = sim0.plus_ms(10 * DAY_MS);
        assert_eq!(timeline.wall_time(day10), EventTime(25_000));
        assert_eq!(timeline.stamp(day10, EventTime(25_500)), EventTime(25_000));
        // Three seconds late: stamped one second behind, and the rest follows.
        assert_eq!(timeline.stamp(day10, EventTime(28_000)), EventTime(27_000));
        assert_eq!(timeline.wall_time(day10), EventTime(27_000));
        assert_eq!(timeline.sim_day(day10), 10);
    }
}
