"""A device clock running fast, against Apache Kafka.

Steady traffic stamped with the real wall clock goes to every partition,
and early on one touchpoint per partition stamped 4 minutes ahead (within
`time.max_future_skew`, so accepted). In `hybrid` time mode a partition's
event time goes no further than the wall clock: the touchpoints after the
fast one are on time, and each funnel window closes with every entry sent
for it. Short windows and lateness keep the run to seconds.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from confluent_kafka import Producer

from harness import Journeyd, consume, wait_for, write_config
from test_crash import assigned
from test_pipeline import values

PARTITIONS = 3
WINDOW_MS = 2_000
LATENESS_MS = 2_000
AHEAD_MS = 4 * 60_000
TRAFFIC_S = 12.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def touchpoint(event_id: str, at: int) -> bytes:
    return json.dumps({"event_id": event_id, "customer_id": event_id, "occurred_at": at,
                       "channel": "web", "action": "ad_click"}).encode()


def test_a_fast_device_clock_neither_makes_touchpoints_late_nor_closes_windows_early(
        broker, topics, tmp_path):
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    broker.create_topics({topic: PARTITIONS, **topics.all_outputs(PARTITIONS)})
    config = tmp_path / "journeyd.toml"
    port = write_config(config, broker.bootstrap, f"{topics.prefix}-group", topics)
    config.write_text(config.read_text().replace(
        "[time]\n",
        f'[time]\nfunnel_window = "{WINDOW_MS}ms"\nallowed_lateness = "{LATENESS_MS}ms"\n', 1))
    journeyd = Journeyd(config, port, tmp_path / "journeyd.log")
    try:
        wait_for("journeyd ready with every partition",
                 lambda: journeyd.ready() and assigned(journeyd) == PARTITIONS, timeout=60)

        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5,
                             "enable.idempotence": True})
        failures = []

        def send(p: int, event_id: str, at: int):
            producer.produce(topic, key=event_id.encode(), value=touchpoint(event_id, at), partition=p,
                             on_delivery=lambda err, _m: err and failures.append(err))
            producer.poll(0)

        sent = Counter()  # window start -> touchpoints on time
        started, n = time.monotonic(), 0
        while time.monotonic() - started < TRAFFIC_S:
            n += 1
            for p in range(PARTITIONS):
                at = now_ms()
                send(p, f"c{n}-{p}", at)
                sent[at - at % WINDOW_MS] += 1
                last = min(last, at) if p else at
                if n == 10:
                    send(p, f"fast-{p}", now_ms() + AHEAD_MS)
            time.sleep(0.05)
        assert producer.flush(30) == 0 and not failures, failures[:3]
        del producer

        # Windows that end before every partition's last touchpoint minus
        # the lateness close while traffic flows (partitions never go idle
        # in this suite); the first one may have begun before the traffic.
        first, closed_by = min(sent), last - LATENESS_MS
        expected = {start: count for start, count in sent.items()
                    if start > first and start + WINDOW_MS < closed_by}
        assert len(expected) >= 3, expected
        total = PARTITIONS * (n + 1)
        wait_for(f"{total} touchpoints consumed",
                 lambda: journeyd.alive()
                 and journeyd.metric_sum("journeyd_events_consumed_total") >= total,
                 timeout=30)
        windows = {}
        for w in values(consume(broker.bootstrap, topics.output("funnel"), settle=2.0)):
            assert w["window_start"] not in windows, f"one instance emits a window once: {w}"
            windows[w["window_start"]] = w
        got = {start: sum(e["count"] for e in windows[start]["entries"] if e["stage"] == "awareness")
               for start in expected if start in windows}
        assert got == expected, "entries per window: every touchpoint sent for it"
        assert all(windows[start]["late_events"] == 0 for start in expected)

        metrics = journeyd.metrics()
        late, ahead = metrics.get("journeyd_events_late_total"), metrics.get("journeyd_events_ahead_total")
        assert late == 0, late
        assert ahead is not None and ahead >= PARTITIONS, f"the fast touchpoints are counted: {ahead}"
        print(f"{len(expected)} windows complete ({sum(expected.values())} entries), "
              f"{total} touchpoints, {ahead:.0f} ahead of the clock, {late:.0f} late")
        assert journeyd.stop() == 0
    finally:
        journeyd.kill()
