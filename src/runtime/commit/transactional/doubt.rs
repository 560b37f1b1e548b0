//! A transaction in doubt: its commit failed without saying whether it
//! took effect (docs/guarantees.md#commits-in-doubt).

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::{CALL_TIMEOUT, abortable};
use crate::model::EventTime;
use crate::runtime::pipeline::Pipeline;
use crate::sink::transactions::TxnError;
use crate::telemetry::events::{InternalEvent, TransactionAborted, TransactionInDoubt};

impl Pipeline {
    /// The commit call failed without saying that the transaction aborted
    /// (it timed out, the producer was fenced meanwhile): the broker may
    /// have committed it. Taking it as aborted would read its input again
    /// over state that has it already, and emit its funnel windows twice;
    /// taking it as committed would lose it. So input waits while the
    /// producer is replaced, whose `init_transactions` makes the broker
    /// complete or abort the transaction (the same `transactional.id`),
    /// and then the group's committed offsets tell which
    /// ([`Pipeline::settle_doubt`]).
    pub(super) fn doubt<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offsets: TopicPartitionList,
        error: &TxnError,
        wall: EventTime,
    ) {
        TransactionInDoubt { error }.emit(&self.metrics);
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        txn.open = false;
        txn.in_doubt = Some(offsets);
        self.open_with_new_producer();
        self.settle_doubt(consumer, wall);
    }

    /// Settles a transaction in doubt once a new producer is ready: it
    /// committed if the group's committed offsets are its own (offset and
    /// metadata, which differs in every transaction, of each partition),
    /// else it aborted and the pipeline rewinds as after any abort. While
    /// the offsets cannot be read, input keeps waiting.
    pub(super) fn settle_doubt<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        let Some(txn) = self.mode.txn() else {
            return;
        };
        let Some(sent) = &txn.in_doubt else {
            return;
        };
        if !txn.open {
            return;
        }
        let found = match self.outbox.sink.transactions().committed_offsets(sent) {
            Some(found) => found,
            None => consumer.committed_offsets(sent.clone(), CALL_TIMEOUT),
        };
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "Cannot read the committed offsets to settle a transaction in doubt; input waits.");
                return;
            }
        };
        let committed = sent.count() > 0 && same_commits(sent, &found);
        if let Some(txn) = self.mode.txn_mut() {
            txn.in_doubt = None;
        }
        if committed {
            tracing::info!("The transaction in doubt had committed.");
            self.settle_committed();
        } else {
            tracing::warn!("The transaction in doubt had not committed; rewinding.");
            let error = abortable(KafkaError::MessageProduction(
                RDKafkaErrorCode::OperationTimedOut,
            ));
            TransactionAborted {
                call: "commit",
                error: &error,
                renewed: true,
            }
            .emit(&self.metrics);
            self.forget_aborted(consumer, wall);
            if let Some(txn) = self.mode.txn_mut() {
                txn.open = true;
            }
        }
    }
}

/// Whether the group's committed offsets `found` are those of `sent`:
/// every partition with the same offset and metadata.
fn same_commits(sent: &TopicPartitionList, found: &TopicPartitionList) -> bool {
    sent.elements().iter().all(|s| {
        found
            .find_partition(s.topic(), s.partition())
            .is_some_and(|f| f.offset() == s.offset() && f.metadata() == s.metadata())
    })
}
