"""Delivery guarantees under failure, against Apache Kafka, in both modes.

Three failures, each with `runtime.exactly_once = true` and with the
default at-least-once mode, while journeyd catches up on a backlog:

- **kill -9** at random moments (mid-transaction in exactly-once mode: a
  transaction is always open while input flows), restarted each time;
- **a zombie**: an instance frozen with SIGSTOP past its session timeout,
  its partitions taken over by a second instance, then SIGCONT; later the
  second instance is restarted, so that it restores from the changelog
  whatever the zombie may have written there;
- **a second instance joining** while the first is mid-transaction, so
  that partitions move under way.

The reference is `journeyd replay` of the same input. In exactly-once
mode a `read_committed` consumer must see every stage change, churn-risk
change and (with one instance) funnel window exactly once, equal to the
replay's. In at-least-once mode the same events must all be there, and a
derived event may come twice only with the same sequence and content.
With two instances each publishes the funnel windows of its own
partitions, so there only the per-customer events are compared.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass

import pytest

from harness import Journeyd, committed, consume, generate, wait_for, write_config
from test_crash import PARTITIONS, Reference, assigned, feed
from test_pipeline import SENTINEL, comparable, last_event_time, read_lines, time_of, values

CUSTOMERS = int(os.environ.get("E2E_EOS_CUSTOMERS", "12000"))
KILLS = 5
SEED = int(os.environ.get("E2E_EOS_SEED", "20261123"))
#: The consumer group's session timeout in these tests.
SESSION_TIMEOUT_S = 6

MODES = ["exactly_once", "at_least_once"]


@dataclass
class Workload:
    """A generated backlog on the input topic and its replay."""

    topic: str
    total: int
    cutoff: int
    reference: Reference

    @classmethod
    def make(cls, broker, topics, tmp_path, seed: int) -> "Workload":
        topic = f"{topics.prefix}.touchpoints"
        topics.inputs = {topic: "json"}
        broker.create_topics({topic: PARTITIONS, **topics.all_outputs(PARTITIONS)})
        source = tmp_path / "touchpoints.ndjson"
        generate(source, customers=CUSTOMERS, seed=seed, invalid_ratio=0.0)
        records = read_lines(source)
        cutoff = last_event_time(records)
        reference = Reference(source, tmp_path / "expected.ndjson")
        feed(broker, topic, [(key, raw) for key, raw, _ in records], cutoff)
        return cls(topic, len(records), cutoff, reference)


class Instances:
    """The journeyd processes of one test, in one mode; all stopped at the end."""

    def __init__(self, broker, topics, tmp_path, mode: str):
        self.broker, self.topics, self.tmp_path, self.mode = broker, topics, tmp_path, mode
        self.group = f"{topics.prefix}-group"
        self.started: list[Journeyd] = []

    def start(self, name: str, transactional_id: str | None = None) -> Journeyd:
        extra = ""
        if self.mode == "exactly_once":
            extra += "exactly_once = true\n"
            if transactional_id:
                extra += f'transactional_id = "{self.group}-{transactional_id}"\n'
            # A frozen or killed producer's open transaction holds back
            # read_committed readers until the broker aborts it.
            extra += ('[kafka.producer_properties]\n"transaction.timeout.ms" = "15000"\n'
                      '"message.timeout.ms" = "15000"\n')
        config = self.tmp_path / f"{name}.toml"
        port = write_config(config, self.broker.bootstrap, self.group, self.topics, extra=extra)
        journeyd = Journeyd(config, port, self.tmp_path / f"{name}.log")
        self.started.append(journeyd)
        return journeyd

    def committed(self, topic: str) -> int:
        return committed(self.broker.bootstrap, self.group, topic)

    def stop_all(self):
        for journeyd in self.started:
            if journeyd.process.poll() is None:
                journeyd.process.send_signal(signal.SIGCONT)
            journeyd.kill()


@pytest.fixture
def instances(request, broker, topics, tmp_path):
    started = Instances(broker, topics, tmp_path, request.param)
    yield started
    started.stop_all()


def delivered(events, cutoff, key, exactly_once: bool, what: str):
    """Events up to `cutoff` by `key`, checking the mode's promise: each
    once (exactly-once), or repeated only identically (at-least-once)."""
    out, repeats = {}, 0
    for event in events:
        if event.get("customer_id", "").startswith(SENTINEL) or time_of(event) > cutoff:
            continue
        k, value = key(event), comparable(event)
        if k in out:
            repeats += 1
            assert out[k] == value, f"{what} {k} delivered twice with different content:\n{out[k]}\n{value}"
        else:
            out[k] = value
    assert not (exactly_once and repeats), f"{repeats} {what} seen twice by a read_committed consumer"
    return out


def by_customer(event):
    return event["customer_id"], event["sequence"]


def by_window(event):
    return event["window_start"]


def without_sequence(windows: dict) -> dict:
    """Funnel windows' sequence counts one instance's windows since its
    start; their content is what must match."""
    return {k: {f: v for f, v in w.items() if f != "sequence"} for k, w in windows.items()}


def check_outputs(instances: Instances, workload: Workload, context: str, funnel: bool):
    """The outputs read back equal the replay's, as the mode promises."""
    exactly_once = instances.mode == "exactly_once"
    expected = workload.reference.events()
    for kind, event_type in (("stage_changes", "stage_changed"), ("churn_risk", "churn_risk_changed")):
        got = delivered(values(consume(instances.broker.bootstrap, instances.topics.output(kind))),
                        workload.cutoff, by_customer, exactly_once, kind)
        want = delivered([e for e in expected if e["type"] == event_type], workload.cutoff,
                         by_customer, True, kind)
        assert len(want) > 1000 or kind == "churn_risk", len(want)
        missing = sorted(want.keys() - got.keys())
        extra = sorted(got.keys() - want.keys())
        differ = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
        assert not missing, f"{len(missing)} {kind} missing, e.g. {missing[:5]}; {context}"
        assert not extra, (f"{len(extra)} {kind} the replay does not have, e.g. {extra[:5]}, "
                           f"the first: {got[extra[0]]}; {context}")
        assert not differ, (f"{len(differ)} {kind} differ, e.g. {differ[0]}:\n"
                            f"{want[differ[0]]}\n{got[differ[0]]}; {context}")
    if funnel:
        got = delivered(values(consume(instances.broker.bootstrap, instances.topics.output("funnel"))),
                        workload.cutoff, by_window, exactly_once, "funnel windows")
        want = delivered([e for e in expected if e["type"] == "funnel_window"], workload.cutoff,
                         by_window, True, "funnel windows")
        got, want = without_sequence(got), without_sequence(want)
        missing = sorted(want.keys() - got.keys())
        differ = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
        assert not missing, f"{len(missing)} funnel windows missing, e.g. {missing[:5]}; {context}"
        assert got.keys() <= want.keys(), f"funnel windows the replay does not have; {context}"
        assert not differ, (f"{len(differ)} of {len(want)} funnel windows differ, e.g. {differ[0]}:\n"
                            f"{want[differ[0]]}\n{got[differ[0]]}; {context}")


def wait_all_committed(instances: Instances, workload: Workload, journeyd: list[Journeyd]):
    wait_for(f"{workload.total} input records committed",
             lambda: all(j.alive() for j in journeyd)
             and instances.committed(workload.topic) >= workload.total,
             timeout=240, every=1.0)


def consuming(journeyd: Journeyd) -> bool:
    return journeyd.alive() and journeyd.metric_sum("journeyd_events_consumed_total") > 0


@pytest.mark.parametrize("instances", MODES, indirect=True)
def test_kill_9_mid_transaction_then_each_output_once(instances, topics, tmp_path, references):
    workload = Workload.make(instances.broker, topics, tmp_path, SEED)
    references.append(workload.reference)
    rng = random.Random(SEED)
    kills = []
    for n in range(KILLS):
        # A stable transactional.id: each restart fences its predecessor
        # and aborts the transaction it left open.
        journeyd = instances.start(f"journeyd-{n}", transactional_id="0")
        wait_for("touchpoints consumed", lambda: consuming(journeyd), 60, every=0.05)
        time.sleep(rng.uniform(0.1, 0.8))
        journeyd.alive()
        journeyd.kill()
        kills.append(instances.committed(workload.topic))
    context = f"records committed after each kill: {kills}"
    assert kills[-1] < workload.total, f"the backlog was read before the last kill; {context}"
    journeyd = instances.start("journeyd-final", transactional_id="0")
    wait_all_committed(instances, workload, [journeyd])
    if instances.mode == "exactly_once":
        assert journeyd.metric_sum("journeyd_transactions_total") > 0
    check_outputs(instances, workload, context, funnel=True)
    assert journeyd.stop() == 0


@pytest.mark.parametrize("instances", MODES, indirect=True)
def test_a_zombie_is_fenced_and_the_new_owner_never_rolled_back(instances, topics, tmp_path, references):
    workload = Workload.make(instances.broker, topics, tmp_path, SEED + 1)
    references.append(workload.reference)
    zombie = instances.start("zombie", transactional_id="zombie")
    wait_for("the first instance reading", lambda: assigned(zombie) == PARTITIONS and consuming(zombie),
             60, every=0.05)
    time.sleep(random.Random(SEED + 1).uniform(0.5, 2.0))
    zombie.process.send_signal(signal.SIGSTOP)
    frozen_at = instances.committed(workload.topic)
    owner = instances.start("owner", transactional_id="owner")
    wait_for("the second instance owning every partition", lambda: assigned(owner) == PARTITIONS,
             timeout=SESSION_TIMEOUT_S * 5, every=0.2)
    wait_for("the second instance committing", lambda: owner.alive()
             and instances.committed(workload.topic) > frozen_at, 60, every=0.2)
    # The zombie wakes up with a transaction (or outputs and changelog
    # records) of partitions it no longer owns, and rejoins the group.
    zombie.process.send_signal(signal.SIGCONT)
    time.sleep(SESSION_TIMEOUT_S)
    # The new owner restarts: it (and the zombie, now a member again)
    # restore from the changelog whatever was written to it.
    owner.kill()
    restarted = instances.start("owner-restarted", transactional_id="owner")
    wait_all_committed(instances, workload, [zombie, restarted])
    context = f"{frozen_at} records committed when the first instance froze"
    check_outputs(instances, workload, context, funnel=False)
    assert zombie.stop() == 0 and restarted.stop() == 0


@pytest.mark.parametrize("instances", MODES, indirect=True)
def test_a_second_instance_joins_mid_transaction(instances, topics, tmp_path, references):
    workload = Workload.make(instances.broker, topics, tmp_path, SEED + 2)
    references.append(workload.reference)
    first = instances.start("first", transactional_id="first")
    wait_for("the first instance reading", lambda: assigned(first) == PARTITIONS and consuming(first),
             60, every=0.05)
    time.sleep(random.Random(SEED + 2).uniform(0.3, 1.5))
    joined_at = instances.committed(workload.topic)
    second = instances.start("second", transactional_id="second")
    wait_for("both instances holding partitions",
             lambda: assigned(first) > 0 and assigned(second) > 0
             and assigned(first) + assigned(second) == PARTITIONS, timeout=60, every=0.1)
    wait_all_committed(instances, workload, [first, second])
    assert second.metric_sum("journeyd_events_consumed_total") > 0
    context = f"{joined_at} records committed when the second instance joined"
    assert joined_at < workload.total, f"the backlog was read before the second joined; {context}"
    check_outputs(instances, workload, context, funnel=False)
    assert first.stop() == 0 and second.stop() == 0
