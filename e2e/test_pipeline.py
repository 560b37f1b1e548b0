"""journeyd against Apache Kafka, checked with a
client that is not journeyd's: touchpoints go in as JSON and as Avro in the
Confluent wire format; stage changes, churn-risk changes, funnel windows and
dead letters come out; two instances in one group split the partitions.

The reference is `journeyd replay` of the same generated file: the engine is
deterministic in event time, so the service must publish the same derived
events (but for `detected_at`, which is wall-clock time) for everything up
to the last input event.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict

from harness import (
    SCHEMAS, Journeyd, avro_schema, committed, confluent_frame, consume, decode_confluent,
    encode_touchpoint, end_offsets, generate, produce, replay, wait_for, write_config,
)

AVRO_ID = 7
DAY_MS = 86_400_000
SENTINEL = "zz-end-of-input"


def read_lines(path):
    """(key, raw bytes, parsed or None) for every generated line."""
    records = []
    for raw in path.read_bytes().splitlines():
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        customer = parsed.get("customer_id") if isinstance(parsed, dict) else None
        key = customer.encode() if isinstance(customer, str) and customer else None
        records.append((key, raw, parsed))
    return records


def last_event_time(records) -> int:
    return max(p["occurred_at"] for _, _, p in records
               if isinstance(p, dict) and isinstance(p.get("occurred_at"), int))


def sentinels(bootstrap, topic, partitions, at, encode=lambda r: json.dumps(r).encode()):
    """One touchpoint per partition far after the input: it moves every
    partition's watermark past the end of the input, so every output due up
    to then is published (the service never goes idle meanwhile)."""
    for p in range(partitions):
        record = {"event_id": f"{SENTINEL}-{p}", "customer_id": f"{SENTINEL}-{p}",
                  "occurred_at": at, "channel": "web", "action": "page_view"}
        produce(bootstrap, topic, [(record["customer_id"].encode(), encode(record))], partition=p)


def time_of(event) -> int:
    return event["window_end"] if event["type"] == "funnel_window" else event["event_time"]


def comparable(event) -> dict:
    return {k: v for k, v in event.items() if k != "detected_at"}


def per_customer(events, cutoff):
    """Derived per-customer events up to `cutoff`, by (customer, sequence);
    a redelivery must be identical to the first delivery."""
    out = {}
    for event in events:
        if event["customer_id"].startswith(SENTINEL) or time_of(event) > cutoff:
            continue
        key = (event["customer_id"], event["sequence"])
        value = comparable(event)
        assert out.setdefault(key, value) == value, f"redelivery differs: {out[key]} vs {value}"
    return out


def values(messages):
    return [json.loads(value) for _, value, _, _, _ in messages]


def wait_consumed(instances, total, group, bootstrap, input_topics):
    """Until every input record but the sentinels is committed by the group
    (a sentinel waits in the reorder buffer, so its offset is not)."""
    wait_for(f"{total} input records consumed and committed",
             lambda: all(j.alive() for j in instances)
             and sum(committed(bootstrap, group, t) for t in input_topics) >= total,
             timeout=180, every=1.0)


def test_json_and_avro_in_derived_events_and_dead_letters_out(broker, topics, tmp_path):
    boot = broker.bootstrap
    json_topic, avro_topic = f"{topics.prefix}.touchpoints.json", f"{topics.prefix}.touchpoints.avro"
    topics.inputs = {json_topic: "json", avro_topic: "confluent"}
    # As many partitions each: the state changelog is co-partitioned with both.
    broker.create_topics({json_topic: 3, avro_topic: 3, **topics.all_outputs(3)})

    source = tmp_path / "touchpoints.ndjson"
    generate(source, customers=300, seed=11, invalid_ratio=0.02)
    records = read_lines(source)
    cutoff = last_event_time(records)
    expected = replay(source, tmp_path / "expected.ndjson")
    invalid_lines = {e["position"] for e in expected if e["type"] == "invalid_record"}

    # Valid touchpoints of about half the customers travel as Avro, the rest
    # (and every invalid line) as JSON, each customer on one topic. (Not by
    # CRC-32: the producer's partitioner hashes keys with it.)
    schema = avro_schema("touchpoint")
    as_json, as_avro = [], []
    for line, (key, raw, parsed) in enumerate(records, start=1):
        if line not in invalid_lines and zlib.adler32(key) % 2:
            as_avro.append((key, encode_touchpoint(schema, AVRO_ID, parsed)))
        else:
            as_json.append((key, raw))
    assert len(as_avro) > 1000 and len(as_json) > 1000
    good_avro = as_avro[0][1]
    bad_avro = {
        "unknown_schema_id": confluent_frame(999, good_avro[5:]),
        "truncated": b"\x00\x00\x07",
        "invalid_avro": confluent_frame(AVRO_ID, b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),
    }
    produce(boot, json_topic, as_json)
    produce(boot, avro_topic, as_avro + [(b"bad-" + reason.encode(), payload)
                                         for reason, payload in bad_avro.items()])
    sentinels(boot, json_topic, 3, cutoff + 10 * DAY_MS)
    sentinels(boot, avro_topic, 3, cutoff + 10 * DAY_MS,
              encode=lambda r: encode_touchpoint(schema, AVRO_ID, r))
    total = sum(end_offsets(boot, t) for t in (json_topic, avro_topic)) - 6

    schemas_dir = tmp_path / "schemas"
    schemas_dir.mkdir()
    (schemas_dir / f"{AVRO_ID}.avsc").write_text((SCHEMAS / "touchpoint.avsc").read_text())
    config = tmp_path / "journeyd.toml"
    group = f"{topics.prefix}-group"
    port = write_config(config, boot, group, topics, schemas_dir=schemas_dir)
    journeyd = Journeyd(config, port, tmp_path / "journeyd.log")
    try:
        wait_for("journeyd ready", journeyd.ready, 60)
        wait_consumed([journeyd], total, group, boot, [json_topic, avro_topic])
        by_type = defaultdict(list)
        for event in expected:
            by_type[event["type"]].append(event)

        stage = values(consume(boot, topics.output("stage_changes")))
        want = per_customer(by_type["stage_changed"], cutoff)
        got = per_customer(stage, cutoff)
        assert len(want) > 500
        assert got == want

        churn = values(consume(boot, topics.output("churn_risk")))
        assert per_customer(churn, cutoff) == per_customer(by_type["churn_risk_changed"], cutoff)

        funnel = {w["window_start"]: comparable(w) for w in values(consume(boot, topics.output("funnel")))
                  if w["window_end"] <= cutoff}
        want_funnel = {w["window_start"]: comparable(w) for w in by_type["funnel_window"]
                       if w["window_end"] <= cutoff}
        # Sequences count windows per instance; compare the windows' content.
        strip = lambda w: {k: v for k, v in w.items() if k != "sequence"}  # noqa: E731
        assert {k: strip(v) for k, v in funnel.items()} == {k: strip(v) for k, v in want_funnel.items()}

        dead = consume(boot, topics.output("dlq"))
        reasons = Counter(headers["journeyd.error.reason"].decode() for _, _, headers, _, _ in dead)
        want_reasons = Counter(e["reason"] for e in by_type["invalid_record"]) + Counter(bad_avro.keys())
        assert reasons == want_reasons
        sent = {(t, value) for t, batch in ((json_topic, as_json), (avro_topic, as_avro)) for _, value in batch}
        sent |= {(avro_topic, payload) for payload in bad_avro.values()}
        for key, value, headers, _, _ in dead:
            source_topic = headers["journeyd.source.topic"].decode()
            assert (source_topic, value) in sent, "a dead letter carries the original bytes"
            assert int(headers["journeyd.source.partition"]) >= 0
            assert int(headers["journeyd.source.offset"]) >= 0
            assert headers["journeyd.error.detail"]
        assert journeyd.metric_sum("journeyd_events_invalid_total") == sum(want_reasons.values())
    finally:
        assert journeyd.stop() == 0


OUTPUT_IDS = {"stage_changes": 101, "churn_risk": 102, "funnel": 103, "moments": 105}


def test_two_instances_split_the_partitions_and_publish_what_one_would(broker, topics, tmp_path):
    """Also with Avro outputs in the Confluent wire format, read with fastavro."""
    boot = broker.bootstrap
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    broker.create_topics({topic: 6, **topics.all_outputs(6)})
    source = tmp_path / "touchpoints.ndjson"
    generate(source, customers=300, seed=12, invalid_ratio=0.0)
    records = read_lines(source)
    cutoff = last_event_time(records)

    group = f"{topics.prefix}-group"
    instances = []
    try:
        for n in (1, 2):
            config = tmp_path / f"journeyd-{n}.toml"
            port = write_config(config, boot, group, topics, output_format="avro",
                                output_schema_ids=OUTPUT_IDS)
            instances.append(Journeyd(config, port, tmp_path / f"journeyd-{n}.log"))
        # Both members hold partitions before any input arrives, so no
        # partition moves while journeys are under way.
        wait_for("both instances ready with three partitions each",
                 lambda: all(j.ready() for j in instances)
                 and [j.metric_sum("journeyd_assigned_partitions") for j in instances] == [3, 3],
                 timeout=90, every=0.5)
        produce(boot, topic, [(key, raw) for key, raw, _ in records])
        sentinels(boot, topic, 6, cutoff + 10 * DAY_MS)
        wait_consumed(instances, end_offsets(boot, topic) - 6, group, boot, [topic])
        consumed = [j.metric_sum("journeyd_events_consumed_total") for j in instances]
        assert all(c > 0 for c in consumed), consumed

        expected = [e for e in replay(source, tmp_path / "expected.ndjson") if e["type"] == "stage_changed"]
        readers = {OUTPUT_IDS["stage_changes"]: avro_schema("stage_changed", logical_types=False)}
        published = [{"type": "stage_changed", **decode_confluent(readers, value)}
                     for _, value, _, _, _ in consume(boot, topics.output("stage_changes"))]
        got = per_customer(published, cutoff)
        assert len(got) > 500
        assert got == per_customer(expected, cutoff)
    finally:
        codes = [j.stop() for j in instances]
    assert codes == [0, 0]
