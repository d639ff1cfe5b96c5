"""A dependency that is down pauses the worker and retries the batch: nothing skipped, nothing doubled."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tests.runtime.conftest import RelayTopics, running
from tests.support.events import prediction
from tests.support.kafka import produce, read_topic
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.contracts import encode
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.runtime.worker import Processed


class FlakySink:
    """Refuses the first `failures` writes as if its database were down, then stores everything."""

    def __init__(self, failures: int) -> None:
        self.failures_left = failures
        self.stored: list[str] = []
        self.closed = False

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise DependencyUnavailable("database unreachable", retry_after=0.2)
        self.stored.extend(str(item.event.event_id) for item in batch)  # type: ignore[attr-defined]
        refused = {
            index: RejectedEvent("refused_by_store", "the store refuses this row")
            for index, item in enumerate(batch)
            if item.event.item.id == "comment-13"  # type: ignore[attr-defined]
        }
        return refused

    def close(self) -> None:
        self.closed = True


def test_dependency_down_pauses_retries_and_loses_nothing(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    events = [prediction(i) for i in range(100)]
    produce(kafka_bootstrap, relay_topics.input, ((str(e.event_id).encode(), encode(e), []) for e in events))
    sink = FlakySink(failures=3)
    fast_retries = settings.model_copy(
        update={"runtime": settings.runtime.model_copy(update={"retry_initial_seconds": 0.1})}
    )
    spec = replace(relay_spec(relay_topics.input, relay_topics.output), sink=sink)

    with running(spec, fast_retries) as runner:
        relayed = read_topic(kafka_bootstrap, relay_topics.output, expect=len(events) - 1)
        dead = read_topic(kafka_bootstrap, relay_topics.dead_letters, expect=1)
        deadline = time.monotonic() + 10
        while runner.metrics.registry.get_sample_value("hitl_paused", {"worker": "relay"}) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        retries = runner.metrics.registry.get_sample_value(
            "hitl_retries_total", {"worker": "relay", "reason": "DependencyUnavailable"}
        )

    assert retries == 3
    assert sink.closed
    refused = next(e for e in events if e.item.id == "comment-13")
    expected = {str(e.event_id) for e in events} - {str(refused.event_id)}
    assert sorted(m.key.decode() for m in relayed if m.key) == sorted(expected), "each output exactly once"
    assert set(sink.stored) == {str(e.event_id) for e in events}
    assert [m.key for m in dead] == [str(refused.event_id).encode()]
    assert dict(dead[0].headers)["hitl.dlq.reason"] == b"refused_by_store"
    by_partition: dict[int, list[int]] = {}
    order = {str(e.event_id): i for i, e in enumerate(events)}
    for message in relayed:
        by_partition.setdefault(message.partition, []).append(order[message.key.decode()])  # type: ignore[union-attr]
    for indices in by_partition.values():
        assert indices == sorted(indices), "a retry keeps each partition's order"
