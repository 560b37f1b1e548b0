"""How long the changelog keeps erased and superseded customer state, on
Apache Kafka: the settings journeyd creates it with, as the broker reports
them, and the warning about an existing changelog that keeps data longer
(docs/personal-data.md)."""

from confluent_kafka.admin import ConfigResource, ResourceType

from harness import Journeyd, wait_for, write_config

DAY_MS = 86_400_000


def described(broker, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    [future] = broker.admin.describe_configs([resource]).values()
    return {name: entry.value for name, entry in future.result(timeout=20).items()}


def run_until_ready(broker, topics, tmp_path, extra: str = "") -> Journeyd:
    config = tmp_path / "journeyd.toml"
    port = write_config(config, broker.bootstrap, f"{topics.prefix}-group", topics, extra=extra)
    journeyd = Journeyd(config, port, tmp_path / "journeyd.log")
    wait_for("journeyd ready", journeyd.ready, timeout=60)
    return journeyd


def test_the_changelog_journeyd_creates_removes_erased_state_within_the_stated_bound(
        broker, topics, tmp_path):
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    broker.create_topics({topic: 2, **topics.all_outputs(2)})
    journeyd = run_until_ready(broker, topics, tmp_path,
                               extra='changelog_max_compaction_lag = "6h"\n'
                                     'changelog_delete_retention = "2h"\n')
    try:
        settings = described(broker, topics.changelog)
    finally:
        assert journeyd.stop() == 0
    assert settings["cleanup.policy"] == "compact"
    assert settings["max.compaction.lag.ms"] == str(DAY_MS // 4)
    assert settings["segment.ms"] == str(DAY_MS // 4)
    assert settings["delete.retention.ms"] == str(DAY_MS // 12)
    assert settings["min.compaction.lag.ms"] == "0"
    log = (tmp_path / "journeyd.log").read_text()
    assert "erased_data_kept_at_most=14h" in log, log[-2000:]


def test_an_existing_changelog_that_keeps_data_longer_is_named_at_start_up(
        broker, topics, tmp_path):
    topic = f"{topics.prefix}.touchpoints"
    topics.inputs = {topic: "json"}
    # Created by the platform with the broker's defaults: no compaction lag
    # bound, so a superseded state may stay on disk for ever.
    broker.create_topics({topic: 2, **topics.all_outputs(2)})
    broker.create_topics({topics.changelog: 2}, config={"cleanup.policy": "compact"})
    journeyd = run_until_ready(broker, topics, tmp_path)
    log_path = tmp_path / "journeyd.log"
    try:
        wait_for("the retention warning", lambda: "The changelog topic: with max.compaction.lag.ms="
                 in log_path.read_text(), timeout=30)
    finally:
        assert journeyd.stop() == 0
    log = log_path.read_text()
    assert "beyond the 5days of runtime.changelog_max_compaction_lag" in log, log[-2000:]
    assert "set max.compaction.lag.ms=172800000 and delete.retention.ms=86400000" in log
    assert "cleanup.policy is" not in log, "the topic is compacted: no warning about that"
