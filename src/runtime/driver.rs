//! The processing loop of `journeyd run`: one thread, one consumer, one engine.
//!
//! Spawning a task per record would lose per-customer order; instead one
//! thread polls, decodes, runs the engine and hands outputs to the producer,
//! and between polls does the periodic work: reading a batch of changelog
//! records for partitions being restored, ticking the clock (idle
//! partitions, hybrid time), publishing metrics, answering customer lookups
//! and committing (with the changelog writes behind it). While a restore
//! runs, polls do not wait for input, so the loop alternates quickly
//! between the group consumer (liveness, the partitions already restored)
//! and the changelog. Backpressure: while `runtime.max_in_flight` outputs are
//! unacknowledged, the loop waits for delivery reports instead of polling.
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
use crate::http::{CustomerQuery, Readiness, answer_queries};
use crate::source::kafka::Source;
use crate::telemetry::events::{ConsumeFailed, InternalEvent};
use crate::telemetry::{EngineSnapshot, Metrics};

use super::pipeline::Pipeline;

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
    metrics: Arc<Metrics>,
    readiness: Readiness,
    intervals: Intervals,
}

impl Driver {
    /// A driver for a subscribed consumer and its pipeline.
    pub fn new(
        config: &Config,
        consumer: Source,
        pipeline: Arc<Mutex<Pipeline>>,
        queries: mpsc::Receiver<CustomerQuery>,
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
            queries,
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

    /// Runs until `stop` is set, then shuts down cleanly.
    pub fn run(mut self, stop: &AtomicBool) {
        self.readiness.set_consuming(true);
        let mut since_commit = Stopwatch::start();
        let mut since_metrics = Stopwatch::start();
        while !stop.load(Ordering::Relaxed) {
            if self.pipeline().in_flight() >= self.intervals.max_in_flight {
                self.pipeline().drain_deliveries();
                std::thread::sleep(Duration::from_millis(1));
            } else {
                self.poll_once();
            }
            self.pipeline().restore_step(&self.consumer);
            if since_metrics.elapsed() >= self.intervals.metrics {
                self.periodic();
                since_metrics = Stopwatch::start();
            }
            if since_commit.elapsed() >= self.intervals.commit {
                self.pipeline()
                    .commit(&self.consumer, CommitMode::Async, wall_now());
                since_commit = Stopwatch::start();
            }
        }
        self.shutdown();
    }

    fn poll_once(&mut self) {
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

    /// Clock, metrics and customer lookups.
    fn periodic(&mut self) {
        let wall = wall_now();
        let mut pipeline = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        pipeline.tick(wall);
        pipeline.drain_deliveries();
        self.metrics
            .observe_engine(&EngineSnapshot::of(pipeline.engine(), wall));
        self.metrics.observe_changelog(pipeline.engine().stats());
        answer_queries(&mut self.queries, pipeline.engine(), 64);
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
