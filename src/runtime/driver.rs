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
//! Backpressure: while `runtime.max_in_flight` outputs are unacknowledged,
//! the loop waits for delivery reports instead of polling.
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
        let mut since_commit = Stopwatch::start();
        let mut since_metrics = Stopwatch::start();
        let mut since_erasures = Stopwatch::start();
        while !stop.load(Ordering::Relaxed) && self.pipeline().fatal().is_none() {
            if self.pipeline().in_flight() >= self.intervals.max_in_flight {
                self.pipeline().drain_deliveries();
                std::thread::sleep(Duration::from_millis(1));
            } else {
                self.poll_once();
                // Erasure requests wait while state is restored: the
                // customer one erases may be on its way in.
                if since_erasures.elapsed() >= ERASURE_POLL_INTERVAL
                    && !self.pipeline().is_restoring()
                {
                    self.poll_erasures();
                    since_erasures = Stopwatch::start();
                }
            }
            self.pipeline().schemas_step(&self.consumer, wall_now());
            if self.pipeline().is_restoring() {
                self.pipeline().restore_step(&self.consumer, wall_now());
            }
            if since_metrics.elapsed() >= self.intervals.metrics {
                self.periodic();
                since_metrics = Stopwatch::start();
            }
            if since_commit.elapsed() >= self.intervals.commit {
                self.pipeline()
                    .commit(&self.consumer, CommitMode::Async, wall_now());
                self.rewind_erasures();
                since_commit = Stopwatch::start();
            }
        }
        let fatal = self.pipeline().fatal().map(str::to_owned);
        self.shutdown();
        match fatal {
            Some(reason) => Err(anyhow::anyhow!(reason)),
            None => Ok(()),
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

    fn poll_once(&mut self) {
        if !self.pipeline().accepts_input() {
            // No transaction to produce into: the group still hears from
            // this member, and what it fetches is read again later.
            std::thread::sleep(self.intervals.poll.min(Duration::from_millis(100)));
        }
        let timeout = if self.pipeline().is_restoring() {
            Duration::ZERO
        } else {
            self.intervals.poll
        };
        match self.consumer.poll(timeout) {
            Some(Ok(message)) => {
                let polled = Stopwatch::start();
                if !self.pipeline().handle(&message, polled, wall_now()) {
                    self.read_again(&message);
                }
            }
            Some(Err(error)) => ConsumeFailed { error: &error }.emit(&self.metrics),
            None => self.pipeline().tick(wall_now()),
        }
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
