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


def start_group(broker, topics, tmp_path, instances: list[Journeyd]):
    """Three instances in one group, appended to `instances` as each
    starts (the caller stops them)."""
    boot = broker.bootstrap
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    broker.create_topics({topic: PARTITIONS, **topics.all_outputs(PARTITIONS)})
    group = f"{topics.prefix}-group"
    for n in (1, 2, 3):
        config = tmp_path / f"journeyd-{n}.toml"
        port = write_config(config, boot, group, topics)
        instances.append(Journeyd(config, port, tmp_path / f"journeyd-{n}.log"))


def settle(broker, topics, instances, customers):
    """Waits until the three instances hold two partitions each, then
    produces three touchpoints for each of `customers` and waits until
    they are processed."""
    wait_for("three instances ready with two partitions each",
             lambda: all(j.ready() for j in instances)
             and [j.metric_sum("journeyd_assigned_partitions") for j in instances] == [2, 2, 2],
             timeout=120, every=0.5)
    boot, topic = broker.bootstrap, next(iter(topics.inputs))
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


def test_every_instance_answers_for_every_customer(broker, topics, tmp_path):
    instances: list[Journeyd] = []
    customers = customers_on_every_partition()
    try:
        start_group(broker, topics, tmp_path, instances)
        settle(broker, topics, instances, customers)
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


def test_while_an_instance_dies_a_known_customer_is_never_404(broker, topics, tmp_path):
    """An instance is killed: until the group notices (the session timeout,
    6 s) its customers' lookups answer 503 `owner_unreachable`; then its
    partitions move to the others, which restore them from the changelog
    (503 meanwhile), and both remaining instances answer 200 with the same
    views as before. Never 404."""
    instances: list[Journeyd] = []
    customers = customers_on_every_partition()
    try:
        start_group(broker, topics, tmp_path, instances)
        settle(broker, topics, instances, customers)
        expected = {c: request(instances[0].port, f"/customers/{c}")[1] for c in customers}
        dead, stayers = instances[0], instances[1:]
        dead.kill()
        seen: dict[str, int] = {}
        started = time.monotonic()

        def all_answer():
            answered = True
            for customer in customers:
                for j in stayers:
                    status, body, _ = request(j.port, f"/customers/{customer}")
                    what = f"{status} {body.get('error', '')}".strip()
                    seen[what] = seen.get(what, 0) + 1
                    assert status in (200, 503), (customer, status, body)
                    if status == 200:
                        assert body == expected[customer], (customer, body)
                    else:
                        answered = False
            return answered

        wait_for("the remaining instances answer for every customer", all_answer,
                 timeout=90, every=0.2)
        print(f"answers until settled ({time.monotonic() - started:.1f} s): {seen}")
        assert seen.get("503 owner_unreachable", 0) > 0, seen
        assert [j.metric_sum("journeyd_assigned_partitions") for j in stayers] == [3, 3]
    finally:
        codes = [j.stop() for j in instances]
    assert codes[1:] == [0, 0]
