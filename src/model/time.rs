//! Event time: milliseconds since the Unix epoch, as carried by `occurred_at`.

use std::fmt;

/// A point in event time, in milliseconds since the Unix epoch (UTC).
///
/// Event time drives every window and timer in journeyd; it is never read
/// from a clock inside the engine, only carried in by events or by the driver.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime(pub i64);

impl EventTime {
    /// Earlier than any real event; the starting watermark.
    pub const MIN: EventTime = EventTime(i64::MIN);
    /// Later than any real event; "never" for timers.
    pub const MAX: EventTime = EventTime(i64::MAX);
    /// 2000-01-01T00:00:00Z: events before it are rejected as implausible.
    pub const Y2K: EventTime = EventTime(946_684_800_000);

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// This time plus `ms` milliseconds, saturating at the ends of the range.
    pub const fn plus_ms(self, ms: i64) -> EventTime {
        EventTime(self.0.saturating_add(ms))
    }

    /// This time minus `ms` milliseconds, saturating at the ends of the range.
    pub const fn minus_ms(self, ms: i64) -> EventTime {
        EventTime(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub const fn since(self, earlier: EventTime) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Formats as RFC 3339 with millisecond precision, for logs and summaries.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Debug for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EventTime::MIN => f.write_str("EventTime(MIN)"),
            EventTime::MAX => f.write_str("EventTime(MAX)"),
            t => write!(f, "EventTime({})", t.to_rfc3339()),
        }
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(EventTime::MAX.plus_ms(1), EventTime::MAX);
        assert_eq!(EventTime::MIN.minus_ms(1), EventTime::MIN);
        assert_eq!(EventTime(10).since(EventTime(4)), 6);
    }

    #[test]
    fn formats_as_rfc3339() {
        assert_eq!(EventTime::Y2K.to_rfc3339(), "2000-01-01T00:00:00Z");
    }
}
