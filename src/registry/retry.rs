//! Retrying requests to a registry that cannot be reached, with
//! exponential backoff, for a bounded time.
//!
//! Only [`RegistryError::is_transient`] failures are retried: a registry
//! that answers "not found" or "refused" answers the same the next time.

use std::time::Duration;

use super::error::RegistryError;
use crate::clock::Stopwatch;

/// How transient failures are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// No attempt starts once this long has passed since the first one
    /// (`schema_registry.retry_for`); each attempt is bounded by
    /// `schema_registry.timeout` on top.
    pub retry_for: Duration,
    /// The pause after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest pause between two attempts.
    pub max_backoff: Duration,
}

impl Retry {
    /// Retries for `retry_for`, pausing 100 ms, 200 ms, ... up to 2 s.
    pub const fn new(retry_for: Duration) -> Retry {
        Retry {
            retry_for,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }

    /// A single attempt, no retry.
    pub const ONCE: Retry = Retry::new(Duration::ZERO);

    /// Calls `attempt` until it succeeds, fails for good, or `retry_for`
    /// has passed; the last result.
    pub fn run<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let clock = Stopwatch::start();
        let mut pause = self.first_backoff;
        loop {
            let error = match attempt() {
                Err(error) if error.is_transient() => error,
                done => return done,
            };
            let left = self.retry_for.saturating_sub(clock.elapsed());
            if left.is_zero() {
                return Err(error);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(self.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(retry_for: Duration) -> Retry {
        Retry {
            retry_for,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[test]
    fn transient_failures_are_retried_until_success() {
        let mut calls = 0;
        let result = quick(Duration::from_secs(60)).run(|| {
            calls += 1;
            if calls < 4 {
                Err(RegistryError::Unavailable("down".into()))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result, Ok(4));
    }

    #[test]
    fn lasting_failures_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = quick(Duration::from_secs(60)).run(|| {
            calls += 1;
            Err(RegistryError::NotFound {
                code: Some(40403),
                message: "no".into(),
            })
        });
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn retrying_stops_after_retry_for() {
        let mut calls = 0;
        let result: Result<(), _> = quick(Duration::from_millis(20)).run(|| {
            calls += 1;
            Err(RegistryError::Unavailable("down".into()))
        });
        assert_eq!(result, Err(RegistryError::Unavailable("down".into())));
        assert!(calls >= 2, "{calls}");
        let mut once = 0;
        let _ = Retry::ONCE.run(|| -> Result<(), _> {
            once += 1;
            Err(RegistryError::Unavailable("down".into()))
        });
        assert_eq!(once, 1);
    }
}
