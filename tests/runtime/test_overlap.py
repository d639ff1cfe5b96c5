"""Batches are produced without waiting for the acknowledgement of those before them. When the
batches in flight are not acknowledged, or their partitions are revoked or lost meanwhile, no input
is lost and no offset runs ahead of outputs.

The runners use the real broker through their real consumer and producer, wrapped to record what
they do (and, where a test says so, to fail an acknowledgement). Every commit is checked against
two rules:
1. a member commits only partitions it holds, no further than it consumed since it got them;
2. every input below a committed offset has had its output acknowledged by the broker.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.runtime.conftest import RelayTopics, running
from tests.runtime.test_loop_faults import GatedSink, good_messages, tuned
from tests.support.kafka import Message as Input
from tests.support.kafka import Received, produce, read_topic
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.contracts import Headers
from workers.runtime import loop
from workers.runtime.messages import origin_of
from workers.runtime.producing import KafkaOutput, OutputsNotAcknowledged

INPUTS = 600
BATCH_SIZE = 10
WORKER = "relay"

Partition = tuple[str, int]


@dataclass
class Member:
    """One runner's consumer and producer, as their wrappers saw them."""

    name: str
    held: set[Partition] = field(default_factory=set)
    # One past the highest offset consumed from each held partition since it was assigned.
    consumed: dict[Partition, int] = field(default_factory=dict)
    taken: int = 0
    # The partitions of the batch consumed last and not produced yet, and of each batch produced
    # and not acknowledged yet.
    in_hand: frozenset[Partition] = frozenset()
    in_flight: list[frozenset[Partition]] = field(default_factory=list)
    unacknowledged: set[bytes] = field(default_factory=set)
    revoked_in_flight: int = 0
    # The output keys of each batch in flight when partitions were lost.
    lost_in_flight: list[frozenset[bytes]] = field(default_factory=list)

    def took(self, messages: Sequence[Message]) -> None:
        origins = [origin_of(message) for message in messages if message.error() is None]
        if origins:
            self.in_hand = frozenset((origin.topic, origin.partition) for origin in origins)
            self.taken += len(origins)
        for origin in origins:
            partition = (origin.topic, origin.partition)
            if partition in self.held:
                self.consumed[partition] = max(self.consumed.get(partition, 0), origin.offset + 1)

    def sent(self, key: bytes | None) -> None:
        if self.in_hand:
            self.in_flight.append(self.in_hand)
            self.in_hand = frozenset()
        if key is not None:
            self.unacknowledged.add(key)

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self.held.add((tp.topic, tp.partition))
            self.consumed.pop((tp.topic, tp.partition), None)

    def released(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self.held.discard((tp.topic, tp.partition))
            self.consumed.pop((tp.topic, tp.partition), None)


class Audit:
    """The members of one consumer group, and the two rules checked at each of their commits."""

    def __init__(self, inputs: Sequence[Received]) -> None:
        self._inputs: dict[int, list[tuple[int, bytes]]] = {}
        for received in inputs:
            assert received.key is not None
            self._inputs.setdefault(received.partition, []).append((received.offset, received.key))
        self.members: list[Member] = []
        self.violations: list[str] = []
        self.before_acknowledge: Callable[[Member, KafkaOutput], None] = lambda _member, _output: None
        self.before_send: Callable[[Member], None] = lambda _member: None
        # False while a member is to see its outputs as not acknowledged yet when it looks without
        # waiting (with nothing in hand), as with a slow broker.
        self.acknowledged_when_idle: Callable[[Member], bool] = lambda _member: True
        self._acknowledged: set[bytes] = set()
        self._lock = threading.Lock()

    def consumer(self, config: dict[str, Any]) -> AuditedConsumer:
        member = Member(f"member {len(self.members)}")
        self.members.append(member)
        return AuditedConsumer(self, member, config)

    def output(self, settings: Settings, **options: Any) -> AuditedOutput:
        # Runner builds its consumer, then its output.
        return AuditedOutput(self, self.members[-1], settings, **options)

    def acknowledged(self, keys: set[bytes]) -> None:
        with self._lock:
            self._acknowledged |= keys

    def check_commit(self, member: Member, offsets: Sequence[TopicPartition]) -> None:
        with self._lock:
            for tp in offsets:
                self._check_offset(member, (tp.topic, tp.partition), tp.offset)

    def _check_offset(self, member: Member, partition: Partition, offset: int) -> None:
        where = f"{member.name} commits {partition[0]}[{partition[1]}]@{offset}"
        if partition not in member.held:
            self.violations.append(f"{where}, a partition it does not hold")
        elif offset > member.consumed.get(partition, -1):
            consumed = member.consumed.get(partition)
            self.violations.append(f"{where}, beyond what it consumed since assigned ({consumed})")
        unacknowledged = [
            below
            for below, key in self._inputs.get(partition[1], [])
            if below < offset and key not in self._acknowledged
        ]
        if unacknowledged:
            self.violations.append(
                f"{where} before the outputs of offsets {unacknowledged[:5]} are acknowledged"
            )


class AuditedConsumer(Consumer):
    def __init__(self, audit: Audit, member: Member, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.audit = audit
        self.member = member

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        messages = super().consume(num_messages=num_messages, timeout=timeout)
        self.member.took(messages)
        return messages

    def poll(self, timeout: float = -1) -> Message | None:
        message = super().poll(timeout)
        if message is not None:
            self.member.took([message])
        return message

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        self.audit.check_commit(self.member, kwargs.get("offsets") or [])
        return super().commit(*args, **kwargs)

    def subscribe(
        self, topics: list[str], on_assign: Any = None, on_revoke: Any = None, on_lost: Any = None
    ) -> None:
        member = self.member

        def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            member.assigned(partitions)
            on_assign(consumer, partitions)

        def revoked(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            member.revoked_in_flight += bool(member.unacknowledged)
            on_revoke(consumer, partitions)
            member.released(partitions)

        def lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            # Unlike revoked partitions, lost ones are not ours even while the callback runs.
            member.released(partitions)
            if member.unacknowledged:
                member.lost_in_flight.append(frozenset(member.unacknowledged))
            on_lost(consumer, partitions)

        super().subscribe(topics, on_assign=assigned, on_revoke=revoked, on_lost=lost)


class AuditedOutput(KafkaOutput):
    def __init__(self, audit: Audit, member: Member, settings: Settings, **options: Any) -> None:
        super().__init__(settings, **options)
        self.audit = audit
        self.member = member

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        self.audit.before_send(self.member)
        super().send(topic, key, value, headers)
        self.member.sent(key)

    def wait_for_acknowledgements(self, timeout: float) -> bool:
        if not self.audit.acknowledged_when_idle(self.member):
            time.sleep(timeout)
            return False
        return super().wait_for_acknowledgements(timeout)

    def acknowledge(self, timeout: float) -> None:
        member = self.member
        try:
            self.audit.before_acknowledge(member, self)
            super().acknowledge(timeout)
        except Exception:
            # The batch is produced again: what was sent counts only once acknowledged then.
            member.unacknowledged.clear()
            raise
        else:
            self.audit.acknowledged(member.unacknowledged)
            member.unacknowledged.clear()
        finally:
            member.in_flight = []


@pytest.fixture
def inputs(kafka_bootstrap: str, relay_topics: RelayTopics) -> list[Input]:
    messages = good_messages(INPUTS)
    produce(kafka_bootstrap, relay_topics.input, messages)
    return messages


@pytest.fixture
def audit(
    kafka_bootstrap: str, relay_topics: RelayTopics, inputs: list[Input], monkeypatch: pytest.MonkeyPatch
) -> Audit:
    audit = Audit(read_topic(kafka_bootstrap, relay_topics.input, expect=len(inputs), settle=0.1))
    monkeypatch.setattr(loop, "Consumer", audit.consumer)
    monkeypatch.setattr(loop, "KafkaOutput", audit.output)
    return audit


def small_batches(settings: Settings, client: dict[str, str] | None = None, **runtime: object) -> Settings:
    return tuned(
        settings, {"heartbeat.interval.ms": "500", **(client or {})}, batch_size=BATCH_SIZE, **runtime
    )


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not after {timeout} s: {what}"
        time.sleep(0.1)


def committed_and_end(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offset and the end of each of the topic's partitions."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, partition) for partition in metadata.partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        return committed, ends
    finally:
        consumer.close()


def wait_until_committed_to_the_end(bootstrap: str, settings: Settings, topic: str) -> None:
    def at_the_end() -> bool:
        committed, ends = committed_and_end(bootstrap, settings.group_id(WORKER), topic)
        return committed == ends

    wait_for(at_the_end, "offsets committed to the end of the input")


def relayed_keys(bootstrap: str, topics: RelayTopics, inputs: Sequence[Input]) -> Counter[bytes | None]:
    """How many outputs each key has, after checking that every input has one."""
    relayed = read_topic(bootstrap, topics.output, expect=len(inputs), timeout=30, settle=0.5)
    counts = Counter(message.key for message in relayed)
    assert set(counts) == {key for key, _value, _headers in inputs}, "every input has its output"
    return counts


def assert_settled(bootstrap: str, settings: Settings, topics: RelayTopics, audit: Audit) -> None:
    assert audit.violations == []
    committed, ends = committed_and_end(bootstrap, settings.group_id(WORKER), topics.input)
    assert committed == ends, "the committed offsets are at the end of the input"
    assert read_topic(bootstrap, topics.dead_letters, expect=0, settle=0.1) == []


# -- the batch in flight not acknowledged -----------------------------------------------------------


def no_answer(_output: KafkaOutput) -> None:
    raise OutputsNotAcknowledged("no acknowledgement within the timeout")


def delivery_timed_out(output: KafkaOutput) -> None:
    output._on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), None)  # type: ignore[arg-type]


def refused_by_the_broker(output: KafkaOutput) -> None:
    output._on_delivery(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)  # type: ignore[arg-type]


class FailOnceWithBatchesInFlight:
    """Fails the first acknowledgement that comes while several batches are in flight: rewinding
    the last one alone would leave the others' outputs unacknowledged below a later commit."""

    def __init__(self, fault: Callable[[KafkaOutput], None]) -> None:
        self.fault = fault
        self.fired = False

    def __call__(self, member: Member, output: KafkaOutput) -> None:
        if not self.fired and len(member.in_flight) >= 2:
            self.fired = True
            self.fault(output)


@pytest.mark.parametrize("fault", [no_answer, delivery_timed_out, refused_by_the_broker])
def test_batches_in_flight_not_acknowledged_are_all_retried(
    kafka_bootstrap: str,
    relay_topics: RelayTopics,
    settings: Settings,
    inputs: list[Input],
    audit: Audit,
    fault: Callable[[KafkaOutput], None],
) -> None:
    failing = FailOnceWithBatchesInFlight(fault)
    audit.before_acknowledge = failing
    config = small_batches(settings, messages_in_flight=4 * BATCH_SIZE)

    with running(relay_spec(relay_topics.input, relay_topics.output), config) as runner:
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)
        retries = runner.metrics.registry.get_sample_value(
            "hitl_retries_total", {"worker": WORKER, "reason": "DependencyUnavailable"}
        )

    assert failing.fired
    assert_settled(kafka_bootstrap, config, relay_topics, audit)
    relayed_keys(kafka_bootstrap, relay_topics, inputs)
    assert retries == 1, "one retry, of every batch in flight"


def test_the_loop_waits_for_the_broker_once_its_messages_in_flight_reach_the_limit(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings, inputs: list[Input], audit: Audit
) -> None:
    limit = 5 * BATCH_SIZE
    in_flight_when_waiting: list[int] = []
    audit.before_acknowledge = lambda member, _output: in_flight_when_waiting.append(
        len(member.unacknowledged)
    )
    # Never acknowledged when the loop looks without waiting: only the limit makes it wait.
    audit.acknowledged_when_idle = lambda _member: False
    config = small_batches(settings, messages_in_flight=limit)

    with running(relay_spec(relay_topics.input, relay_topics.output), config):
        relayed_keys(kafka_bootstrap, relay_topics, inputs)

    waits_while_running = in_flight_when_waiting[:-1]  # the last is the stop's
    assert len(waits_while_running) >= len(inputs) // (limit + BATCH_SIZE)
    assert all(limit <= count < limit + BATCH_SIZE for count in waits_while_running), in_flight_when_waiting
    assert_settled(kafka_bootstrap, config, relay_topics, audit)


# -- partitions revoked, or lost, while a batch is in flight -----------------------------------------


def test_partitions_revoked_while_a_batch_is_in_flight_lose_nothing(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings, inputs: list[Input], audit: Audit
) -> None:
    def not_for_the_first_until_revoked(member: Member) -> bool:
        return member is not audit.members[0] or bool(member.revoked_in_flight)

    def first_slow_until_revoked(member: Member) -> None:
        # Keeps the first member mid-stream until the second one has joined.
        if not not_for_the_first_until_revoked(member):
            time.sleep(0.02)

    # Until the revoke, the first member produces slowly, sees nothing acknowledged, and has room
    # for every batch: what it has read when the second one joins is all in flight.
    audit.before_send = first_slow_until_revoked
    audit.acknowledged_when_idle = not_for_the_first_until_revoked
    config = small_batches(settings, messages_in_flight=INPUTS)
    spec = relay_spec(relay_topics.input, relay_topics.output)

    with ExitStack() as members:
        members.enter_context(running(spec, config))
        first = audit.members[0]
        wait_for(lambda: first.consumed, "the first member consuming")
        members.enter_context(running(spec, config))
        second = audit.members[1]
        wait_for(lambda: first.revoked_in_flight, "a revoke with a batch in flight")
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)

    assert second.taken > 0, "the second member took over partitions"
    relayed_keys(kafka_bootstrap, relay_topics, inputs)
    assert_settled(kafka_bootstrap, config, relay_topics, audit)


def test_partitions_lost_with_a_batch_in_flight_are_processed_again_by_the_next_owner(
    kafka_bootstrap: str,
    kafka_admin: AdminClient,
    relay_topics: RelayTopics,
    settings: Settings,
    inputs: list[Input],
    audit: Audit,
) -> None:
    later = {key.decode() for key, _value, _headers in inputs[len(inputs) // 2 :] if key}
    sink = GatedSink(gated=later)
    # The first member, stuck in its sink past max.poll.interval.ms, is evicted from the group.
    # Until then it sees nothing acknowledged, and has room for every batch: the batches it
    # produced before it got stuck are still in flight when it learns of the loss.
    audit.acknowledged_when_idle = lambda m: m is not audit.members[0] or bool(m.lost_in_flight)
    config = small_batches(
        settings,
        {"max.poll.interval.ms": "6000", "session.timeout.ms": "6000"},
        messages_in_flight=INPUTS,
    )
    spec = relay_spec(relay_topics.input, relay_topics.output)
    group = config.group_id(WORKER)

    def group_is_empty() -> bool:
        return not kafka_admin.describe_consumer_groups([group])[group].result(timeout=10).members

    with ExitStack() as members:
        members.enter_context(running(replace(spec, sink=sink), config))
        first = audit.members[0]
        assert sink.entered.wait(30)
        # Joined only once the first member is out: a member joining earlier starts a rebalance,
        # which the first member would later see as a revoke, not a loss.
        wait_for(group_is_empty, "the first member evicted")
        members.enter_context(running(spec, config))
        second = audit.members[1]
        wait_for(lambda: len(second.held) == 3, "the second member holding every partition")
        sink.release.set()
        wait_for(lambda: first.lost_in_flight, "partitions lost with a batch in flight")
        wait_until_committed_to_the_end(kafka_bootstrap, config, relay_topics.input)

    [lost] = first.lost_in_flight
    counts = relayed_keys(kafka_bootstrap, relay_topics, inputs)
    assert lost and all(counts[key] >= 2 for key in lost), "the next owner processed the lost batch again"
    assert_settled(kafka_bootstrap, config, relay_topics, audit)
