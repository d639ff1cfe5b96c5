"""Producing to and reading back from the real broker in tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Producer


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
    """Reads a topic from the start until `expect` messages arrived, then `settle` seconds of quiet."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
        }
    )
    consumer.subscribe([topic])
    received: list[Received] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=0.2)
            for message in batch:
                if message.error():
                    continue
                received.append(
                    Received(
                        message.key(),
                        message.value(),
                        dict(message.headers() or []),
                        message.partition(),
                        message.offset(),
                    )
                )
            if batch:
                quiet_since = time.monotonic()
            elif len(received) >= expect and time.monotonic() - quiet_since >= settle:
                break
    finally:
        consumer.close()
    return received
