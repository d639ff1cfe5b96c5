"""The broker for real: keyed messages with headers through a 3-partition topic, each arriving once."""

from __future__ import annotations

import time
from collections import Counter

from confluent_kafka import Consumer, KafkaError, Producer

from tests.conftest import TopicFactory, unique_name

MESSAGES = 1_000


def test_every_message_arrives_once_with_its_key_and_headers(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    topic = make_topic("smoke", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    failures: list[KafkaError] = []
    for i in range(MESSAGES):
        producer.produce(
            topic,
            key=f"key-{i}".encode(),
            value=f"value-{i}".encode(),
            headers=[("seq", str(i).encode()), ("content-type", b"text/plain")],
            on_delivery=lambda error, _msg: failures.append(error) if error else None,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name("smoke"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: Counter[str] = Counter()
    partitions: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while sum(received.values()) < MESSAGES and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None, message.error()
                headers = dict(message.headers() or [])
                seq = headers["seq"].decode()
                assert message.key() == f"key-{seq}".encode()
                assert message.value() == f"value-{seq}".encode()
                assert headers["content-type"] == b"text/plain"
                received[seq] += 1
                partitions.add(message.partition())
    finally:
        consumer.close()

    assert len(received) == MESSAGES
    assert set(received.values()) == {1}
    assert partitions == {0, 1, 2}
