"""A consumer that lost its partitions and is never assigned any again is replaced.

After a broker outage longer than the session, librdkafka reports the partitions lost and has
been seen never to join the group again: the group empty, the worker idle for good. Here a
consumer does exactly that on cue, against the real broker; the worker must replace it, and every
message, before and after, must still be relayed and committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from tests.runtime.conftest import RelayTopics, running
from tests.runtime.test_loop_faults import good_messages, tuned
from tests.runtime.test_overlap import wait_for, wait_until_committed_to_the_end
from tests.support.kafka import produce, read_topic
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.runtime import loop

Rebalance = Callable[[Consumer, list[TopicPartition]], None]


class LosesAndNeverRejoins(Consumer):
    """Once `lose()` is called: reports its partitions lost, from its own consume or poll as
    librdkafka does, and then leaves the group without ever joining it again."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._losing = False
        self.gone = False
        self._on_lost: Rebalance | None = None

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self._on_lost = callbacks.get("on_lost")
        super().subscribe(topics, **callbacks)

    def lose(self) -> None:
        self._losing = True

    def _maybe_lose(self) -> None:
        if self._losing and not self.gone:
            self.gone = True
            assert self._on_lost is not None
            self._on_lost(self, self.assignment())
            super().unsubscribe()

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self._maybe_lose()
        return [] if self.gone else super().consume(num_messages=num_messages, timeout=timeout)

    def poll(self, timeout: float = -1) -> Message | None:
        self._maybe_lose()
        return None if self.gone else super().poll(timeout)


def test_a_consumer_that_never_rejoins_after_a_loss_is_replaced(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumers: list[Consumer] = []

    def consumer(config: dict[str, Any]) -> Consumer:
        consumers.append(LosesAndNeverRejoins(config) if not consumers else Consumer(config))
        return consumers[-1]

    monkeypatch.setattr(loop, "Consumer", consumer)
    config = tuned(settings, {}, batch_size=20, rejoin_timeout_seconds=8)
    before, after = good_messages(100), good_messages(150)[100:]

    with running(relay_spec(relay_topics.input, relay_topics.output), config) as runner:
        produce(kafka_bootstrap, relay_topics.input, before)
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)
        first = consumers[0]
        assert isinstance(first, LosesAndNeverRejoins)
        first.lose()
        wait_for(lambda: first.gone, "the first consumer lost its partitions")
        produce(kafka_bootstrap, relay_topics.input, after)
        wait_for(lambda: len(consumers) == 2, "the consumer replaced", timeout=60)
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)
        replaced = runner.metrics.registry.get_sample_value(
            "hitl_consumer_replaced_total", {"worker": "relay"}
        )

    assert replaced == 1, "replaced once: the new consumer was assigned within the timeout"
    relayed = read_topic(kafka_bootstrap, relay_topics.output, expect=len(before) + len(after))
    assert {message.key for message in relayed} == {key for key, _, _ in [*before, *after]}
