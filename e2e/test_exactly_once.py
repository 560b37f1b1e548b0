"""Exactly-once mode end to end, against a real Kafka with transactions.

No broker here honours transactions (tansu answers EndTxn "unsupported";
librdkafka's mock cluster shows aborted records to read_committed
consumers), so this test runs only when `JOURNEYD_EOS_BROKERS` names the
bootstrap servers of a Kafka cluster with transactions (Kafka 2.5 or
later, e.g. the compose stack: `JOURNEYD_EOS_BROKERS=localhost:9094`), and
is reported as skipped otherwise.

journeyd runs with `runtime.exactly_once = true` and static membership,
and is killed with SIGKILL at random moments mid-transaction while it
catches up on a backlog, then restarted; each restart fences the killed
producer and aborts its open transaction. A `read_committed` consumer
must then see every stage change of `journeyd replay` of the same input
exactly once: none missing, none twice.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness import Journeyd, committed, generate, partitions_of, wait_for, write_config
from test_crash import Reference, by_sequence, feed
from test_pipeline import last_event_time, read_lines, values

BROKERS = os.environ.get("JOURNEYD_EOS_BROKERS")
PARTITIONS = 6
CUSTOMERS = int(os.environ.get("E2E_EOS_CUSTOMERS", "3000"))
KILLS = 5
SEED = int(os.environ.get("E2E_EOS_SEED", "20261123"))

pytestmark = pytest.mark.skipif(
    not BROKERS, reason="JOURNEYD_EOS_BROKERS is not set: no Kafka with transactions to test against")


class RealKafka:
    """The cluster of JOURNEYD_EOS_BROKERS, as the crash test helpers use a broker."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topics(self, partitions: dict[str, int], config: dict[str, str] | None = None):
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=1, config=config or {})
             for name, n in partitions.items()], operation_timeout=30)
        for future in futures.values():
            future.result(timeout=60)

    def delete_topics(self, names):
        for future in self.admin.delete_topics(list(names), operation_timeout=30).values():
            try:
                future.result(timeout=60)
            except Exception:  # noqa: BLE001 - cleanup is best effort
                pass


def read_committed(bootstrap: str, topic: str, settle: float = 5.0):
    """Everything a read_committed consumer sees on `topic`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"eos-reader-{time.monotonic_ns()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions_of(bootstrap, topic))])
    messages, last_new = [], time.monotonic()
    try:
        while time.monotonic() - last_new < settle:
            for m in consumer.consume(500, timeout=0.5):
                if not m.error():
                    messages.append((m.key(), m.value(), {}, m.partition(), m.offset()))
                    last_new = time.monotonic()
    finally:
        consumer.close()
    return messages


def test_kill_9_mid_transaction_and_read_committed_sees_each_stage_change_once(topics, tmp_path):
    kafka = RealKafka(BROKERS)
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    created = [topic, topics.changelog, *topics.all_outputs(PARTITIONS)]
    kafka.create_topics({topic: PARTITIONS, **topics.all_outputs(PARTITIONS)})
    kafka.create_topics({topics.changelog: PARTITIONS}, {"cleanup.policy": "compact"})
    source = tmp_path / "touchpoints.ndjson"
    generate(source, customers=CUSTOMERS, seed=SEED, invalid_ratio=0.0)
    records = read_lines(source)
    cutoff = last_event_time(records)
    reference = Reference(source, tmp_path / "expected.ndjson")
    group = f"{topics.prefix}-group"
    extra = f'exactly_once = true\ntransactional_id = "{group}-0"\n'
    rng = random.Random(SEED)
    try:
        feed(kafka, topic, [(key, raw) for key, raw, _ in records], cutoff)
        kills = []
        for n in range(KILLS + 1):
            config = tmp_path / f"journeyd-{n}.toml"
            port = write_config(config, kafka.bootstrap, group, topics, extra=extra)
            journeyd = Journeyd(config, port, tmp_path / f"journeyd-{n}.log")
            if n == KILLS:
                break
            try:
                wait_for("touchpoints consumed",
                         lambda: journeyd.alive() and journeyd.metric_sum("journeyd_events_consumed_total") > 0,
                         60, every=0.05)
                time.sleep(rng.uniform(0.2, 3.0))
                journeyd.alive()
            finally:
                journeyd.kill()
            kills.append(committed(kafka.bootstrap, group, topic))
        try:
            wait_for("every input record committed",
                     lambda: journeyd.alive() and committed(kafka.bootstrap, group, topic) >= len(records),
                     timeout=300, every=1.0)
            published, repeats = by_sequence(
                values(read_committed(kafka.bootstrap, topics.output("stage_changes"))), cutoff)
            want, _ = by_sequence(reference.stage_changes(), cutoff)
            context = f"records committed after each kill: {kills}"
            assert repeats == 0, f"{repeats} stage changes seen twice by read_committed; {context}"
            assert published == want, (
                f"{len(want.keys() - published.keys())} missing, "
                f"{len(published.keys() - want.keys())} extra; {context}")
            assert journeyd.metric_sum("journeyd_transactions_total") > 0
        finally:
            assert journeyd.stop() == 0
    finally:
        reference.stop()
        kafka.delete_topics(created)
