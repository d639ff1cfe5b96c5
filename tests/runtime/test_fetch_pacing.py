"""The consumer the runtime builds waits `fetch_backoff_ms` to fetch again while what it fetched is
not yet taken, so that a moderate, steady input arrives in batches rather than a message or two
per fetch (each of which then costs a produce request and a commit); with 0, it fetches again at
once, as librdkafka does by default."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, Producer

from tests.conftest import TopicFactory, unique_name
from workers.config import Settings
from workers.runtime.kafka_config import consumer_config

MESSAGES = 12
SPACING_SECONDS = 0.03


def arrivals(settings: Settings, topic: str) -> list[int]:
    """Sizes of the batches a consumer built like the runtime's gets while a producer sends
    `MESSAGES` one by one, `SPACING_SECONDS` apart; the consumer takes what is fetched as the
    runtime's loop does: it waits for one message, then takes what else is in hand."""
    consumer = Consumer(consumer_config(settings, unique_name("pacing")))
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 0})

    def send() -> None:
        for index in range(MESSAGES):
            producer.produce(topic, value=str(index).encode())
            producer.flush(5)
            time.sleep(SPACING_SECONDS)

    sender = threading.Thread(target=send)
    sender.start()
    batches: list[int] = []
    deadline = time.monotonic() + 30
    try:
        while sum(batches) < MESSAGES and time.monotonic() < deadline:
            first = consumer.poll(0.2)
            if first is None or first.error() is not None:
                continue
            rest = consumer.consume(num_messages=100, timeout=0)
            batches.append(1 + sum(1 for message in rest if message.error() is None))
    finally:
        sender.join()
        consumer.close()
    assert sum(batches) == MESSAGES, batches
    return batches


def with_fetch_backoff(settings: Settings, milliseconds: int) -> Settings:
    runtime = settings.runtime.model_copy(update={"fetch_backoff_ms": milliseconds})
    return settings.model_copy(update={"runtime": runtime})


def test_a_steady_input_is_fetched_in_gathered_batches(settings: Settings, make_topic: TopicFactory) -> None:
    topic = make_topic("pacing", partitions=1)
    # 12 messages over about 0.36 s: the first fetched at once, the rest after the 0.5 s wait.
    assert len(arrivals(with_fetch_backoff(settings, 500), topic)) <= 3


def test_without_gathering_each_message_is_fetched_on_its_own(
    settings: Settings, make_topic: TopicFactory
) -> None:
    topic = make_topic("pacing", partitions=1)
    assert len(arrivals(with_fetch_backoff(settings, 0), topic)) >= MESSAGES // 2
