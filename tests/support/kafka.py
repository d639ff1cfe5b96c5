"""Producing to and reading back from the real broker in tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition


@dataclass(frozen=True)
class Received:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


Message = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def produce(bootstrap: str, topic: str, messages: Iterable[Message], partition: int | None = None) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 4_000_000})
    errors: list[KafkaError] = []
    count = 0
    for key, value, headers in messages:
        while True:
            try:
                producer.produce(
                    topic,
                    key=key,
                    value=value,
                    headers=headers,
                    **({} if partition is None else {"partition": partition}),
                    on_delivery=lambda error, _m: errors.append(error) if error else None,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    assert producer.flush(60) == 0
    assert errors == [], errors
    return count


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    timeout: float = 60,
    settle: float = 1.0,
    committed_only: bool = True,
) -> list[Received]:
    """Reads a topic from the start until `expect` messages arrived, then `settle` seconds of quiet.

    It never returns before it has reached the end of every partition (the last stable offset when
    `committed_only`), so a check that nothing was produced (`expect=0`) cannot pass vacuously.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
        }
    )
    received: list[Received] = []
    deadline = time.monotonic() + timeout
    try:
        partitions = _partitions(consumer, topic, deadline)
        # Assigned at once, not subscribed: no group rebalance to wait for, and no moment when the
        # reader is quiet only because it has not been given its partitions yet.
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
        at_end: set[int] = set()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=0.2)
            for message in batch:
                partition = message.partition()
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                        at_end.add(partition)
                    continue
                at_end.discard(partition)  # type: ignore[arg-type]
                quiet_since = time.monotonic()
                received.append(
                    Received(
                        message.key(),
                        message.value(),
                        dict(message.headers() or []),
                        message.partition(),
                        message.offset(),
                    )
                )
            if (
                at_end >= set(partitions)
                and len(received) >= expect
                and time.monotonic() - quiet_since >= settle
            ):
                break
    finally:
        consumer.close()
    return received


def _partitions(consumer: Consumer, topic: str, deadline: float) -> list[int]:
    while True:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        assert time.monotonic() < deadline, f"topic {topic} not found: {metadata and metadata.error}"
        time.sleep(0.2)
