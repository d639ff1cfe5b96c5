from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.conftest import TopicFactory, unique_name
from workers.config import Settings, load_settings
from workers.runtime.loop import Runner
from workers.runtime.topics import dead_letter_topic_config
from workers.runtime.worker import WorkerSpec


@dataclass(frozen=True)
class RelayTopics:
    input: str
    output: str
    dead_letters: str


@pytest.fixture
def relay_topics(make_topic: TopicFactory) -> RelayTopics:
    # Input topics take values above Kafka's default 1 MiB, so tests can send oversized ones.
    source = make_topic("in", partitions=3, config={"max.message.bytes": str(4 * 1024 * 1024)})
    dead_letters = make_topic(name=source + ".dlq", partitions=1, config=dead_letter_topic_config())
    return RelayTopics(source, make_topic("out", partitions=3), dead_letters)


@pytest.fixture
def settings(kafka_bootstrap: str) -> Settings:
    return load_settings(kafka_bootstrap=kafka_bootstrap, group_id_prefix=unique_name("test"))


@contextmanager
def running(spec: WorkerSpec, settings: Settings) -> Iterator[Runner]:
    """Runs a worker in a background thread, and stops it (finishing its batch) on exit."""
    runner = Runner(spec, settings)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"
