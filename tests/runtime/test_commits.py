"""A commit is asynchronous while fewer than two are unanswered, else synchronous. librdkafka
answers only asynchronous commits (on_commit): a synchronous one counted as unanswered would keep
every later commit synchronous, and an idle worker's last batch uncommitted."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

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


class CommitTimes(Consumer):
    """A consumer that notes when each asynchronous commit is made."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.times: list[float] = []

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("asynchronous", True):
            self.times.append(time.monotonic())
        return super().commit(*args, **kwargs)


STEADY_INPUTS = 40


def commits_of_a_steady_input(
    bootstrap: str, topics: RelayTopics, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> list[float]:
    """When the relay committed asynchronously while `STEADY_INPUTS` predictions arrived one by one,
    25 ms apart; returns once every input is committed."""
    consumers: list[CommitTimes] = []

    def consumer(config: dict[str, Any]) -> CommitTimes:
        consumers.append(CommitTimes(config))
        return consumers[-1]

    monkeypatch.setattr(loop, "Consumer", consumer)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    with running(relay_spec(topics.input, topics.output), settings):
        for key, value, headers in good_messages(STEADY_INPUTS):
            producer.produce(topics.input, value, key, headers=headers)
            producer.poll(0)
            time.sleep(0.025)
        assert producer.flush(30) == 0
        wait_until_committed_to_the_end(bootstrap, settings, topics.input)
    [used] = consumers
    return used.times


def test_commits_of_a_steady_input_are_an_interval_apart(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = 0.4
    config = tuned(settings, {}, commit_interval_ms=int(interval * 1000), batch_size=10)
    times = commits_of_a_steady_input(kafka_bootstrap, relay_topics, config, monkeypatch)
    # About a second of input, and the last batch committed once the interval is over.
    assert 1 <= len(times) <= 6, times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # The loop notes a commit's time a moment before it reaches this wrapper, and a busy machine
    # can stretch that moment; without the interval the gaps would be the input's 25 ms.
    assert all(gap >= interval - 0.1 for gap in gaps), gaps


def test_without_an_interval_each_acknowledged_batch_is_committed(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tuned(settings, {}, commit_interval_ms=0, batch_size=10)
    times = commits_of_a_steady_input(kafka_bootstrap, relay_topics, config, monkeypatch)
    assert len(times) >= STEADY_INPUTS // 4, times
