"""Processes and Kafka plumbing for the end-to-end suite.

Everything here talks to Kafka with confluent-kafka (Python), not with
journeyd's own code, so the suite checks journeyd's wire output as any
downstream consumer would see it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
JOURNEYD = Path(os.environ.get("JOURNEYD_BIN", ROOT / "target" / "debug" / "journeyd"))
KAFKA = ROOT / "scripts" / "kafka"

OUTPUTS = ("stage_changes", "churn_risk", "funnel", "moments", "dlq", "audit", "erasure")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float, every: float = 0.2):
    """Polls `check` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Broker:
    """Apache Kafka (one KRaft node, scripts/kafka) on free loopback ports,
    with a fresh, empty log directory under `log_dir`."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_dir / "kafka.log"
        self.log = open(self.log_path, "wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [str(KAFKA), "run", str(log_dir), str(self.port), str(free_port())],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for("Apache Kafka to start", self._started, 90)
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap})
        wait_for("Apache Kafka to answer metadata requests", self._answers, 30)
        print(f"Apache Kafka started in {time.monotonic() - started:.1f}s on {self.bootstrap}")

    def _started(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Kafka exited with {self.process.returncode}; see {self.log_path}")
        return b"Kafka Server started" in self.log_path.read_bytes()

    def _answers(self) -> bool:
        try:
            self.admin.list_topics(timeout=1)
            return True
        except KafkaException:
            return False

    def create_topics(self, partitions: dict[str, int], config: dict[str, str] | None = None):
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=1, config=config or {})
             for name, n in partitions.items()],
            operation_timeout=10,
        )
        for name, future in futures.items():
            future.result(timeout=20)
        wait_for("the new topics in metadata",
                 lambda: set(partitions) <= set(self.admin.list_topics(timeout=5).topics), 20)

    def delete_topics(self, names):
        """Deletes topics a test or a benchmark round no longer needs, to
        keep the broker's memory and disk in check over a long run."""
        for future in self.admin.delete_topics(list(names), operation_timeout=30).values():
            try:
                future.result(timeout=60)
            except KafkaException:
                pass

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class Topics:
    """One test's topic names, prefixed so tests sharing a broker do not meet."""

    prefix: str
    inputs: dict[str, str] = field(default_factory=dict)
    #: Another state changelog than the prefix's, e.g. one per benchmark round.
    changelog_topic: str | None = None

    def output(self, kind: str) -> str:
        return f"{self.prefix}.{kind.replace('_', '-')}"

    def all_outputs(self, input_partitions: int = 1) -> dict[str, int]:
        """Every output topic, one partition each, but the erasure topic:
        it is co-partitioned with the (first) input topic."""
        return {self.output(kind): input_partitions if kind == "erasure" else 1
                for kind in OUTPUTS}

    @property
    def changelog(self) -> str:
        """The state changelog: journeyd creates it, co-partitioned with
        the inputs, unless the test does."""
        return self.changelog_topic or f"{self.prefix}.state-changelog"


def write_config(path: Path, bootstrap: str, group: str, topics: Topics, *,
                 schemas_dir: Path | None = None, output_format: str = "json",
                 output_schema_ids: dict[str, int] | None = None,
                 commit_interval: str = "500ms", extra: str = "") -> int:
    """Writes a journeyd config; returns its HTTP port."""
    port = free_port()
    inputs = "\n".join(
        f'[[inputs]]\ntopic = "{topic}"\nencoding = "{encoding}"\n'
        for topic, encoding in topics.inputs.items()
    )
    outputs = "\n".join(f'{kind} = "{topics.output(kind)}"' for kind in OUTPUTS)
    registry = f'schemas_dir = "{schemas_dir}"\n' if schemas_dir else ""
    if output_schema_ids:
        registry += "[schema_registry.output_schema_ids]\n" + "\n".join(
            f"{kind} = {id_}" for kind, id_ in output_schema_ids.items()) + "\n"
    path.write_text(f"""
[time]
mode = "hybrid"
# Long enough that a partition never counts as idle while the suite runs:
# the end of input is marked by a late sentinel record on every partition.
idle_timeout = "1h"

[kafka]
brokers = "{bootstrap}"
group_id = "{group}"

[kafka.consumer_properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

{inputs}
[outputs]
format = "{output_format}"
{outputs}

[schema_registry]
{registry}
[http]
listen = "127.0.0.1:{port}"

[runtime]
commit_interval = "{commit_interval}"
shutdown_timeout = "20s"
changelog_topic = "{topics.changelog}"
{extra}
""")
    return port


class Journeyd:
    """`journeyd run` in a child process, stopped (or killed) at the end."""

    def __init__(self, config: Path, port: int, log: Path, binary: Path = JOURNEYD):
        self.port = port
        self.log_path = log
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [str(binary), "run", "--config", str(config)],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def get_here(self, path: str) -> tuple[int, str]:
        """`GET path` answered by this instance alone: marked as forwarded
        already, so a customer held elsewhere is 503 `not_owner`, not the
        owner's answer."""
        return self.get(path, {"journeyd-forwarded-from": "http://test"})

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"journeyd exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
        return True

    def ready(self) -> bool:
        return self.alive() and self.get("/readyz")[0] == 200

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed by name with labels; none while
        the HTTP server is not up yet."""
        status, text = self.get("/metrics")
        if status == 0:
            return {}
        assert status == 200, status
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def metric_sum(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.split("{")[0] == prefix)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("journeyd did not stop within the timeout after SIGTERM")
        self.log.close()
        return self.process.returncode

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


def produce(bootstrap: str, topic: str, records, partition: int | None = None, **settings):
    """Produces (key, value) pairs in order and waits for every delivery;
    `settings` are more producer properties."""
    settings = {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True,
                "compression.type": "lz4", **settings}
    producer = Producer(settings)
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    for key, value in records:
        kwargs = {"partition": partition} if partition is not None else {}
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=report, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(30)
    assert left == 0 and not failures, f"{left} undelivered, failures: {failures[:3]}"


def partitions_of(bootstrap: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return len(admin.list_topics(topic, timeout=5).topics[topic].partitions)


def consume(bootstrap: str, topic: str, *, settle: float = 3.0, timeout: float = 120.0):
    """Reads `topic` from the start until nothing new arrives for `settle`
    seconds; returns the messages (key, value, headers, partition, offset)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-reader-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    n = partitions_of(bootstrap, topic)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(n)])
    messages, last_new, started = [], time.monotonic(), time.monotonic()
    try:
        while time.monotonic() - last_new < settle:
            assert time.monotonic() - started < timeout, f"{topic} kept growing for {timeout}s"
            for m in consumer.consume(500, timeout=0.2):
                if m.error():
                    continue
                messages.append((m.key(), m.value(), dict(m.headers() or []), m.partition(), m.offset()))
                last_new = time.monotonic()
    finally:
        consumer.close()
    return messages


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-offsets"})
    try:
        total = 0
        for p in range(partitions_of(bootstrap, topic)):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
            total += high
        return total
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offsets of `topic`, summed. Read without
    waiting for a transaction that may still commit offsets (a
    read_committed client asks for stable offsets, and a killed
    producer's open transaction would hold the answer back)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "isolation.level": "read_uncommitted"})
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions_of(bootstrap, topic))]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


# --- Avro in the Confluent wire format -------------------------------------

def avro_schema(name: str, logical_types: bool = True):
    """A schema of schemas/; without logical types, timestamps read as the
    plain longs journeyd's JSON carries."""
    schema = json.loads((SCHEMAS / f"{name}.avsc").read_text())
    if not logical_types:
        for f in schema["fields"]:
            if isinstance(f["type"], dict):
                f["type"].pop("logicalType", None)
    return fastavro.parse_schema(schema)


def confluent_frame(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + body


def encode_touchpoint(schema, schema_id: int, record: dict) -> bytes:
    out = io.BytesIO()
    datum = {
        "event_id": record["event_id"],
        "customer_id": record["customer_id"],
        "occurred_at": record["occurred_at"],
        "channel": record["channel"],
        "action": record["action"],
        "value": record.get("value"),
        "session_id": record.get("session_id"),
        "attributes": record.get("attributes", {}),
    }
    fastavro.schemaless_writer(out, schema, datum)
    return confluent_frame(schema_id, out.getvalue())


def decode_confluent(schemas_by_id: dict, payload: bytes) -> dict:
    assert payload[0] == 0, f"magic byte {payload[0]}"
    (schema_id,) = struct.unpack(">I", payload[1:5])
    return fastavro.schemaless_reader(io.BytesIO(payload[5:]), schemas_by_id[schema_id])


# --- journeyd's own offline run, the reference ---------------------------------

def generate(path: Path, customers: int, seed: int, invalid_ratio: float = 0.01):
    subprocess.run([str(JOURNEYD), "generate", "--customers", str(customers), "--seed", str(seed),
                    "--invalid-ratio", str(invalid_ratio), "--out", str(path)],
                   check=True, env={**os.environ, "RUST_LOG": "warn"})


def replay(path: Path, out: Path) -> list[dict]:
    subprocess.run([str(JOURNEYD), "replay", str(path), "--out", str(out)], check=True,
                   stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    return [json.loads(line) for line in out.read_text().splitlines() if line]
