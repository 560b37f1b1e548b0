//! Any instance answers for any customer: finding the instance that owns a
//! customer's partition, and forwarding the lookup there
//! (docs/architecture.md#any-instance-answers).
//!
//! A customer's state lives only on the group member that owns the
//! customer's input partition. [`Routing`] lets every other member answer
//! too: the customer's partition is computed from the id as the producer
//! of the touchpoints computes it ([`Partitioner`]), its owner is looked up
//! in the latest table of the group's assignment ([`Owners`], kept by
//! `source/group.rs` and refreshed on rebalances, on misses and
//! periodically, never per request), and the request is forwarded there
//! once ([`Forwarder`]). The owner checks that it holds the partition; a
//! 404 thus means the group does not know the customer, and every doubt is
//! a 503 that says what is missing.

mod forward;
mod owners;
mod partitioner;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use forward::{Answer, FORWARD_TIMEOUT, FORWARDED_FROM, ForwardError, Forwarder, SERVED_BY};
pub use owners::{Owner, Owners, Route, route, unavailable};
pub use partitioner::{KEYED_PARTITIONERS, Partitioner};

use crate::config::KafkaConfig;

impl Partitioner {
    /// The partitioner of journeyd's producer (`partitioner` among
    /// `kafka.producer_properties`, else `kafka.properties`), which is also
    /// the one the touchpoints must be produced with; `None` when it does
    /// not partition by key (configuration validation refuses that).
    pub fn of(kafka: &KafkaConfig) -> Option<Partitioner> {
        let value =
            (kafka.producer_properties.get("partitioner")).or(kafka.properties.get("partitioner"));
        Partitioner::from_property(value)
    }
}

/// How long a lookup waits for a newer table after finding the one it had
/// stale, at most.
pub const REFRESH_WAIT: Duration = Duration::from_secs(2);

/// Asks the group directory for a fresh table. Cheap; never blocks.
#[derive(Clone, Debug)]
pub struct Refresh(std::sync::mpsc::SyncSender<()>);

impl Refresh {
    /// A handle, and the receiving end for the directory.
    pub fn channel() -> (Refresh, std::sync::mpsc::Receiver<()>) {
        let (poke, pokes) = std::sync::mpsc::sync_channel(1);
        (Refresh(poke), pokes)
    }

    /// Asks for a refresh; one already asked for suffices.
    pub fn request(&self) {
        let _ = self.0.try_send(());
    }
}

/// What the HTTP side needs to route lookups (cheap to clone).
#[derive(Clone, Debug)]
pub struct Routing {
    /// This instance's advertised address, if it has one.
    pub me: Option<Arc<str>>,
    /// How the producer partitions customer ids.
    pub partitioner: Partitioner,
    /// The latest table of owners.
    pub owners: watch::Receiver<Arc<Owners>>,
    /// Asks for a newer table.
    pub refresh: Refresh,
    /// Makes the hop.
    pub forwarder: Forwarder,
}

impl Routing {
    /// The current table (an `Arc` clone; the channel is not held).
    pub fn owners(&self) -> Arc<Owners> {
        self.owners.borrow().clone()
    }

    /// Asks for a newer table than `seen` and waits for it, at most
    /// [`REFRESH_WAIT`]; returns the newest table either way.
    pub async fn refreshed(&self, seen: u64) -> Arc<Owners> {
        self.refresh.request();
        let mut owners = self.owners.clone();
        let newer = owners.wait_for(|table| table.version > seen);
        let _ = tokio::time::timeout(REFRESH_WAIT, newer).await;
        self.owners()
    }
}
