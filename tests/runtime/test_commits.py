"""A commit is asynchronous while fewer than two are unanswered, else synchronous. librdkafka
answers only asynchronous commits (on_commit): a synchronous one counted as unanswered would keep
every later commit synchronous, and an idle worker's last batch uncommitted."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from tests.runtime.conftest import RelayTopics, running
from tests.runtime.test_loop_faults import good_messages, tuned
from tests.runtime.test_overlap import wait_for, wait_until_committed_to_the_end
from tests.support.kafka import produce
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.runtime import loop

Answer = tuple[KafkaError | None, list[TopicPartition]]


class SlowCommitAnswers(Consumer):
    """A consumer whose commit answers are held back, as from a slow broker, until `release()`;
    it counts its commits of each kind."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._answer = config.pop("on_commit")
        self.holding = True
        self.held: list[Answer] = []
        self.commits: Counter[str] = Counter()
        super().__init__({**config, "on_commit": self._answered})

    def _answered(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if self.holding:
            self.held.append((error, partitions))
        else:
            self._answer(error, partitions)

    def release(self) -> None:
        self.holding = False

    def _deliver_held(self) -> None:
        # On the worker's thread, as librdkafka would: from its consume or poll.
        if not self.holding:
            held, self.held = self.held, []
            for error, partitions in held:
                self._answer(error, partitions)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self._deliver_held()
        return super().consume(num_messages=num_messages, timeout=timeout)

    def poll(self, timeout: float = -1) -> Message | None:
        self._deliver_held()
        return super().poll(timeout)

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        self.commits["asynchronous" if kwargs.get("asynchronous", True) else "synchronous"] += 1
        return super().commit(*args, **kwargs)


def test_commits_go_back_to_asynchronous_once_the_broker_answers(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumers: list[SlowCommitAnswers] = []

    def consumer(config: dict[str, Any]) -> SlowCommitAnswers:
        consumers.append(SlowCommitAnswers(config))
        return consumers[-1]

    monkeypatch.setattr(loop, "Consumer", consumer)
    config = tuned(settings, {}, batch_size=10, messages_in_flight=20)
    produce(kafka_bootstrap, relay_topics.input, good_messages(400))

    with running(relay_spec(relay_topics.input, relay_topics.output), config):
        wait_for(lambda: consumers and consumers[0].commits["synchronous"] >= 2, "commits made synchronous")
        [slow] = consumers
        assert len(slow.held) == loop.COMMITS_IN_FLIGHT, "only asynchronous commits are answered"
        slow.release()
        # Answered now: the idle worker commits what it has in flight, without new input.
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)
        before = slow.commits.copy()
        produce(kafka_bootstrap, relay_topics.input, good_messages(1))
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)
        after = slow.commits.copy()

    assert after["synchronous"] == before["synchronous"], "the new input's commit did not wait"
    assert after["asynchronous"] > before["asynchronous"]
