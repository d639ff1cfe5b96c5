"""Kafka offsets of a batch: where to commit after it, where to rewind to before retrying it."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import TopicPartition

from workers.runtime.worker import Origin


def next_offsets(origins: Iterable[Origin]) -> list[TopicPartition]:
    """The offsets to commit: one past the last message of each partition."""
    last: dict[tuple[str, int], int] = {}
    for origin in origins:
        key = (origin.topic, origin.partition)
        last[key] = max(last.get(key, -1), origin.offset)
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]


def first_offsets(origins: Iterable[Origin]) -> list[TopicPartition]:
    """The offsets to rewind to: the first message of each partition."""
    first: dict[tuple[str, int], int] = {}
    for origin in origins:
        key = (origin.topic, origin.partition)
        first[key] = min(first.get(key, origin.offset), origin.offset)
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in first.items()]
