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

With --restore it measures restore instead. A changelog of C generated
customers, one record each, is written once through journeyd's own
producer (examples/write_changelog.rs), read back once by the bare
consumer (its bytes per customer and read rate, the ceiling); then, for
each round, `journeyd run` starts in a new consumer group over an empty
input topic, so it must restore every customer, and the time from the
assignment to the end of each partition's restore is read from its
"Partition state restored." log lines (the round takes as long as its
slowest partition); its restore metrics must count every customer.

    scripts/bench-e2e [--events 1000000] [--partitions 6] [--rounds 3]
    scripts/bench-e2e --restore [--customers 1000000] [--partitions 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
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
WRITE_CHANGELOG = ROOT / "target" / "release" / "examples" / "write_changelog"
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
    return bare_read(broker, topic, records)["per_second"]


def bare_read(broker: Broker, topic: str, records: int) -> dict:
    out = subprocess.run([str(BARE), broker.bootstrap, topic, str(records)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


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
    # A changelog of its own: with the previous round's, every customer
    # would be restored with its touchpoints already applied.
    topics = dataclasses.replace(topics, changelog_topic=f"{topics.prefix}.state-changelog-{n}")
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
        restored = instance.metric_sum("journeyd_restore_customers_total")
        assert restored == 0, f"round {n} restored {restored:.0f} customers: its changelog is not new"
        assert instance.metric_sum("journeyd_outputs_total") > 0, f"round {n} published nothing"
    finally:
        instance.stop()
    return records / seconds, {q: quantile(buckets, q) for q in (0.5, 0.9, 0.99)}


def restore_log_lines(log: Path) -> list[dict[str, int]]:
    """The numeric fields of journeyd's "Partition state restored." lines."""
    return [{name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", line)}
            for line in log.read_text().splitlines() if "Partition state restored." in line]


def restore_round(journeyd: Path, broker, topics, customers: int, workdir: Path, n: int) -> dict:
    """One restore into a fresh instance; returns its figures."""
    group = f"restore-{n}"
    config = workdir / f"journeyd-restore-{n}.toml"
    port = write_config(config, broker.bootstrap, group, topics)
    log = workdir / f"journeyd-restore-{n}.log"
    instance = Journeyd(config, port, log, binary=journeyd)
    try:
        wait_for("every customer restored", lambda: instance.alive()
                 and instance.metric_sum("journeyd_assigned_partitions") > 0
                 and instance.metric_sum("journeyd_restore_partitions_restoring") == 0
                 and instance.metric_sum("journeyd_restore_customers_total") >= customers, 600, every=0.1)
        metrics = instance.metrics()
    finally:
        instance.stop()
    done = restore_log_lines(log)
    restored = sum(d["customers"] for d in done)
    seconds = max(d["elapsed_ms"] for d in done) / 1e3
    assert restored == metrics["journeyd_restore_customers_total"] >= customers, (restored, metrics)
    return {"partitions": len(done), "customers": restored, "seconds": seconds,
            "records": int(metrics["journeyd_restore_records_total"]),
            "customers_per_second": restored / seconds}


def restore_main(args):
    journeyd = ROOT / "target" / "release" / "journeyd"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        try:
            topics = Topics(prefix="restore")
            topic = "restore.touchpoints"
            topics.inputs = {topic: "json"}
            broker.create_topics({topic: args.partitions, **topics.all_outputs(args.partitions)})
            broker.create_topics({topics.changelog: args.partitions}, config={"cleanup.policy": "compact"})
            started = time.monotonic()
            out = subprocess.run([str(WRITE_CHANGELOG), broker.bootstrap, topics.changelog, topic,
                                  str(args.partitions), str(args.customers)],
                                 check=True, capture_output=True, text=True)
            written = json.loads(out.stdout)
            records = written["records"]
            print(f"wrote {records:,} changelog records ({written['touchpoints']:,} touchpoints "
                  f"applied) in {time.monotonic() - started:.1f}s", file=sys.stderr)
            read = bare_read(broker, topics.changelog, records)
            print(f"bare consumer read the changelog at {read['per_second']:,.0f} records/s",
                  file=sys.stderr)
            rounds = []
            for n in range(args.rounds):
                rounds.append(restore_round(journeyd, broker, topics, records, workdir, n))
                r = rounds[-1]
                assert r["records"] == records, f"read {r['records']:,} records, not {records:,}"
                print(f"round {n + 1}: {r['customers']:,} customers restored in {r['seconds']:.2f}s, "
                      f"{r['customers_per_second']:,.0f}/s", file=sys.stderr)
        finally:
            broker.stop()

    def per_customer(size: int) -> float:
        return round(size / records, 1)

    summary = {
        "customers": records, "partitions": args.partitions, "rounds": args.rounds,
        "changelog_bytes_per_customer": {
            "value": per_customer(written["value_bytes"]),
            "key_and_value": per_customer(written["value_bytes"] + written["key_bytes"]),
            "key_and_value_read_back": per_customer(read["bytes"] + read["key_bytes"]),
        },
        "bare_consumer_changelog_records_per_second": round(read["per_second"]),
        "restore_customers_per_second": [round(r["customers_per_second"]) for r in rounds],
        "restore_seconds": [r["seconds"] for r in rounds],
        "restore_records": [r["records"] for r in rounds],
        "median_restore_customers_per_second": round(statistics.median(
            r["customers_per_second"] for r in rounds)),
    }
    print(json.dumps(summary, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--restore", action="store_true",
                        help="measure restore from a changelog of --customers customers")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.restore:
        return restore_main(args)
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
