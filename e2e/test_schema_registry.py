"""journeyd against a real schema registry: Apicurio Registry, in memory,
through its Confluent-compatible API (`schema_registry.url` =
http://127.0.0.1:PORT/apis/ccompat/v7).

Touchpoints go in as Avro in the Confluent wire format, written with two
versions of the touchpoint schema registered in the registry: the one in
schemas/, and a later one with a field more, which journeyd resolves to its
reader schema. journeyd looks both ids up in the registry, registers its own
output schemas there at start-up, and writes those ids into its Avro
outputs; the suite reads the outputs back, looks each id up in the registry
and decodes with fastavro. A record with an id the registry does not know
is dead-lettered as unknown_schema_id.

The reference is `journeyd replay` of the same generated file, as in
test_pipeline.py.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections import Counter, defaultdict

import fastavro
import pytest

from harness import (
    SCHEMAS, Journeyd, confluent_frame, consume, decode_confluent, encode_touchpoint,
    end_offsets, generate, produce, replay, wait_for, write_config,
)
from registry import RegistryError, WriterSchemas
from test_pipeline import (
    DAY_MS, comparable, last_event_time, per_customer, read_lines, sentinels, wait_consumed,
)

#: An id the registry never hands out in this suite.
UNKNOWN_ID = 999_999

#: Output kinds with their schema file and the event type replay writes.
AVRO_OUTPUTS = {
    "stage_changes": ("stage_changed", "stage_changed"),
    "churn_risk": ("churn_risk_changed", "churn_risk_changed"),
    "funnel": ("funnel_window", "funnel_window"),
}

DEVICES = ("desktop", "mobile", "tablet")

#: Schemas journeyd does not decode with: one not Avro, one that refers to
#: the touchpoint schema of another subject.
PROTO = 'syntax = "proto3";\nmessage Touchpoint { string event_id = 1; }\n'
BATCH = {"type": "record", "name": "Batch", "namespace": "journeyd.v1",
         "fields": [{"name": "first", "type": "journeyd.v1.Touchpoint"}]}


def touchpoint_v1() -> dict:
    return json.loads((SCHEMAS / "touchpoint.avsc").read_text())


def touchpoint_v2() -> dict:
    """A producer's later version of the touchpoint schema: a `device`
    field added between `channel` and `action`, with a default, so that it
    is compatible both ways (FULL). journeyd's reader schema lacks it: the
    field is skipped by schema resolution, not by reading fewer bytes."""
    schema = touchpoint_v1()
    fields = schema["fields"]
    at = next(i for i, f in enumerate(fields) if f["name"] == "action")
    fields.insert(at, {"name": "device", "type": ["null", "string"], "default": None,
                       "doc": "The device class, when known."})
    return schema


def encode_v2(schema, schema_id: int, record: dict) -> bytes:
    datum = {
        "event_id": record["event_id"],
        "customer_id": record["customer_id"],
        "occurred_at": record["occurred_at"],
        "channel": record["channel"],
        "device": DEVICES[zlib.adler32(record["event_id"].encode()) % len(DEVICES)],
        "action": record["action"],
        "value": record.get("value"),
        "session_id": record.get("session_id"),
        "attributes": record.get("attributes", {}),
    }
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, datum)
    return confluent_frame(schema_id, out.getvalue())


def with_registry_url(config, url: str):
    """Adds `url` to the [schema_registry] table harness.write_config wrote."""
    text = config.read_text()
    assert text.count("[schema_registry]\n") == 1
    config.write_text(text.replace("[schema_registry]\n", f'[schema_registry]\nurl = "{url}"\n'))


def schema_id_of(payload: bytes) -> int:
    assert payload[0] == 0, f"magic byte {payload[0]}"
    return struct.unpack(">I", payload[1:5])[0]


def test_the_registry_answers_as_journeyd_expects(schema_registry):
    """The answers journeyd's client relies on, as Apicurio gives them."""
    registry = schema_registry
    subject = "e2e-registry-probe-value"
    first = registry.register(subject, touchpoint_v1())
    assert registry.register(subject, touchpoint_v1()) == first, "registering again keeps the id"
    assert registry.schema(first) == touchpoint_v1()
    with pytest.raises(RegistryError) as unknown:
        registry.schema(UNKNOWN_ID)
    assert (unknown.value.status, unknown.value.error_code) == (404, 40403)
    # What journeyd reports as refused when it registers its output schemas.
    registry.set_compatibility(subject, "FULL")
    incompatible = touchpoint_v1()
    next(f for f in incompatible["fields"] if f["name"] == "occurred_at")["type"] = "string"
    with pytest.raises(RegistryError) as refused:
        registry.register(subject, incompatible)
    assert (refused.value.status, refused.value.error_code) == (409, 409)
    with pytest.raises(RegistryError) as invalid:
        registry.register(subject, '{"type": "recrod"}')
    assert (invalid.value.status, invalid.value.error_code) == (422, 42201)


def test_confluent_input_and_avro_outputs_with_ids_from_the_registry(
        broker, schema_registry, topics, tmp_path):
    boot, registry = broker.bootstrap, schema_registry
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "confluent"}
    broker.create_topics({topic: 3, **topics.all_outputs(3)})

    # The producers' side: two versions of the touchpoint schema under the
    # input topic's subject, the second checked by the registry as FULL
    # compatible with the first.
    subject = f"{topic}-value"
    v1_id = registry.register(subject, touchpoint_v1())
    registry.set_compatibility(subject, "FULL")
    v2_id = registry.register(subject, touchpoint_v2())
    assert v1_id != v2_id
    assert registry.latest(subject)["id"] == v2_id

    source = tmp_path / "touchpoints.ndjson"
    generate(source, customers=300, seed=21, invalid_ratio=0.0)
    records = read_lines(source)
    cutoff = last_event_time(records)
    expected = replay(source, tmp_path / "expected.ndjson")
    invalid_lines = {e["position"] for e in expected if e["type"] == "invalid_record"}

    # About half the customers' producers are on each version.
    v1, v2 = fastavro.parse_schema(touchpoint_v1()), fastavro.parse_schema(touchpoint_v2())
    framed, versions = [], Counter()
    for line, (key, _raw, parsed) in enumerate(records, start=1):
        if line in invalid_lines:
            continue
        if zlib.adler32(key) % 2:
            framed.append((key, encode_touchpoint(v1, v1_id, parsed)))
            versions["v1"] += 1
        else:
            framed.append((key, encode_v2(v2, v2_id, parsed)))
            versions["v2"] += 1
    assert versions["v1"] > 1000 and versions["v2"] > 1000, versions
    # Records journeyd cannot decode, each with the dead-letter detail it
    # gives: an id the registry does not know, a Protobuf schema, and an
    # Avro schema with references (Apicurio resolves them; journeyd does not).
    body = framed[0][1][5:]
    proto_id = registry.register(f"{topics.prefix}.proto-value", PROTO, schema_type="PROTOBUF")
    batch_id = registry.register(f"{topics.prefix}.batch-value", BATCH, references=[
        {"name": "journeyd.v1.Touchpoint", "subject": subject, "version": 1}])
    undecodable = {
        confluent_frame(UNKNOWN_ID, body): "not found",
        confluent_frame(proto_id, body): "PROTOBUF",
        confluent_frame(batch_id, body): "refers to other schemas",
    }
    produce(boot, topic, framed + [(b"undecodable", value) for value in undecodable])
    sentinels(boot, topic, 3, cutoff + 10 * DAY_MS, encode=lambda r: encode_touchpoint(v1, v1_id, r))
    total = end_offsets(boot, topic) - 3

    config = tmp_path / "journeyd.toml"
    group = f"{topics.prefix}-group"
    port = write_config(config, boot, group, topics, output_format="avro")
    with_registry_url(config, registry.url)
    journeyd = Journeyd(config, port, tmp_path / "journeyd.log")
    try:
        wait_for("journeyd ready", journeyd.ready, 60)
        wait_consumed([journeyd], total, group, boot, [topic])

        # journeyd registered each output schema under its topic's subject.
        output_ids = {}
        for kind, (schema_file, _) in AVRO_OUTPUTS.items():
            latest = registry.latest(f"{topics.output(kind)}-value")
            assert latest["schema"] == json.loads((SCHEMAS / f"{schema_file}.avsc").read_text())
            output_ids[kind] = latest["id"]
        audit = registry.latest(f"{topics.output('audit')}-value")
        assert audit["schema"] == json.loads((SCHEMAS / "customer_erased.avsc").read_text())
        # Evictions are announced on the same topic under a subject of their
        # own, which leaves the audit topic's subject to CustomerErased.
        evicted = registry.latest(f"{topics.output('audit')}-journeyd.v1.CustomerEvicted")
        assert evicted["schema"] == json.loads((SCHEMAS / "customer_evicted.avsc").read_text())
        assert evicted["id"] != audit["id"]

        # Read back as any Confluent consumer would: the writer schema of
        # each record looked up by its id in the registry.
        writers = WriterSchemas(registry)
        published = {}
        for kind, (_, event_type) in AVRO_OUTPUTS.items():
            messages = consume(boot, topics.output(kind))
            assert {schema_id_of(value) for _, value, _, _, _ in messages} == {output_ids[kind]}
            published[kind] = [{"type": event_type, **decode_confluent(writers, value)}
                               for _, value, _, _, _ in messages]
        by_type = defaultdict(list)
        for event in expected:
            by_type[event["type"]].append(event)

        got = per_customer(published["stage_changes"], cutoff)
        assert len(got) > 500
        assert got == per_customer(by_type["stage_changed"], cutoff)
        assert per_customer(published["churn_risk"], cutoff) == \
            per_customer(by_type["churn_risk_changed"], cutoff)
        # Sequences count windows per instance; compare the windows' content.
        windows = lambda events: {  # noqa: E731
            w["window_start"]: {k: v for k, v in comparable(w).items() if k != "sequence"}
            for w in events if w["window_end"] <= cutoff}
        assert windows(published["funnel"]) == windows(by_type["funnel_window"])
        assert windows(published["funnel"])

        dead = consume(boot, topics.output("dlq"))
        assert sorted(value for _, value, _, _, _ in dead) == sorted(undecodable)
        for _, value, headers, _, _ in dead:
            assert headers["journeyd.error.reason"] == b"unknown_schema_id"
            assert undecodable[value] in headers["journeyd.error.detail"].decode()
        lookups = journeyd.metrics()
        assert lookups['journeyd_schema_lookups_total{result="fetched"}'] == 2
        assert lookups['journeyd_schema_lookups_total{result="unknown"}'] == len(undecodable)
    finally:
        assert journeyd.stop() == 0
