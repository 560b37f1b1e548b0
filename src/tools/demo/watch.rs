//! The demo's window on `journey.stage-changes`: a plain Kafka consumer, as
//! any downstream service would run, keeping the latest changes in a ring
//! for the summary.
//!
//! It reads every partition from the beginning without joining a consumer
//! group (nothing to commit), decodes the JSON `StageChanged` records and
//! ignores anything else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;

/// How many stage changes the ring keeps.
pub const RECENT: usize = 6;

/// The longest a poll waits, which bounds how late a stop is noticed.
const POLL: Duration = Duration::from_millis(100);

/// The fields of a `StageChanged` record the summary shows.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Change {
    pub customer_id: String,
    /// `None` when the customer enters the journey.
    pub from_stage: Option<String>,
    pub to_stage: String,
    /// advance, skip, regress, lapse or return.
    pub direction: String,
    /// `None` when a timer caused the change (lapse by inactivity).
    pub trigger_action: Option<String>,
}

/// The latest stage changes, shared between the consumer thread and the
/// summary.
#[derive(Debug, Default)]
pub struct Recent {
    /// Oldest first, at most [`RECENT`].
    ring: Mutex<VecDeque<Change>>,
    /// Stage changes read so far.
    seen: AtomicU64,
}

impl Recent {
    /// Adds a change, dropping the oldest beyond [`RECENT`].
    pub fn push(&self, change: Change) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == RECENT {
            ring.pop_front();
        }
        ring.push_back(change);
        self.seen.fetch_add(1, Relaxed);
    }

    /// The changes held, newest first.
    pub fn latest(&self) -> Vec<Change> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().cloned().collect()
    }

    /// Stage changes read so far.
    pub fn seen(&self) -> u64 {
        self.seen.load(Relaxed)
    }
}

/// Starts a thread that reads every partition of `topic` (it has
/// `partitions`) from the beginning into `recent`, until `stop` is set.
pub fn spawn(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    recent: Arc<Recent>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "journeyd-demo-watch")
        .set("client.id", "journeyd-demo-watch")
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create the demo's stage-change consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let thread = std::thread::Builder::new()
        .name("journeyd-demo-watch".into())
        .spawn(move || {
            while !stop.load(Relaxed) {
                match consumer.poll(POLL) {
                    Some(Ok(message)) => {
                        if let Some(change) = message.payload().and_then(decode) {
                            recent.push(change);
                        }
                    }
                    Some(Err(error)) => tracing::debug!(%error, "Demo stage-change consumer."),
                    None => {}
                }
            }
        })?;
    Ok(thread)
}

/// A JSON `StageChanged` record, or `None` for anything else.
fn decode(payload: &[u8]) -> Option<Change> {
    serde_json::from_slice(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(customer: &str) -> Change {
        Change {
            customer_id: customer.into(),
            from_stage: None,
            to_stage: "awareness".into(),
            direction: "advance".into(),
            trigger_action: Some("ad_click".into()),
        }
    }

    #[test]
    fn the_ring_keeps_the_latest_newest_first() {
        let recent = Recent::default();
        for i in 0..10 {
            recent.push(change(&format!("c-{i}")));
        }
        let latest = recent.latest();
        assert_eq!(latest.len(), RECENT);
        assert_eq!(latest[0].customer_id, "c-9");
        let oldest = format!("c-{}", 10 - RECENT);
        assert_eq!(latest[RECENT - 1].customer_id, oldest);
        assert_eq!(recent.seen(), 10);
    }

    #[test]
    fn stage_changed_json_decodes_and_other_bytes_do_not() {
        let json = br#"{"type":"stage_changed","customer_id":"c-1","sequence":2,
            "from_stage":"awareness","to_stage":"consideration","direction":"advance",
            "trigger_event_id":"e-1-2","trigger_action":"pricing_view",
            "trigger_channel":"web","event_time":1,"detected_at":2,
            "time_in_previous_stage_ms":3,"touchpoint_count":2}"#;
        let decoded = decode(json).expect("a stage change");
        assert_eq!(decoded.from_stage.as_deref(), Some("awareness"));
        assert_eq!(decoded.trigger_action.as_deref(), Some("pricing_view"));
        assert_eq!(decode(b"\0\0\0\0\x01avro"), None);
    }
}
