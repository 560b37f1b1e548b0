"""End-to-end benchmark: journeyd's catch-up throughput on a real broker.

Preloads a topic on a tansu broker with N generated touchpoints, then, for
each of several rounds, measures:

- the ceiling: a bare rdkafka consumer configured like journeyd's source
  that only reads the topic (examples/bare_consumer.rs), first poll to last
  record;
- journeyd: `journeyd run` in a new consumer group, from its first consumed
  record to the commit of the last input offset, with every derived event
  published (JSON outputs) and acknowledged on the way;

and prints the medians, their ratio and journeyd's processing latency
(poll -> output acknowledged) percentiles from its own histogram.

    scripts/bench-e2e [--events 1000000] [--partitions 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    ROOT, Broker, Journeyd, Topics, committed, produce, wait_for, write_config,
)

BARE = ROOT / "target" / "release" / "examples" / "bare_consumer"
DAY_MS = 86_400_000


def preload(journeyd: Path, broker: Broker, topic: str, events: int, partitions: int) -> int:
    customers = max(events // 9, 1)  # about 11 records each: enough to reach the limit
    started = time.monotonic()
    subprocess.run([str(journeyd), "generate", "--brokers", broker.bootstrap, "--topic", topic,
                    "--rate", "0", "--timestamps", "generated", "--invalid-ratio", "0",
                    "--customers", str(customers), "--limit", str(events),
                    "-X", "linger.ms=50", "-X", "batch.size=1000000"],
                   check=True, stderr=subprocess.DEVNULL)
    # `generate` exits non-zero unless every record was acknowledged.
    produced = events
    print(f"preloaded {produced:,} records in {time.monotonic() - started:.1f}s", file=sys.stderr)
    # One record per partition after the rest (the generated span ends by
    # 2026-05-01; this is 2026-07-01): it moves each partition's watermark
    # past the preloaded events, so their offsets can be committed.
    for p in range(partitions):
        record = {"event_id": f"end-{p}", "customer_id": f"end-{p}", "occurred_at": 1_782_864_000_000,
                  "channel": "web", "action": "page_view"}
        produce(broker.bootstrap, topic, [(record["customer_id"].encode(), json.dumps(record).encode())],
                partition=p)
    return produced


def ceiling(broker: Broker, topic: str, records: int) -> float:
    out = subprocess.run([str(BARE), broker.bootstrap, topic, str(records)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["per_second"]


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style histogram_quantile over cumulative (le, count) pairs."""
    total = buckets[-1][1]
    rank, prev_le, prev_count = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_le, prev_count = le, count
    return prev_le


def latency_buckets(instance: Journeyd) -> list[tuple[float, float]]:
    buckets = []
    for name, value in instance.metrics().items():
        if name.startswith("journeyd_processing_latency_seconds_bucket"):
            le = name.split('le="')[1].split('"')[0]
            buckets.append((float(le), value))
    return sorted(buckets)


def journeyd_round(journeyd: Path, broker, topics, topic, records, workdir: Path, n: int):
    group = f"bench-{n}"
    config = workdir / f"journeyd-{n}.toml"
    port = write_config(config, broker.bootstrap, group, topics, commit_interval="100ms")
    instance = Journeyd(config, port, workdir / f"journeyd-{n}.log", binary=journeyd)
    try:
        wait_for("journeyd's first record", lambda: instance.alive()
                 and instance.metric_sum("journeyd_events_consumed_total") > 0, 120, every=0.02)
        started = time.monotonic()
        wait_for("every preloaded offset committed", lambda: instance.alive()
                 and committed(broker.bootstrap, group, topic) >= records, 600, every=0.05)
        seconds = time.monotonic() - started
        buckets = latency_buckets(instance)
    finally:
        instance.stop()
    return records / seconds, {q: quantile(buckets, q) for q in (0.5, 0.9, 0.99)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    journeyd = ROOT / "target" / "release" / "journeyd"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        try:
            topics = Topics(prefix="bench")
            topic = "bench.touchpoints"
            topics.inputs = {topic: "json"}
            broker.create_topics({topic: args.partitions, **topics.all_outputs(args.partitions)})
            records = preload(journeyd, broker, topic, args.events, args.partitions)
            bare, ours, latencies = [], [], []
            for n in range(args.rounds):
                bare.append(ceiling(broker, topic, records + args.partitions))
                rate, latency = journeyd_round(journeyd, broker, topics, topic, records, workdir, n)
                ours.append(rate)
                latencies.append(latency)
                print(f"round {n + 1}: bare consumer {bare[-1]:,.0f}/s, journeyd {rate:,.0f}/s, "
                      f"p50 {latency[0.5] * 1e3:.1f} ms, p99 {latency[0.99] * 1e3:.1f} ms", file=sys.stderr)
        finally:
            broker.stop()
    b, o = statistics.median(bare), statistics.median(ours)
    summary = {
        "events": records, "partitions": args.partitions, "rounds": args.rounds,
        "bare_consumer_per_second": round(b), "journeyd_per_second": round(o),
        "ratio": round(o / b, 3),
        "processing_latency_ms": {f"p{int(q * 100)}": round(statistics.median(l[q] for l in latencies) * 1e3, 2)
                                  for q in (0.5, 0.9, 0.99)},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
