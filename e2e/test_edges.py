"""Records Kafka will not take, against Apache Kafka.

A dead letter larger than the dead-letter topic accepts used to be sent
again forever, holding back every commit. Now the topic's rejection
teaches journeyd its limit: the dead letter is cut to fit, says so in its
headers, and the commit moves past the record. In exactly-once mode the
rejection aborts the transaction, and the dead letter produced again
after the rewind fits.
"""

from __future__ import annotations

import json

import pytest

from harness import Journeyd, committed, consume, produce, wait_for, write_config
from test_pipeline import DAY_MS, sentinels

MB = 1 << 20


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at_least_once", "exactly_once"])
def test_a_dead_letter_larger_than_the_dlq_takes_is_cut_and_the_commit_moves_on(
        broker, topics, tmp_path, exactly_once):
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    # The input topic takes records of up to 5 MB; the dead-letter topic
    # keeps the broker's default (about 1 MB).
    broker.create_topics({topic: 1}, config={"max.message.bytes": str(5 * MB)})
    broker.create_topics(topics.all_outputs(1))
    poison = b"{" + b"x" * (1_200_000) + b"}"
    good = [{"event_id": f"e{n}", "customer_id": f"c{n}", "occurred_at": 1_767_225_600_000 + n,
             "channel": "web", "action": "page_view"} for n in range(20)]
    records = [(g["customer_id"].encode(), json.dumps(g).encode()) for g in good[:10]]
    records += [(b"poison", poison)]
    records += [(g["customer_id"].encode(), json.dumps(g).encode()) for g in good[10:]]
    produce(broker.bootstrap, topic, records, **{"message.max.bytes": 6 * MB})
    # After the rest in event time: releases them from the reorder buffer.
    sentinels(broker.bootstrap, topic, 1, good[-1]["occurred_at"] + 10 * DAY_MS)

    config = tmp_path / "journeyd.toml"
    group = f"{topics.prefix}-group"
    port = write_config(config, broker.bootstrap, group, topics,
                        extra=("exactly_once = true\n" if exactly_once else "")
                        + f"\n[limits]\nmax_message_bytes = {5 * MB}\n")
    journeyd = Journeyd(config, port, tmp_path / "journeyd.log")
    try:
        # Every record but the sentinel (held in the reorder buffer) is
        # committed, the poison record (offset 10) included.
        wait_for("the commit past the poison record",
                 lambda: journeyd.alive() and committed(broker.bootstrap, group, topic) >= len(records),
                 60)
        dead = consume(broker.bootstrap, topics.output("dlq"))
        assert len(dead) == 1, [h for _, _, h, _, _ in dead]
        key, value, headers, _, _ = dead[0]
        assert key == b"poison"
        assert headers["journeyd.error.reason"] == b"invalid_json"
        assert headers["journeyd.source.offset"] == b"10"
        assert headers["journeyd.original.truncated"] == b"true"
        assert int(headers["journeyd.original.size"]) == len(poison)
        assert 0 < len(value) < MB and poison.startswith(value)
        assert journeyd.metric_sum("journeyd_output_delivery_errors_total") >= 1
    finally:
        assert journeyd.stop() == 0
