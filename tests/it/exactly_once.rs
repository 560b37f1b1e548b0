//! Exactly-once mode through its building blocks, on librdkafka's mock
//! cluster.
//!
//! The mock cluster accepts the transactional calls but does not honour
//! them: aborted records stay visible to `read_committed` consumers and
//! offsets sent with a transaction are not stored. So the service runs
//! in-process with its producer wrapped ([`Service::start_with`]) by
//! [`Honest`], a double that keeps a transaction's records to itself until
//! the transaction commits (then forwards them, in a real transaction of
//! the wrapped producer) and drops them on abort: what reaches the
//! topics is what a `read_committed` consumer of a real Kafka would see.
//! The double records every call and fails the calls it is told to.
//!
//! Checked: every record and every offset of a commit interval goes
//! through one transaction; an injected abortable error and an injected
//! fencing error abort, rewind and rebuild without the process exiting;
//! the records produced again are identical (keys, sequences, content) to
//! the aborted ones; and the committed stage changes are exactly those of
//! an uninterrupted run, each once.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use journeyd::config::Config;
use journeyd::runtime::Service;
use journeyd::sink::kafka::{OutputMeta, SinkContext};
use journeyd::sink::transactions::{Producing, Record, Recovery, TxnError};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use common::journeys::{by_sequence, produce, reference, sentinels, workload};
use common::service::{config_text, free_port, mock_cluster, read_all, wait_for};
use common::{DAY, Ev};

const PARTITIONS: i32 = 3;
const STAGE_CHANGES: &str = "journey.stage-changes";
const CHURN_RISK: &str = "journey.churn-risk";
const FUNNEL: &str = "journey.funnel";

/// One call through the producer seam.
#[derive(Clone, Debug, PartialEq)]
enum Call {
    /// A new producer was created (at start-up, or to replace a fenced one).
    Created,
    Init,
    Begin,
    Send(Sent),
    SendOffsets(Vec<(String, i32, i64)>),
    Commit,
    Abort,
    /// The call named failed, as injected.
    Failed(&'static str),
}

/// A record as sent into a transaction.
#[derive(Clone, Debug, PartialEq)]
struct Sent {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Fail the `nth` call (from 1) named `call` with `recovery`; calls of a
/// transaction holding no stage change are not counted, so that every
/// fault hits one that does.
#[derive(Clone, Copy, Debug)]
struct Fault {
    call: &'static str,
    nth: usize,
    recovery: Recovery,
    /// The outcome is unknown to the caller: every later call of the same
    /// name fails alike until the producer is replaced or a transaction
    /// begins (the broker cannot be reached); a commit `done` anyway
    /// reached the coordinator before the connection broke.
    in_doubt: Option<Doubt>,
}

/// What really happened to a commit reported as failed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Doubt {
    Done,
    NotDone,
}

impl Fault {
    fn new(call: &'static str, nth: usize, recovery: Recovery) -> Fault {
        Fault {
            call,
            nth,
            recovery,
            in_doubt: None,
        }
    }

    fn error(&self) -> TxnError {
        let code = match (self.recovery, self.in_doubt) {
            (_, Some(_)) => RDKafkaErrorCode::OperationTimedOut,
            (Recovery::Renew, _) => RDKafkaErrorCode::ProducerFenced,
            _ => RDKafkaErrorCode::InvalidTransactionalState,
        };
        TxnError {
            recovery: self.recovery,
            error: KafkaError::MessageProduction(code),
        }
    }
}

/// What every producer the service creates shares with the test.
#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Vec<Fault>>,
    counts: Mutex<BTreeMap<&'static str, usize>>,
    /// A fault in doubt, failing its calls until it is cleared.
    failing: Mutex<Option<Fault>>,
    /// The offsets (and metadata) committed in the group by committed
    /// transactions, as Kafka keeps them (the mock cluster does not).
    committed: Mutex<BTreeMap<(String, i32), (i64, String)>>,
}

impl Shared {
    fn log(&self, call: Call) {
        lock(&self.calls).push(call);
    }

    /// Counts a call of `name` and fails it if a fault says so; does not
    /// count it unless `eligible`.
    fn call(&self, name: &'static str, eligible: bool) -> Result<(), TxnError> {
        if let Some(fault) = lock(&self.failing).filter(|f| f.call == name) {
            self.log(Call::Failed(name));
            return Err(fault.error());
        }
        if !eligible {
            return Ok(());
        }
        let mut counts = lock(&self.counts);
        let nth = counts.entry(name).or_insert(0);
        *nth += 1;
        let fault = lock(&self.faults)
            .iter()
            .find(|f| f.call == name && f.nth == *nth)
            .copied();
        match fault {
            None => Ok(()),
            Some(fault) => {
                if fault.in_doubt.is_some() {
                    *lock(&self.failing) = Some(fault);
                }
                self.log(Call::Failed(name));
                Err(fault.error())
            }
        }
    }

    /// The broker answers again.
    fn reconnect(&self) {
        lock(&self.failing).take();
    }

    /// The commit failing now was done anyway.
    fn done_anyway(&self) -> bool {
        lock(&self.failing).is_some_and(|f| f.in_doubt == Some(Doubt::Done))
    }

    fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A record held until its transaction commits.
struct Held {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    meta: Box<OutputMeta>,
}

/// Transactions as Kafka honours them, over the mock cluster that does
/// not: records reach the topics only when their transaction commits.
struct Honest {
    inner: ThreadedProducer<SinkContext>,
    held: Mutex<Vec<Held>>,
    shared: Arc<Shared>,
    /// The offsets sent with the open transaction.
    offsets: Mutex<Option<TopicPartitionList>>,
}

impl Honest {
    /// Whether the open transaction holds a stage change.
    fn holds_stage_changes(&self) -> bool {
        lock(&self.held).iter().any(|h| h.topic == STAGE_CHANGES)
    }

    fn forward(&self) -> KafkaResult<()> {
        for held in lock(&self.held).drain(..) {
            let mut record = BaseRecord::with_opaque_to(&held.topic, held.meta);
            if let Some(key) = &held.key {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &held.payload {
                record = record.payload(payload.as_slice());
            }
            if let Some(partition) = held.partition {
                record = record.partition(partition);
            }
            if let Some(headers) = held.headers {
                record = record.headers(headers);
            }
            loop {
                match self.inner.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((error, _)) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// Commits the open transaction: its records reach their topics, its
    /// offsets the group.
    fn commit(&self, timeout: Duration) -> Result<(), TxnError> {
        classify(self.forward())?;
        Producing::commit_transaction(&self.inner, timeout)?;
        if let Some(offsets) = lock(&self.offsets).take() {
            let mut committed = lock(&self.shared.committed);
            for e in offsets.elements() {
                let offset = e.offset().to_raw().unwrap_or(-1);
                let key = (e.topic().to_owned(), e.partition());
                committed.insert(key, (offset, e.metadata().to_owned()));
            }
        }
        self.shared.log(Call::Commit);
        Ok(())
    }
}

fn classify(result: KafkaResult<()>) -> Result<(), TxnError> {
    result.map_err(TxnError::classify)
}

impl Producing for Honest {
    fn send<'a>(&self, record: Record<'a>) -> Result<(), (KafkaError, Record<'a>)> {
        let sent = Sent {
            topic: record.topic.to_owned(),
            key: record.key.map(<[u8]>::to_vec),
            value: record.payload.map(<[u8]>::to_vec),
        };
        self.shared.log(Call::Send(sent.clone()));
        lock(&self.held).push(Held {
            topic: sent.topic,
            partition: record.partition,
            key: sent.key,
            payload: sent.value,
            headers: record.headers,
            meta: record.delivery_opaque,
        });
        Ok(())
    }

    fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        Producer::flush(&self.inner, timeout)
    }

    fn in_flight_count(&self) -> i32 {
        Producer::in_flight_count(&self.inner) + lock(&self.held).len() as i32
    }

    fn init_transactions(&self, timeout: Duration) -> Result<(), TxnError> {
        self.shared.reconnect();
        self.shared.call("init", true)?;
        self.shared.log(Call::Init);
        Producing::init_transactions(&self.inner, timeout)
    }

    fn begin_transaction(&self) -> Result<(), TxnError> {
        self.shared.reconnect();
        self.shared.call("begin", true)?;
        self.shared.log(Call::Begin);
        Producing::begin_transaction(&self.inner)
    }

    fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), TxnError> {
        self.shared
            .call("send_offsets", self.holds_stage_changes())?;
        let listed = offsets
            .elements()
            .iter()
            .map(|e| {
                let offset = e.offset().to_raw().unwrap_or(-1);
                (e.topic().to_owned(), e.partition(), offset)
            })
            .collect();
        self.shared.log(Call::SendOffsets(listed));
        *lock(&self.offsets) = Some(offsets.clone());
        Producing::send_offsets_to_transaction(&self.inner, offsets, group, timeout)
    }

    fn commit_transaction(&self, timeout: Duration) -> Result<(), TxnError> {
        let reported = self.shared.call("commit", self.holds_stage_changes());
        if reported.is_err() && self.shared.done_anyway() && !lock(&self.held).is_empty() {
            self.commit(timeout)?;
        }
        reported?;
        self.commit(timeout)
    }

    fn committed_offsets(
        &self,
        partitions: &TopicPartitionList,
    ) -> Option<KafkaResult<TopicPartitionList>> {
        let committed = lock(&self.shared.committed);
        let mut found = TopicPartitionList::new();
        for e in partitions.elements() {
            let mut element = found.add_partition(e.topic(), e.partition());
            if let Some((offset, metadata)) = committed.get(&(e.topic().to_owned(), e.partition()))
            {
                element.set_offset(Offset::Offset(*offset)).unwrap();
                element.set_metadata(metadata.clone());
            }
        }
        Some(Ok(found))
    }

    fn abort_transaction(&self, timeout: Duration) -> Result<(), TxnError> {
        self.shared.call("abort", true)?;
        lock(&self.held).clear();
        lock(&self.offsets).take();
        self.shared.log(Call::Abort);
        Producing::abort_transaction(&self.inner, timeout)
    }
}

/// One transaction as the calls show it.
#[derive(Debug, Default)]
struct Transaction {
    sends: Vec<Sent>,
    /// The offsets sent with it, and whether records were sent after them.
    offsets: Vec<Vec<(String, i32, i64)>>,
    sent_after_offsets: bool,
    committed: bool,
}

/// Splits the calls into transactions. Panics on a record sent while no
/// transaction is open.
fn transactions(calls: &[Call]) -> Vec<Transaction> {
    let mut done = Vec::new();
    let mut open: Option<Transaction> = None;
    for call in calls {
        match call {
            Call::Begin => {
                assert!(open.is_none(), "a transaction began inside another");
                open = Some(Transaction::default());
            }
            Call::Send(sent) => {
                let txn = open.as_mut().expect("a record sent outside a transaction");
                txn.sent_after_offsets |= !txn.offsets.is_empty();
                txn.sends.push(sent.clone());
            }
            Call::SendOffsets(offsets) => {
                let txn = open.as_mut().expect("offsets sent outside a transaction");
                txn.offsets.push(offsets.clone());
            }
            Call::Commit | Call::Abort | Call::Created => {
                // A new producer ends what the old one had open: never
                // committed, so aborted.
                if let Some(mut txn) = open.take() {
                    txn.committed = *call == Call::Commit;
                    done.push(txn);
                }
            }
            Call::Init | Call::Failed(_) => {}
        }
    }
    done
}

/// A stage change as a consumer compares it: key and value without
/// `detected_at`.
fn comparable(sent: &Sent) -> (Vec<u8>, String) {
    let mut value: Value = serde_json::from_slice(sent.value.as_deref().unwrap()).unwrap();
    value.as_object_mut().unwrap().remove("detected_at");
    (sent.key.clone().unwrap_or_default(), value.to_string())
}

/// The service's settings: exactly-once, frequent commits, and no
/// partition ever idle (the end of input is marked by a late touchpoint on
/// every partition instead).
const SETTINGS: &str = r#"
[time]
mode = "hybrid"
idle_timeout = "1h"

[runtime]
exactly_once = true
commit_interval = "200ms"
shutdown_timeout = "10s"
"#;

fn config(brokers: &str) -> Config {
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let text = config_text(brokers, http, "", "", SETTINGS);
    Config::from_toml_str(&text, std::iter::empty()).expect("a valid configuration")
}

/// Starts the service with every producer wrapped by [`Honest`].
fn start(config: Config, shared: &Arc<Shared>) -> Service {
    let shared = shared.clone();
    let hook = Arc::new(move |inner: ThreadedProducer<SinkContext>| {
        shared.log(Call::Created);
        Box::new(Honest {
            inner,
            held: Mutex::new(Vec::new()),
            shared: shared.clone(),
            offsets: Mutex::new(None),
        }) as Box<dyn Producing>
    });
    Service::start_with(config, Some(hook)).expect("the service starts")
}

fn counter(service: &Service, name: &str, labels: &str) -> f64 {
    let text = service.metrics().encode_text();
    let line = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Runs the workload with `faults` injected and checks what a
/// `read_committed` consumer sees: each stage change and funnel window
/// once, the same as an uninterrupted run. Returns the running service
/// (its cluster with it) and the calls through the producer seam.
fn run_with_faults(
    faults: Vec<Fault>,
) -> (
    MockCluster<'static, DefaultProducerContext>,
    Service,
    Vec<Call>,
) {
    let cluster = mock_cluster(PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let events = workload(60, 7);
    let cutoff = events.last().unwrap().at;
    let shared = Arc::new(Shared::default());
    *lock(&shared.faults) = faults;
    let service = start(config(&brokers), &shared);

    // The input arrives in chunks, so that many transactions carry some.
    let chunks: Vec<&[Ev]> = events.chunks(events.len() / 30 + 1).collect();
    for chunk in chunks {
        produce(&brokers, chunk);
        std::thread::sleep(Duration::from_millis(250));
        assert!(!service.is_finished(), "the service stopped");
    }
    sentinels(&brokers, PARTITIONS, cutoff.plus_ms(10 * DAY));

    // What a read_committed consumer sees: each stage change once, the
    // same as an uninterrupted run.
    let want = reference(&events, cutoff);
    let got = wait_for(
        Duration::from_secs(60),
        "every stage change committed",
        || {
            assert!(!service.is_finished(), "the service stopped");
            let records = read_all(&brokers, STAGE_CHANGES, 1);
            let values: Vec<Value> = records
                .iter()
                .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
                .collect();
            let changes = by_sequence(values.iter().cloned(), cutoff);
            (changes.len() >= want.len()).then_some((changes, values))
        },
    );
    let (changes, values) = got;
    assert_eq!(changes, want);
    let mut seen = BTreeSet::new();
    for value in &values {
        let key = (
            value["customer_id"].to_string(),
            value["sequence"].to_string(),
        );
        assert!(seen.insert(key), "a stage change committed twice: {value}");
    }
    // Funnel windows: each once.
    let mut windows = BTreeSet::new();
    for record in read_all(&brokers, FUNNEL, 1) {
        let value: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        let start = value["window_start"].as_i64().unwrap();
        assert!(
            windows.insert(start),
            "a funnel window committed twice: {value}"
        );
    }
    (cluster, service, shared.calls())
}

#[test]
fn aborted_and_fenced_transactions_rewind_and_commit_each_derived_event_once() {
    let (_cluster, service, calls) = run_with_faults(vec![
        Fault::new("commit", 2, Recovery::Abort),
        Fault::new("send_offsets", 3, Recovery::Renew),
        Fault::new("commit", 4, Recovery::Abort),
    ]);
    for name in ["commit", "send_offsets"] {
        assert!(
            calls.contains(&Call::Failed(name)),
            "the {name} fault was not reached"
        );
    }
    assert_eq!(
        calls.iter().filter(|c| **c == Call::Created).count(),
        2,
        "the fenced producer was replaced once"
    );
    assert!(
        counter(
            &service,
            "journeyd_transactions_total",
            "result=\"aborted\""
        ) >= 2.0
    );
    assert!(
        counter(
            &service,
            "journeyd_transactions_total",
            "result=\"renewed\""
        ) >= 1.0
    );

    let txns = transactions(&calls);
    let committed: Vec<&Transaction> = txns.iter().filter(|t| t.committed).collect();
    let aborted: Vec<&Transaction> = txns.iter().filter(|t| !t.committed).collect();
    assert!(
        committed.len() > 5 && aborted.len() >= 3,
        "{} committed, {} aborted",
        committed.len(),
        aborted.len()
    );
    // One transaction per interval holds its outputs, its changelog
    // records and its offsets, sent last; every one that holds records
    // carries offsets (the group generation fences a zombie's), also when
    // only timers changed state.
    for txn in &committed {
        assert!(
            txn.offsets.len() <= 1,
            "offsets sent twice in one transaction"
        );
        assert!(
            txn.sends.is_empty() || txn.offsets.len() == 1,
            "a transaction with {} records and no offsets: {:?}",
            txn.sends.len(),
            txn.sends
                .iter()
                .map(|s| (&s.topic, s.key.as_deref().map(String::from_utf8_lossy)))
                .collect::<Vec<_>>()
        );
        assert!(!txn.sent_after_offsets, "a record sent after the offsets");
    }
    // What an aborted transaction held is produced again, identical, and
    // committed.
    let derived = |s: &&Sent| s.topic == STAGE_CHANGES || s.topic == CHURN_RISK;
    let committed_changes: BTreeSet<(Vec<u8>, String)> = committed
        .iter()
        .flat_map(|t| &t.sends)
        .filter(derived)
        .map(comparable)
        .collect();
    let mut again = 0;
    for txn in &aborted {
        for sent in txn.sends.iter().filter(derived) {
            let change = comparable(sent);
            assert!(
                committed_changes.contains(&change),
                "an aborted derived event was not produced again identically: {:?}",
                change.1
            );
            again += 1;
        }
    }
    assert!(again > 0, "the aborted transactions held no stage change");
    // The offsets committed last reach the end of the input.
    let last = committed
        .iter()
        .rev()
        .find_map(|t| t.offsets.first())
        .unwrap();
    assert!(last.iter().all(|(_, _, offset)| *offset > 0), "{last:?}");

    service.stop().expect("a clean stop");
}

/// A commit whose outcome is unknown (the broker stopped answering: the
/// call and its retries time out) is neither taken as aborted nor as
/// committed: the producer is replaced, which completes or aborts the
/// transaction on the broker, and the group's committed offsets say which.
/// Once the commit had gone through, once it had not.
#[test]
fn a_commit_in_doubt_is_settled_by_the_committed_offsets() {
    let in_doubt = |nth, doubt| Fault {
        in_doubt: Some(doubt),
        ..Fault::new("commit", nth, Recovery::Retry)
    };
    let (_cluster, service, calls) =
        run_with_faults(vec![in_doubt(2, Doubt::Done), in_doubt(5, Doubt::NotDone)]);
    assert!(
        calls
            .iter()
            .filter(|c| **c == Call::Failed("commit"))
            .count()
            >= 2,
        "the commit faults were not reached"
    );
    let count = |result: &str| {
        counter(
            &service,
            "journeyd_transactions_total",
            &format!("result=\"{result}\""),
        )
    };
    // The one that had not committed was rewound (with the producer
    // replaced); the one that had was not.
    assert_eq!((count("aborted"), count("renewed")), (0.0, 1.0));
    assert_eq!(count("in_doubt"), 2.0);
    service.stop().expect("a clean stop");
}
