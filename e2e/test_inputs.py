"""Several input topics, two instances, one consumer group, on Apache Kafka.

Touchpoints of one customer arrive on two topics (say, web and app), both
keyed by customer and co-partitioned. Partition p of every input topic, and
of the erasure topic, must be read by the one instance that owns partition p
of the first input topic: each customer then has one state, in one
instance, with one writer of its changelog key, and an erasure request
reaches it.
"""

from __future__ import annotations

import json
import time
import zlib

from harness import Journeyd, consume, produce, wait_for, write_config

PARTITIONS = 5
PER_PARTITION = 12
ACTIONS = ("page_view", "product_view", "page_view", "product_view", "page_view", "purchase")


def partition_of(customer: str) -> int:
    return zlib.crc32(customer.encode()) % PARTITIONS


def touchpoint(customer: str, n: int, at: int) -> bytes:
    return json.dumps({"event_id": f"{customer}-{n}", "customer_id": customer, "occurred_at": at,
                       "channel": "web" if n % 2 == 0 else "app", "action": ACTIONS[n % len(ACTIONS)]}).encode()


def produce_by_partition(bootstrap, topic, records):
    """(customer, value) pairs, each to its customer's partition, in order."""
    for p in range(PARTITIONS):
        mine = [(c.encode(), v) for c, v in records if partition_of(c) == p]
        if mine:
            produce(bootstrap, topic, mine, partition=p)


def customers() -> list[str]:
    found: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    n = 0
    while any(len(c) < PER_PARTITION for c in found.values()):
        name = f"c-{n:05d}"
        if len(found[partition_of(name)]) < PER_PARTITION:
            found[partition_of(name)].append(name)
        n += 1
    return sorted(c for names in found.values() for c in names)


def holders(instances, customer):
    """The instances holding `customer`, with their views (each asked
    for itself: any instance would answer for the owner)."""
    found = []
    for n, j in enumerate(instances):
        status, body = j.get_here(f"/customers/{customer}")
        if status == 200:
            found.append((n, json.loads(body)))
        else:
            assert status == 404 or (status == 503 and "not_owner" in body), (status, body)
    return found


def test_two_input_topics_and_the_erasure_topic_follow_one_assignment(broker, topics, tmp_path):
    boot = broker.bootstrap
    web, app = f"{topics.prefix}.web", f"{topics.prefix}.app"
    topics.inputs = {web: "json", app: "json"}
    broker.create_topics({web: PARTITIONS, app: PARTITIONS, **topics.all_outputs(PARTITIONS)})
    group = f"{topics.prefix}-group"
    instances = []
    try:
        for n in (1, 2):
            config = tmp_path / f"journeyd-{n}.toml"
            port = write_config(config, boot, group, topics)
            instances.append(Journeyd(config, port, tmp_path / f"journeyd-{n}.log"))
        wait_for("both instances ready, all partitions assigned",
                 lambda: all(j.ready() for j in instances)
                 and all(j.metric_sum("journeyd_assigned_partitions") > 0 for j in instances)
                 and sum(j.metric_sum("journeyd_assigned_partitions") for j in instances) == 2 * PARTITIONS,
                 timeout=90, every=0.5)

        # Every customer's touchpoints alternate between the two topics.
        now = int(time.time() * 1000)
        start = now - 2 * 3_600_000
        names = customers()
        sent = {web: [], app: []}
        for i, c in enumerate(names):
            for n in range(len(ACTIONS)):
                sent[web if n % 2 == 0 else app].append((c, touchpoint(c, n, start + i * 1000 + n * 60_000)))
        for topic, records in sent.items():
            produce_by_partition(boot, topic, records)
        # A later touchpoint on every partition of each topic moves every
        # partition's time past the customers' touchpoints.
        for topic in (web, app):
            for p in range(PARTITIONS):
                sentinel = f"zz-{topic}-{p}"
                produce(boot, topic, [(sentinel.encode(), touchpoint(sentinel, 0, now - 600_000))], partition=p)

        def all_held_once():
            for c in names:
                found = holders(instances, c)
                if len(found) != 1 or found[0][1]["touchpoint_count"] != len(ACTIONS):
                    return False
            return True

        try:
            wait_for("every customer held by one instance with all six touchpoints", all_held_once,
                     timeout=120, every=1.0)
        except AssertionError:
            split = {c: [(n, v["touchpoint_count"]) for n, v in holders(instances, c)] for c in names}
            wrong = {c: h for c, h in split.items() if len(h) != 1 or h[0][1] != len(ACTIONS)}
            raise AssertionError(f"{len(wrong)} customers not held once with every touchpoint "
                                 f"(instance, touchpoints), e.g. {dict(list(wrong.items())[:5])}")

        # Each stage change is published once per (customer, sequence), by one writer.
        changes = [json.loads(v) for _, v, _, _, _ in consume(boot, topics.output("stage_changes"))]
        by_key = {}
        for e in changes:
            if e["customer_id"].startswith("zz-"):
                continue
            assert by_key.setdefault((e["customer_id"], e["sequence"]), e) == e
        for c in names:
            sequences = sorted(s for (cc, s) in by_key if cc == c)
            assert sequences == list(range(1, len(sequences) + 1)) and sequences, (c, sequences)

        # Erasure requests on the erasure topic, three per partition.
        erased = [c for p in range(PARTITIONS) for c in [n for n in names if partition_of(n) == p][:3]]
        produce_by_partition(boot, topics.output("erasure"), [(c, b"") for c in erased])
        wait_for("every erased customer gone from both instances",
                 lambda: all(not holders(instances, c) for c in erased), timeout=60, every=1.0)
        kept = [c for c in names if c not in erased]
        assert all(len(holders(instances, c)) == 1 for c in kept)
        audits = [json.loads(v) for _, v, _, _, _ in consume(boot, topics.output("audit"))]
        proofs = sorted(a["customer_id"] for a in audits if a["type"] == "customer_erased")
        assert proofs == sorted(erased)

        # A later touchpoint, on the second topic, starts a new journey in one place.
        again = erased[0]
        produce_by_partition(boot, app, [(again, touchpoint(again, 100, now - 300_000))])
        produce(boot, app, [(b"zz-late", touchpoint("zz-late", 1, now - 60_000))], partition=partition_of(again))
        wait_for("the erased customer back in one instance with one touchpoint",
                 lambda: [v["touchpoint_count"] for _, v in holders(instances, again)] == [1],
                 timeout=60, every=1.0)

        # The first instance leaves: the second restores its partitions of
        # both topics, every customer whole, the erased ones still gone.
        assert instances[0].stop() == 0
        survivor = instances[1:]
        wait_for("the second instance holding every partition",
                 lambda: survivor[0].ready()
                 and survivor[0].metric_sum("journeyd_assigned_partitions") == 2 * PARTITIONS,
                 timeout=90, every=0.5)
        wait_for("every kept customer restored whole in the second instance",
                 lambda: all([v["touchpoint_count"] for _, v in holders(survivor, c)] == [len(ACTIONS)]
                             for c in kept), timeout=60, every=1.0)
        assert all(not holders(survivor, c) for c in erased if c != again)
        assert [v["touchpoint_count"] for _, v in holders(survivor, again)] == [1]
    finally:
        codes = [j.stop() for j in instances]
    assert codes == [0, 0]
