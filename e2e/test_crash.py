"""Crash safety against Apache Kafka: journeyd is
killed with SIGKILL at random moments while it catches up on a backlog of
about 200,000 touchpoints, and restarted each time; the stage changes it
publishes must be those of `journeyd replay` of the same file: none
missing, none applied twice, and a change delivered more than once only
with the same sequence and the same content (but for `detected_at`, the
wall-clock detection time). A second test kills one of two instances in a
group; the other takes over its partitions and restores them from the
changelog.

The backlog is produced before journeyd starts; journeyd creates the
changelog topic itself (compacted, as many partitions as the input). Kill
moments are drawn from a seeded random generator, printed on failure.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import defaultdict

from harness import JOURNEYD, Journeyd, committed, consume, generate, produce, wait_for, write_config
from test_pipeline import DAY_MS, SENTINEL, comparable, last_event_time, read_lines, sentinels, time_of, values

PARTITIONS = 6
CUSTOMERS = int(os.environ.get("E2E_CRASH_CUSTOMERS", "18000"))
KILLS = 10
SEED = int(os.environ.get("E2E_CRASH_SEED", "20260101"))


def workload(broker, topics, tmp_path, seed):
    """Creates the topics, generates the workload and starts replaying it;
    returns the input topic, the (key, value) records, the last event time
    and the [`Reference`]."""
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    broker.create_topics({topic: PARTITIONS, **topics.all_outputs(PARTITIONS)})
    source = tmp_path / "touchpoints.ndjson"
    generate(source, customers=CUSTOMERS, seed=seed, invalid_ratio=0.0)
    records = read_lines(source)
    assert CUSTOMERS < 18000 or len(records) >= 200_000, len(records)
    reference = Reference(source, tmp_path / "expected.ndjson")
    return topic, [(key, raw) for key, raw, _ in records], last_event_time(records), reference


class Reference:
    """`journeyd replay` of the workload, running while the test does."""

    def __init__(self, source, out):
        self.out = out
        self.process = subprocess.Popen([str(JOURNEYD), "replay", str(source), "--out", str(out)],
                                        stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})

    def events(self):
        """Every derived event of the replay, once it has finished."""
        assert self.process.wait() == 0, "journeyd replay failed"
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]

    def stage_changes(self):
        return [e for e in self.events() if e["type"] == "stage_changed"]

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def feed(broker, topic, records, cutoff):
    """Produces the records, then a sentinel on every partition."""
    produce(broker.bootstrap, topic, records)
    sentinels(broker.bootstrap, topic, PARTITIONS, cutoff + 10 * DAY_MS)


def start(tmp_path, broker, group, topics, name) -> Journeyd:
    config = tmp_path / f"{name}.toml"
    port = write_config(config, broker.bootstrap, group, topics)
    return Journeyd(config, port, tmp_path / f"{name}.log")


def assigned(journeyd: Journeyd) -> int:
    """Input partitions assigned, as /readyz reports them (also while
    they are restoring)."""
    if not journeyd.alive():
        return 0
    status, body = journeyd.get("/readyz")
    try:
        return json.loads(body)["assigned_partitions"] if status else 0
    except (ValueError, KeyError):
        return 0


def kill_moment(journeyd: Journeyd, rng: random.Random, committed_now) -> tuple[str, float]:
    """Waits for a random phase of a run to begin; returns its name and a
    random delay into it: restoring (just assigned), processing (reading,
    before this run's first commit: the reorder buffer holds back the
    first seconds of a backlog), or committing (after its first commit)."""
    wait_for("partitions assigned", lambda: assigned(journeyd) == PARTITIONS, 60, every=0.05)
    phase = rng.choices(["restoring", "processing", "committing"], weights=[2, 2, 6])[0]
    if phase == "restoring":
        return phase, rng.uniform(0.0, 0.5)
    if phase == "processing":
        wait_for("touchpoints consumed",
                 lambda: journeyd.alive() and journeyd.metric_sum("journeyd_events_consumed_total") > 0,
                 30, every=0.05)
        return phase, rng.uniform(0.3, 2.0)
    before = committed_now()
    wait_for("a commit", lambda: journeyd.alive() and committed_now() > before, 60, every=0.1)
    return phase, rng.uniform(0.1, 1.0)


def by_sequence(events, cutoff):
    """Stage changes up to `cutoff` by (customer, sequence), and how many
    deliveries repeated one; a repeat must be identical to the first."""
    out, repeats = {}, 0
    for event in events:
        if event["customer_id"].startswith(SENTINEL) or time_of(event) > cutoff:
            continue
        key, value = (event["customer_id"], event["sequence"]), comparable(event)
        if key in out:
            repeats += 1
            assert out[key] == value, f"{key} delivered twice with different content:\n{out[key]}\n{value}"
        else:
            out[key] = value
    return out, repeats


def check_stage_changes(broker, topics, cutoff, reference, context):
    published, repeats = by_sequence(values(consume(broker.bootstrap, topics.output("stage_changes"))), cutoff)
    want, _ = by_sequence(reference.stage_changes(), cutoff)
    assert len(want) > 20_000 or CUSTOMERS < 18000, len(want)
    missing = sorted(want.keys() - published.keys())
    extra = sorted(published.keys() - want.keys())
    differ = sorted(k for k in want.keys() & published.keys() if want[k] != published[k])
    assert not missing, f"{len(missing)} stage changes missing, e.g. {missing[:5]}; {context}"
    assert not extra, f"{len(extra)} stage changes the replay does not have, e.g. {extra[:5]}; {context}"
    assert not differ, (f"{len(differ)} stage changes differ, e.g. {differ[0]}:\n"
                        f"{want[differ[0]]}\n{published[differ[0]]}; {context}")
    sequences = defaultdict(list)
    for customer, sequence in published:
        sequences[customer].append(sequence)
    for customer, seen in sequences.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), f"{customer}: sequences {sorted(seen)}"
    return repeats


def test_kill_9_at_random_moments_while_catching_up_loses_and_repeats_nothing(
        broker, topics, tmp_path, references):
    topic, records, cutoff, reference = workload(broker, topics, tmp_path, SEED)
    references.append(reference)
    feed(broker, topic, records, cutoff)
    total = len(records)
    group = f"{topics.prefix}-group"
    rng = random.Random(SEED)
    kills = []
    for n in range(KILLS):
        journeyd = start(tmp_path, broker, group, topics, f"journeyd-{n}")
        try:
            moment, delay = kill_moment(journeyd, rng, lambda: committed(broker.bootstrap, group, topic))
            time.sleep(delay)
            journeyd.alive()
        finally:
            journeyd.kill()
        kills.append((moment, round(delay, 2), committed(broker.bootstrap, group, topic)))
    context = f"kills (when, seconds after, records committed after): {kills}"
    assert kills[-1][2] < total, f"the backlog was read before the last kill; {context}"
    progress = [c for _, _, c in kills]
    assert len(set(progress)) >= 4, f"too few kills between commits; {context}"

    journeyd = start(tmp_path, broker, group, topics, "journeyd-final")
    try:
        wait_for(f"{total} input records committed",
                 lambda: journeyd.alive() and committed(broker.bootstrap, group, topic) >= total,
                 timeout=150, every=1.0)
        assert journeyd.metric_sum("journeyd_restore_records_total") > 0
        repeats = check_stage_changes(broker, topics, cutoff, reference, context)
        print(f"{repeats} stage changes delivered again after a kill; {context}")
    finally:
        assert journeyd.stop() == 0


def test_a_killed_instances_partitions_are_restored_by_the_other(broker, topics, tmp_path, references):
    """The first instance reads the backlog alone at first; the second
    joins and takes half of the partitions (restoring what the first wrote
    for them); then the first, the group's leader, is killed with SIGKILL
    at a random moment, and the second takes its partitions over and
    restores what it wrote."""
    topic, records, cutoff, reference = workload(broker, topics, tmp_path, SEED + 1)
    references.append(reference)
    feed(broker, topic, records, cutoff)
    total = len(records)
    group = f"{topics.prefix}-group"
    rng = random.Random(SEED + 1)
    first = start(tmp_path, broker, group, topics, "journeyd-1")
    second = None
    try:
        wait_for("the first instance reading", lambda: assigned(first) == PARTITIONS
                 and first.metric_sum("journeyd_events_consumed_total") > 0, 60, every=0.1)
        # Apache Kafka serves the backlog fast: the kill must come while
        # some of it is still unread.
        time.sleep(rng.uniform(0.5, 1.5))
        second = start(tmp_path, broker, group, topics, "journeyd-2")
        wait_for("both instances holding partitions",
                 lambda: assigned(first) > 0 and assigned(second) > 0
                 and assigned(first) + assigned(second) == PARTITIONS,
                 timeout=90, every=0.1)
        delay = rng.uniform(0.1, 1.0)
        time.sleep(delay)
        first.alive()
        first.kill()
        before = committed(broker.bootstrap, group, topic)
        context = f"the first instance killed {delay:.2f}s after the split, {before} records committed"
        assert before < total, f"the backlog was read before the kill; {context}"
        restored = second.metric_sum("journeyd_restore_records_total")
        wait_for("the second instance holding every partition", lambda: assigned(second) == PARTITIONS, 60)
        wait_for(f"{total} input records committed",
                 lambda: second.alive() and committed(broker.bootstrap, group, topic) >= total,
                 timeout=150, every=1.0)
        assert second.metric_sum("journeyd_restore_records_total") > restored, context
        repeats = check_stage_changes(broker, topics, cutoff, reference, context)
        print(f"{repeats} stage changes delivered again; {context}")
    finally:
        first.kill()
        if second is not None:
            assert second.stop() == 0
