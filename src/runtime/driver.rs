//! The processing loop of `journeyd run`: one thread, one consumer, one engine.
//!
//! Spawning a task per record would lose per-customer order; instead one
//! thread polls, decodes, runs the engine and hands outputs to the producer,
//! and between polls does the periodic work: collecting the schema
//! look-ups that ended (they run on threads of their own, so a slow
//! registry holds back only the partitions whose records wait for it,
//! never this loop) and releasing the records held for them, reading a
//! batch of changelog records for partitions being restored, ticking the
//! clock (idle
//! partitions, hybrid time), publishing metrics, answering customer lookups,
//! forwarding HTTP erasure requests and committing (with the changelog
//! writes behind it). Every few milliseconds it also serves the erasure
//! reader, processing the requests it fetched. While a restore runs, polls
//! do not wait for input, so the loop alternates quickly between the group
//! consumer (liveness, the partitions already restored) and the changelog.
//! Records are polled in batches ([`POLL_BATCH`]): the clocks are read
//! and the periodic work is checked once per batch, not per record.
//! Backpressure: while `runtime.max_in_flight` outputs are unacknowledged,
//! the loop waits for delivery reports instead of polling; the producer's
//! delivery callback wakes it as soon as one arrives
//! ([`Pipeline::await_deliveries`]), and it waits no longer than until the
//! commit or the metrics are due.
//!
//! Shutdown (`stop` set by the service on SIGTERM/SIGINT): stop polling,
//! deliver what is in flight, commit synchronously, leave the group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use tokio::sync::mpsc;

use crate::clock::{Stopwatch, wall_now};
use crate::config::Config;
use crate::http::{CustomerQuery, ErasureCommand, answer_queries, take_erasures};
use crate::model::EventTime;
use crate::source::kafka::Source;
use crate::telemetry::Readiness;
use crate::telemetry::events::{ConsumeFailed, InternalEvent};
use crate::telemetry::{EngineSnapshot, Metrics};

use super::pipeline::Pipeline;

/// How often the erasure reader is served. Each call of its non-blocking
/// poll serves one event (a request, or one of its log lines, statistics
/// or errors), so it is called in rounds: up to [`ERASURE_ROUND`] calls,
/// ending early after [`ERASURE_IDLE_CALLS`] calls in a row that brought
/// no request. A backlog of requests is read at up to
/// `ERASURE_ROUND / ERASURE_POLL_INTERVAL`; an idle reader costs a few
/// queue checks per round.
const ERASURE_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Calls of the erasure reader's poll per round, at most.
const ERASURE_ROUND: usize = 256;
/// Calls in a row without a request that end a round.
const ERASURE_IDLE_CALLS: usize = 8;

/// Records polled in one batch, at most: the clocks are read, and the
/// periodic work checked, once per batch. 256 records take about a
/// millisecond and a half of processing (docs/performance.md), which is
/// how late a commit or the metrics may start.
const POLL_BATCH: usize = 256;

/// When the loop's periodic work was last done: read from the clock when
/// the work ends, not taken from the batch that found it due, so that work
/// which takes longer than its interval (an exactly-once commit waits for
/// the broker) does not start again after every batch.
#[derive(Clone, Copy, Debug)]
struct Due {
    commit: Stopwatch,
    metrics: Stopwatch,
    erasures: Stopwatch,
}

impl From<Stopwatch> for Due {
    fn from(start: Stopwatch) -> Due {
        Due {
            commit: start,
            metrics: start,
            erasures: start,
        }
    }
}

impl Due {
    /// Whether the commit is due at `now` (a batch's clock).
    fn commit_due(&self, now: Stopwatch, intervals: &Intervals) -> bool {
        now.since(self.commit) >= intervals.commit
    }

    /// The commit ended: the next one is due an interval from now.
    fn committed(&mut self) {
        self.commit = Stopwatch::start();
    }

    /// How long the loop may wait for delivery reports at `now`: until
    /// the commit or the metrics fall due, and no longer than a poll.
    fn wait(&self, now: Stopwatch, intervals: &Intervals) -> Duration {
        let commit = intervals.commit.saturating_sub(now.since(self.commit));
        let metrics = intervals.metrics.saturating_sub(now.since(self.metrics));
        intervals.poll.min(commit).min(metrics)
    }
}

/// How often the loop does its periodic work.
#[derive(Clone, Copy, Debug)]
struct Intervals {
    poll: Duration,
    commit: Duration,
    metrics: Duration,
    shutdown: Duration,
    max_in_flight: usize,
}

/// The processing loop and what it owns.
pub struct Driver {
    consumer: Source,
    pipeline: Arc<Mutex<Pipeline>>,
    queries: mpsc::Receiver<CustomerQuery>,
    erasures: mpsc::Receiver<ErasureCommand>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    intervals: Intervals,
}

/// The channels from the HTTP side to the driver.
pub struct Requests {
    /// Customer lookups.
    pub queries: mpsc::Receiver<CustomerQuery>,
    /// Erasures to forward to the erasure topic.
    pub erasures: mpsc::Receiver<ErasureCommand>,
}

impl Driver {
    /// A driver for a subscribed consumer and its pipeline.
    pub fn new(
        config: &Config,
        consumer: Source,
        pipeline: Arc<Mutex<Pipeline>>,
        requests: Requests,
        metrics: Arc<Metrics>,
        readiness: Readiness,
    ) -> Driver {
        let intervals = Intervals {
            poll: config.kafka.poll_timeout,
            commit: config.runtime.commit_interval,
            metrics: config.runtime.metrics_interval,
            shutdown: config.runtime.shutdown_timeout,
            max_in_flight: config.runtime.max_in_flight.max(1),
        };
        Driver {
            consumer,
            pipeline,
            queries: requests.queries,
            erasures: requests.erasures,
            metrics,
            readiness,
            intervals,
        }
    }

    fn pipeline(&self) -> MutexGuard<'_, Pipeline> {
        self.pipeline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs until `stop` is set, then shuts down cleanly; or until a
    /// record can never be delivered ([`Pipeline::fatal`]), then shuts
    /// down as cleanly as it can and returns why.
    pub fn run(mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        self.readiness.set_consuming(true);
        let mut due = Due::from(Stopwatch::start());
        while !stop.load(Ordering::Relaxed) {
            let (fatal, full, restoring) = {
                let pipeline = self.pipeline();
                let full = pipeline.in_flight() >= self.intervals.max_in_flight;
                (pipeline.fatal().is_some(), full, pipeline.is_restoring())
            };
            if fatal {
                break;
            }
            let clocks = if full {
                let clocks = (Stopwatch::start(), wall_now());
                let wait = due.wait(clocks.0, &self.intervals);
                self.pipeline().await_deliveries(wait);
                clocks
            } else {
                let clocks = self.poll_batch(restoring);
                // Erasure requests wait while state is restored: the
                // customer one erases may be on its way in.
                if clocks.0.since(due.erasures) >= ERASURE_POLL_INTERVAL
                    && !self.pipeline().is_restoring()
                {
                    self.poll_erasures();
                    due.erasures = Stopwatch::start();
                }
                clocks
            };
            self.between_batches(clocks, &mut due);
        }
        let fatal = self.pipeline().fatal().map(str::to_owned);
        self.shutdown();
        match fatal {
            Some(reason) => Err(anyhow::anyhow!(reason)),
            None => Ok(()),
        }
    }

    /// The work between two batches: schema look-ups that ended, a step
    /// of the restore, and the metrics and the commit when they are due
    /// (each interval counted from the end of the work, see [`Due`]).
    fn between_batches(&mut self, (now, wall): (Stopwatch, EventTime), due: &mut Due) {
        let restoring = {
            let mut pipeline = self.pipeline();
            pipeline.schemas_step(&self.consumer, wall);
            pipeline.is_restoring()
        };
        if restoring {
            self.pipeline().restore_step(&self.consumer, wall);
        }
        if now.since(due.metrics) >= self.intervals.metrics {
            self.periodic();
            due.metrics = Stopwatch::start();
        }
        if due.commit_due(now, &self.intervals) {
            self.pipeline()
                .commit(&self.consumer, CommitMode::Async, wall);
            self.rewind_erasures();
            due.committed();
        }
    }

    /// Seeks the erasure reader back after an aborted transaction.
    fn rewind_erasures(&self) {
        let rewinds = self.pipeline().take_erasure_rewinds();
        let reader = self.consumer.context().hooks().erasure();
        for (partition, offset) in rewinds {
            reader.rewind(partition, offset);
        }
    }

    /// Polls one batch: the first poll waits up to `kafka.poll_timeout`
    /// (not at all while a restore runs), the next ones take what is
    /// already fetched, up to [`POLL_BATCH`] records (one while a restore
    /// runs, so that the loop alternates with the changelog). The clocks
    /// are read once, when the first poll returns: the batch's records
    /// share that wall-clock time and that poll time, which it returns.
    /// The batch ends early at the in-flight bound, at a fatal error and
    /// at a record that must be read again ([`Driver::take`]).
    fn poll_batch(&mut self, restoring: bool) -> (Stopwatch, EventTime) {
        if !self.pipeline().accepts_input() {
            // No transaction to produce into: the group still hears from
            // this member, and what it fetches is read again later.
            std::thread::sleep(self.intervals.poll.min(Duration::from_millis(100)));
        }
        let (timeout, limit) = if restoring {
            (Duration::ZERO, 1)
        } else {
            (self.intervals.poll, POLL_BATCH)
        };
        let mut polled = self.consumer.poll(timeout);
        let clocks = (Stopwatch::start(), wall_now());
        for n in 1..=limit {
            match polled {
                Some(Ok(message)) => {
                    if !self.take(&message, clocks) {
                        break;
                    }
                }
                Some(Err(error)) => ConsumeFailed { error: &error }.emit(&self.metrics),
                // Nothing within the poll timeout: time moves on without
                // records. Later in a batch, only what was fetched ran out.
                None => {
                    if n == 1 {
                        self.pipeline().tick(clocks.1);
                    }
                    break;
                }
            }
            if n == limit {
                break;
            }
            polled = self.consumer.poll(Duration::ZERO);
        }
        clocks
    }

    /// Hands one polled record to the pipeline, taking its lock once (and
    /// letting it go before the next poll, in which librdkafka may run a
    /// rebalance callback that takes it). Returns whether the batch goes
    /// on: not at the in-flight bound, not after a fatal error, and not
    /// after a record that must be read again.
    fn take(
        &self,
        message: &rdkafka::message::BorrowedMessage<'_>,
        (polled, wall): (Stopwatch, EventTime),
    ) -> bool {
        let mut pipeline = self.pipeline();
        if !pipeline.handle(message, polled, wall) {
            drop(pipeline);
            self.read_again(message);
            return false;
        }
        pipeline.in_flight() < self.intervals.max_in_flight && pipeline.fatal().is_none()
    }

    /// Seeks back to a record that arrived before its partition's state was
    /// restored, so that it is read again once the partition resumes.
    fn read_again(&self, message: &rdkafka::message::BorrowedMessage<'_>) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        if let Err(error) =
            self.consumer
                .seek(topic, partition, Offset::Offset(offset), Duration::ZERO)
        {
            tracing::error!(%error, topic, partition, offset, "Cannot seek back to a record read before its partition's state was restored.");
        }
    }

    /// One round of the erasure reader: the requests it has fetched, and
    /// its logs and statistics.
    fn poll_erasures(&mut self) {
        let reader = self.consumer.context().hooks().erasure();
        let mut idle = 0;
        for _ in 0..ERASURE_ROUND {
            match reader.poll() {
                Some(Ok(message)) => {
                    idle = 0;
                    let polled = Stopwatch::start();
                    if !self.pipeline().handle(&message, polled, wall_now()) {
                        reader.read_again(&message);
                        break;
                    }
                }
                Some(Err(error)) => ConsumeFailed { error: &error }.emit(&self.metrics),
                None => idle += 1,
            }
            if idle >= ERASURE_IDLE_CALLS {
                break;
            }
        }
    }

    /// Clock, metrics, customer lookups and HTTP erasures.
    fn periodic(&mut self) {
        let wall = wall_now();
        let mut pipeline = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        pipeline.tick(wall);
        pipeline.drain_deliveries();
        self.metrics
            .observe_engine(&EngineSnapshot::of(pipeline.engine(), wall));
        self.metrics.observe_changelog(pipeline.engine().stats());
        self.metrics.observe_held_records(pipeline.held_records());
        answer_queries(
            &mut self.queries,
            pipeline.engine(),
            |partition| pipeline.holding(partition),
            64,
        );
        take_erasures(&mut self.erasures, 64, |command| {
            pipeline.forward_erasure(command);
        });
    }

    fn shutdown(self) {
        self.readiness.set_stopping();
        tracing::info!("Stopping: delivering outputs in flight and committing.");
        self.pipeline()
            .shutdown(&self.consumer, self.intervals.shutdown, wall_now());
        self.consumer.unsubscribe();
        self.metrics
            .observe_engine(&EngineSnapshot::of(self.pipeline().engine(), wall_now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(poll_ms: u64, commit_ms: u64, metrics_ms: u64) -> Intervals {
        Intervals {
            poll: Duration::from_millis(poll_ms),
            commit: Duration::from_millis(commit_ms),
            metrics: Duration::from_millis(metrics_ms),
            shutdown: Duration::from_secs(1),
            max_in_flight: 1,
        }
    }

    #[test]
    fn backpressure_waits_at_most_a_poll_and_never_past_the_commit_or_the_metrics() {
        let start = Stopwatch::start();
        let due = Due::from(start);
        let wait = due.wait(start, &intervals(100, 1_000, 5_000));
        assert_eq!(wait, Duration::from_millis(100));
        let wait = due.wait(start, &intervals(100, 30, 5_000));
        assert_eq!(wait, Duration::from_millis(30));
        let wait = due.wait(start, &intervals(100, 1_000, 20));
        assert_eq!(wait, Duration::from_millis(20));
    }

    #[test]
    fn a_commit_slower_than_its_interval_is_not_due_again_at_once() {
        let intervals = intervals(100, 20, 5_000);
        let mut due = Due::from(Stopwatch::start());
        std::thread::sleep(Duration::from_millis(25));
        let batch = Stopwatch::start();
        assert!(due.commit_due(batch, &intervals));
        // The commit (a transaction waiting for the broker) takes longer
        // than the interval.
        std::thread::sleep(Duration::from_millis(25));
        due.committed();
        let next_batch = Stopwatch::start();
        assert!(!due.commit_due(next_batch, &intervals));
    }

    #[test]
    fn backpressure_does_not_wait_once_the_commit_is_due() {
        let earlier = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(5));
        let now = Stopwatch::start();
        let wait = Due::from(earlier).wait(now, &intervals(100, 1, 5_000));
        assert_eq!(wait, Duration::ZERO);
        assert!(now.since(earlier) >= Duration::from_millis(5));
        assert_eq!(earlier.since(now), Duration::ZERO);
    }
}
