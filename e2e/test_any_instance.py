"""Any instance answers for any customer: three instances in one group,
each asked about customers on every partition, answer the same view
(forwarding to the owner of the customer's partition), 404 only for a
customer unknown to the group, and a forwarded request is never forwarded
again.

The touchpoints are produced with librdkafka's default partitioner, as
journeyd assumes by default (`consistent_random`: CRC32 of the key).
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.error
import urllib.request
import zlib

from harness import Journeyd, produce, wait_for, write_config

PARTITIONS = 6
GUARD = "Journeyd-Forwarded-From"


def partition_of(customer: str) -> int:
    return zlib.crc32(customer.encode()) % PARTITIONS


def customers_on_every_partition(per_partition: int = 2) -> list[str]:
    chosen: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    n = 0
    while any(len(c) < per_partition for c in chosen.values()):
        name = f"c-{n}"
        n += 1
        if len(chosen[partition_of(name)]) < per_partition:
            chosen[partition_of(name)].append(name)
    return [c for p in sorted(chosen) for c in chosen[p]]


def request(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, float]:
    """(status, JSON body, seconds taken)."""
    started = time.monotonic()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    return status, json.loads(body), time.monotonic() - started


def touchpoint(customer: str, n: int, at: int) -> tuple[bytes, bytes]:
    record = {"event_id": f"{customer}-{n}", "customer_id": customer, "occurred_at": at,
              "channel": "web", "action": "page_view"}
    return customer.encode(), json.dumps(record).encode()


def test_every_instance_answers_for_every_customer(broker, topics, tmp_path):
    boot = broker.bootstrap
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    broker.create_topics({topic: PARTITIONS, **topics.all_outputs(PARTITIONS)})
    group = f"{topics.prefix}-group"
    instances: list[Journeyd] = []
    try:
        for n in (1, 2, 3):
            config = tmp_path / f"journeyd-{n}.toml"
            port = write_config(config, boot, group, topics)
            instances.append(Journeyd(config, port, tmp_path / f"journeyd-{n}.log"))
        wait_for("three instances ready with two partitions each",
                 lambda: all(j.ready() for j in instances)
                 and [j.metric_sum("journeyd_assigned_partitions") for j in instances] == [2, 2, 2],
                 timeout=120, every=0.5)

        customers = customers_on_every_partition()
        now = int(time.time() * 1000)
        produce(boot, topic, [touchpoint(c, i, now - 600_000 + i) for c in customers for i in range(3)])
        # One touchpoint per partition at the wall clock moves every
        # partition's watermark past the customers' touchpoints.
        for p in range(PARTITIONS):
            produce(boot, topic, [touchpoint(f"zz-sentinel-{p}", 0, now)], partition=p)

        def settled(customer):
            answers = [request(j.port, f"/customers/{customer}") for j in instances]
            return any(status == 200 and view["touchpoint_count"] == 3
                       and view["pending_events"] == 0 for status, view, _ in answers)

        wait_for("every customer's touchpoints processed",
                 lambda: all(settled(c) for c in customers), timeout=90, every=0.5)

        latencies = {"local": [], "forwarded": []}
        for customer in customers:
            answers = [request(j.port, f"/customers/{customer}") for j in instances]
            assert [status for status, _, _ in answers] == [200, 200, 200], (customer, answers)
            views = [view for _, view, _ in answers]
            assert views[0]["customer_id"] == customer
            assert views[1] == views[0] and views[2] == views[0], (customer, views)

            # With the loop guard a request is answered where it lands: by
            # the owner alone; the others say so, and never 404.
            guarded = [request(j.port, f"/customers/{customer}", {GUARD: "http://test"})
                       for j in instances]
            statuses = sorted(status for status, _, _ in guarded)
            assert statuses == [200, 503, 503], (customer, guarded)
            for (status, body, _), (_, _, seconds) in zip(guarded, answers):
                if status == 503:
                    assert body["error"] == "not_owner", body
                    latencies["forwarded"].append(seconds)
                else:
                    assert body == views[0]
                    latencies["local"].append(seconds)

        for j in instances:
            status, body, _ = request(j.port, "/customers/nobody-at-all")
            assert (status, body["error"]) == (404, "unknown_customer")

        for kind, seconds in latencies.items():
            print(f"{kind}: {len(seconds)} requests, median {statistics.median(seconds) * 1000:.1f} ms, "
                  f"max {max(seconds) * 1000:.1f} ms")
    finally:
        codes = [j.stop() for j in instances]
    assert codes == [0, 0, 0]
