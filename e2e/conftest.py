"""Fixtures of the end-to-end suite: one Apache Kafka broker for the session."""

import itertools

import pytest

from harness import Broker, JOURNEYD, Topics
from registry import SchemaRegistry

_names = itertools.count(1)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    assert JOURNEYD.exists(), f"{JOURNEYD} is missing: build journeyd first (scripts/e2e does)"
    broker = Broker(tmp_path_factory.mktemp("broker"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory):
    """Apicurio Registry (scripts/schema-registry), in memory, for the session."""
    registry = SchemaRegistry(tmp_path_factory.mktemp("schema-registry"))
    yield registry
    registry.stop()


@pytest.fixture
def topics(request):
    """Topic names of their own for each test."""
    return Topics(prefix=f"e2e{next(_names)}")


@pytest.fixture
def references():
    """Replays (`test_crash.Reference`) started by a test, stopped at its end."""
    started = []
    yield started
    for reference in started:
        reference.stop()
