"""End-to-end benchmark on Apache Kafka: journeyd beside Kafka Streams.

One broker (scripts/kafka, one KRaft node on this machine), one input
topic: N touchpoints made by `journeyd generate --out FILE`, loaded as a
real upstream producer would (large lz4 batches, keyed by customer,
record timestamp = event time), then one record per partition after them
(see `preload`). Every round runs each contender once on that same input,
in a rotating order so that the machine's noise spreads over all of them:

- the ceiling: a bare rdkafka consumer with throughput settings
  (examples/bare_consumer.rs) that only reads the topic, first record to
  last;
- journeyd at-least-once and journeyd exactly-once (`journeyd run`, JSON
  outputs);
- Kafka Streams at-least-once and exactly_once_v2: the default journey
  model as a Kafka Streams application (bench/kafka-streams), with a
  persistent, changelogged RocksDB store.

journeyd and Kafka Streams are timed alike: each in a new consumer group
(Kafka Streams: a new application.id) with a new changelog, from its first
processed record to the moment its group has committed every preloaded
offset, each stage change published and acknowledged on the way. Their
processing latency is poll -> acknowledgement of the output, from
journeyd's histogram and from the Kafka Streams application's own; peak
RSS is the process's VmHWM (the JVM's, for Kafka Streams) just before it
is stopped. The table shows the medians over the rounds.

With --restore it measures restore instead. A changelog of C generated
customers, one record each, is written once through journeyd's own
producer (examples/write_changelog.rs), read back once by the bare
consumer (its bytes per customer and read rate, the ceiling); then, for
each round, `journeyd run` starts in a new consumer group over an empty
input topic, so it must restore every customer, and the time from the
assignment to the end of each partition's restore is read from its
"Partition state restored." log lines (the round takes as long as its
slowest partition); its restore metrics must count every customer.

    scripts/bench-e2e [--events 1000000] [--partitions 8] [--rounds 3]
    scripts/bench-e2e --restore [--customers 1000000] [--partitions 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer

from harness import ROOT, Broker, Journeyd, Topics, committed, wait_for, write_config

JOURNEYD = ROOT / "target" / "release" / "journeyd"
BARE = ROOT / "target" / "release" / "examples" / "bare_consumer"
WRITE_CHANGELOG = ROOT / "target" / "release" / "examples" / "write_changelog"
STREAMS_BUILD = ROOT / "target" / "kafka-streams"
STREAMS_MAIN = "io.journeyd.bench.streams.JourneyStreams"
#: The Kafka Streams JVM's heap, as the broker's (scripts/kafka).
STREAMS_JVM = ["-Xms256m", "-Xmx1g"]
#: journeyd's `runtime.commit_interval`; the Kafka Streams application
#: commits as often (commit.interval.ms).
COMMIT_INTERVAL = "100ms"
#: After the generated span (it ends by 2026-05-01): moves every
#: partition's event time past the preloaded touchpoints.
SENTINEL_TIME_MS = 1_782_864_000_000  # 2026-07-01

BARE_CONSUMER = "bare consumer (ceiling)"
JOURNEYD_ALO = "journeyd at-least-once"
JOURNEYD_EOS = "journeyd exactly-once"
STREAMS_ALO = "Kafka Streams at_least_once"
STREAMS_EOS = "Kafka Streams exactly_once_v2"
CONTENDERS = (BARE_CONSUMER, JOURNEYD_ALO, JOURNEYD_EOS, STREAMS_ALO, STREAMS_EOS)
#: Each journeyd mode and the Kafka Streams run it is compared with.
PAIRS = {JOURNEYD_ALO: STREAMS_ALO, JOURNEYD_EOS: STREAMS_EOS}


# --- input ------------------------------------------------------------------

def generate_input(path: Path, events: int):
    customers = max(events // 9, 1)  # about 11 records each: enough to reach the limit
    subprocess.run([str(JOURNEYD), "generate", "--out", str(path), "--seed", "1",
                    "--invalid-ratio", "0", "--customers", str(customers), "--limit", str(events)],
                   check=True, stderr=subprocess.DEVNULL)


def preload(broker: Broker, topic: str, path: Path, partitions: int) -> int:
    """Produces the file's touchpoints in large lz4 batches, keyed by
    customer, each with its event time as the record timestamp (Kafka
    Streams' stream time); returns how many. Then one record per partition
    after the rest: it moves each partition's event time past the preloaded
    touchpoints, so that journeyd may commit their offsets and both
    processors fire the lapses that fall due before it."""
    started = time.monotonic()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "lz4",
                         "linger.ms": 100, "batch.size": 1_000_000, "enable.idempotence": True,
                         "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    def send(value: bytes, key: bytes, at: int, **partition):
        while True:
            try:
                producer.produce(topic, value=value, key=key, timestamp=at, on_delivery=report,
                                 **partition)
                return
            except BufferError:
                producer.poll(0.05)

    produced = 0
    with path.open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            send(line.rstrip(b"\n"), record["customer_id"].encode(), record["occurred_at"])
            produced += 1
            if produced % 10_000 == 0:
                producer.poll(0)
    for p in range(partitions):
        record = {"event_id": f"end-{p}", "customer_id": f"end-{p}", "occurred_at": SENTINEL_TIME_MS,
                  "channel": "web", "action": "page_view"}
        send(json.dumps(record).encode(), record["customer_id"].encode(), SENTINEL_TIME_MS, partition=p)
    left = producer.flush(120)
    assert left == 0 and not failures, f"{left} undelivered, failures: {failures[:3]}"
    print(f"preloaded {produced:,} records in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return produced


# --- measurements -------------------------------------------------------------

def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")


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


def bare_read(broker: Broker, topic: str, records: int) -> dict:
    out = subprocess.run([str(BARE), broker.bootstrap, topic, str(records)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


@dataclasses.dataclass
class Round:
    """One contender's figures in one round. Latency percentiles are read
    alike for both processors, interpolated in the buckets of journeyd's
    histogram; Kafka Streams' exact ones (HdrHistogram) are kept beside."""

    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_mib: float | None = None
    stage_changes: int | None = None
    exact_p50_ms: float | None = None
    exact_p99_ms: float | None = None


@dataclasses.dataclass
class Bench:
    """What every round shares."""

    broker: Broker
    topic: str
    records: int
    partitions: int
    workdir: Path


def bare_round(bench: Bench, _n: int) -> Round:
    return Round(bare_read(bench.broker, bench.topic, bench.records + bench.partitions)["per_second"])


def journeyd_round(bench: Bench, n: int, exactly_once: bool) -> Round:
    mode = "eos" if exactly_once else "alo"
    group = f"bench-journeyd-{mode}-{n}"
    # A changelog of its own: with the previous round's, every customer
    # would be restored with its touchpoints already applied.
    topics = Topics(prefix="bench", inputs={bench.topic: "json"},
                    changelog_topic=f"bench.state-changelog-{mode}-{n}")
    config = bench.workdir / f"journeyd-{mode}-{n}.toml"
    port = write_config(config, bench.broker.bootstrap, group, topics, commit_interval=COMMIT_INTERVAL,
                        extra="exactly_once = true" if exactly_once else "")
    instance = Journeyd(config, port, bench.workdir / f"journeyd-{mode}-{n}.log", binary=JOURNEYD)
    try:
        wait_for("journeyd's first record", lambda: instance.alive()
                 and instance.metric_sum("journeyd_events_consumed_total") > 0, 120, every=0.02)
        started = time.monotonic()
        wait_for("every preloaded offset committed", lambda: instance.alive()
                 and committed(bench.broker.bootstrap, group, bench.topic) >= bench.records, 900, every=0.05)
        seconds = time.monotonic() - started
        rss = peak_rss_mib(instance.process.pid)
        buckets = latency_buckets(instance)
        changes = instance.metric_sum("journeyd_stage_transitions_total")
        restored = instance.metric_sum("journeyd_restore_customers_total")
        assert restored == 0, f"round {n} restored {restored:.0f} customers: its changelog is not new"
        assert changes > 0, f"round {n} published no stage change"
    finally:
        instance.stop()
    bench.broker.delete_topics([topics.changelog])
    return Round(bench.records / seconds, quantile(buckets, 0.5) * 1e3, quantile(buckets, 0.99) * 1e3,
                 rss, int(changes))


class StreamsApp:
    """The Kafka Streams application (bench/kafka-streams) in a JVM of its
    own, started directly (no wrapper shell), so that its pid is the JVM's."""

    def __init__(self, bench: Bench, app_id: str, output: str, guarantee: str,
                 properties: dict[str, str] | None = None):
        self.log_path = bench.workdir / f"{app_id}.log"
        self.report_path = bench.workdir / f"{app_id}.json"
        self.state_dir = bench.workdir / f"{app_id}-state"
        self.log = open(self.log_path, "wb")
        classpath = f"{STREAMS_BUILD / 'classes'}:{STREAMS_BUILD / 'libs'}/*"
        self.process = subprocess.Popen(
            ["java", *STREAMS_JVM, "-cp", classpath, STREAMS_MAIN, bench.broker.bootstrap, bench.topic,
             output, app_id, guarantee, str(self.state_dir), str(self.report_path),
             *(f"{k}={v}" for k, v in (properties or {}).items())],
            stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Kafka Streams exited with {self.process.returncode}:\n"
                                 f"{self.log_path.read_text()[-3000:]}")
        return True

    def processing(self) -> bool:
        return self.alive() and b"First record." in self.log_path.read_bytes()

    def stop(self) -> dict | None:
        """SIGTERM: Kafka Streams closes (committing) and writes its report,
        returned here (None if it wrote none)."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                    raise AssertionError("Kafka Streams did not stop within 60s after SIGTERM")
        finally:
            self.log.close()
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return json.loads(self.report_path.read_text()) if self.report_path.exists() else None


def streams_round(bench: Bench, n: int, guarantee: str) -> Round:
    app_id = f"bench-streams-{guarantee.replace('_', '-')}-{n}"
    output = f"{app_id}.stage-changes"
    # Like journeyd's: one partition. Its records carry event time, so
    # no time-based retention.
    bench.broker.create_topics({output: 1}, config={"retention.ms": "-1"})
    app = StreamsApp(bench, app_id, output, guarantee)
    try:
        wait_for("Kafka Streams' first record", app.processing, 180, every=0.02)
        started = time.monotonic()
        wait_for("every preloaded offset committed", lambda: app.alive()
                 and committed(bench.broker.bootstrap, app_id, bench.topic) >= bench.records, 900, every=0.05)
        seconds = time.monotonic() - started
        rss = peak_rss_mib(app.process.pid)
    finally:
        report = app.stop()
    internal = [t for t in bench.broker.admin.list_topics(timeout=10).topics if t.startswith(app_id)]
    bench.broker.delete_topics(internal)
    assert report and report["invalid"] == 0 and report["stage_changes"] > 0, report
    buckets = [(float(le), count) for le, count in report["latency_buckets"]]
    exact = report["latency_ms"]
    return Round(bench.records / seconds, quantile(buckets, 0.5) * 1e3, quantile(buckets, 0.99) * 1e3,
                 rss, report["stage_changes"], exact["p50"], exact["p99"])


RUNS = {
    BARE_CONSUMER: bare_round,
    JOURNEYD_ALO: lambda bench, n: journeyd_round(bench, n, exactly_once=False),
    JOURNEYD_EOS: lambda bench, n: journeyd_round(bench, n, exactly_once=True),
    STREAMS_ALO: lambda bench, n: streams_round(bench, n, "at_least_once"),
    STREAMS_EOS: lambda bench, n: streams_round(bench, n, "exactly_once_v2"),
}


# --- the table ----------------------------------------------------------------

def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.0f} GiB"


def summarize(rounds: dict[str, list[Round]]) -> dict[str, dict]:
    """Per contender, the median of each figure over the rounds."""
    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    medians = {name: {field.name: median(getattr(r, field.name) for r in results)
                      for field in dataclasses.fields(Round)}
               for name, results in rounds.items()}
    ceiling = medians[BARE_CONSUMER]["per_second"]
    for name, m in medians.items():
        m["ratio_to_ceiling"] = m["per_second"] / ceiling
        m["rounds"] = [{k: (round(v, 2) if isinstance(v, float) else v)
                        for k, v in dataclasses.asdict(r).items()} for r in rounds[name]]
    for ours, theirs in PAIRS.items():
        medians[ours]["ratio_to_kafka_streams"] = medians[ours]["per_second"] / medians[theirs]["per_second"]
    return medians


def table(medians: dict[str, dict]) -> str:
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = ["| contender | events/s | ratio to ceiling | journeyd / Kafka Streams "
             "| p50 latency ms | p99 latency ms | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in CONTENDERS:
        m = medians[name]
        lines.append(f"| {name} | {m['per_second']:,.0f} | {m['ratio_to_ceiling']:.3f} "
                     f"| {cell(m.get('ratio_to_kafka_streams'), '.2f')} | {cell(m['p50_ms'], '.1f')} "
                     f"| {cell(m['p99_ms'], '.1f')} | {cell(m['peak_rss_mib'], ',.0f')} |")
    return "\n".join(lines)


def print_round(n: int, results: dict[str, Round]):
    parts = []
    for name, r in results.items():
        figures = f"{r.per_second:,.0f}/s"
        if r.p50_ms is not None:
            figures += (f", p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, {r.peak_rss_mib:,.0f} MiB, "
                        f"{r.stage_changes:,} stage changes")
        if r.exact_p50_ms is not None:
            figures += f" (exact p50 {r.exact_p50_ms:.1f} ms, p99 {r.exact_p99_ms:.1f} ms)"
        parts.append(f"  {name}: {figures}")
    print(f"round {n + 1}:\n" + "\n".join(parts), file=sys.stderr)


def main_throughput(args):
    load_before = os.getloadavg()
    rounds: dict[str, list[Round]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        try:
            topic = "bench.touchpoints"
            # The outputs journeyd writes; their records carry wall-clock time.
            broker.create_topics(Topics(prefix="bench").all_outputs(args.partitions))
            # The input's records carry event time (months ago): no time-based retention.
            broker.create_topics({topic: args.partitions}, config={"retention.ms": "-1"})
            source = workdir / "touchpoints.ndjson"
            generate_input(source, args.events)
            records = preload(broker, topic, source, args.partitions)
            source.unlink()
            bench = Bench(broker, topic, records, args.partitions, workdir)
            for n in range(args.rounds):
                # Each round starts with another contender, so none always runs first or last.
                order = CONTENDERS[n % len(CONTENDERS):] + CONTENDERS[:n % len(CONTENDERS)]
                results = {name: RUNS[name](bench, n) for name in order}
                for name, r in results.items():
                    rounds[name].append(r)
                print_round(n, results)
        finally:
            broker.stop()
    medians = summarize(rounds)
    print(f"\n{records:,} touchpoints (JSON, {args.partitions} partitions, lz4), medians of "
          f"{args.rounds} round(s); Apache Kafka 4.4.0, one node on the same machine; {machine()}; "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
          f"Commits every {COMMIT_INTERVAL}; Kafka Streams with 2 stream threads, JVM "
          f"{' '.join(STREAMS_JVM)}; latency is poll -> output acknowledged, "
          f"percentiles interpolated in journeyd's histogram buckets for both.\n")
    print(table(medians) + "\n")
    summary = {
        "events": records, "partitions": args.partitions, "rounds": args.rounds, "machine": machine(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "contenders": {name: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items()}
                       for name, m in medians.items()},
    }
    print(json.dumps(summary, indent=2))


# --- restore ------------------------------------------------------------------

def restore_log_lines(log: Path) -> list[dict[str, int]]:
    """The numeric fields of journeyd's "Partition state restored." lines."""
    return [{name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", line)}
            for line in log.read_text().splitlines() if "Partition state restored." in line]


def restore_round(broker, topics, customers: int, workdir: Path, n: int) -> dict:
    """One restore into a fresh instance; returns its figures."""
    group = f"restore-{n}"
    config = workdir / f"journeyd-restore-{n}.toml"
    port = write_config(config, broker.bootstrap, group, topics)
    log = workdir / f"journeyd-restore-{n}.log"
    instance = Journeyd(config, port, log, binary=JOURNEYD)
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


def main_restore(args):
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
                rounds.append(restore_round(broker, topics, records, workdir, n))
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
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--restore", action="store_true",
                        help="measure restore from a changelog of --customers customers")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.restore:
        return main_restore(args)
    return main_throughput(args)


if __name__ == "__main__":
    main()
