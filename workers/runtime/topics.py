"""The project's topics: created idempotently with the configured partitions, described, and checked."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from workers.config import Settings
from workers.errors import DependencyUnavailable, TopicsMissing
from workers.runtime.kafka_config import DEAD_LETTER_MAX_MESSAGE_BYTES, admin_config

ADMIN_TIMEOUT_SECONDS = 30


def dead_letter_topic_config() -> dict[str, str]:
    return {"max.message.bytes": str(DEAD_LETTER_MAX_MESSAGE_BYTES)}


@dataclass(frozen=True)
class TopicDescription:
    name: str
    partitions: int
    replication_factor: int


def project_topics(settings: Settings) -> list[str]:
    """Every topic the pipeline uses: the event topics and a dead-letter topic per input topic."""
    topics = settings.topics
    return topics.names() + [topics.dead_letter_topic(name) for name in topics.inputs()]


def create_topics(settings: Settings) -> dict[str, str]:
    """Creates the missing topics; returns each topic with 'created' or 'exists'."""
    admin = AdminClient(admin_config(settings))
    topics = settings.topics
    dead_letter_topics = {topics.dead_letter_topic(name) for name in topics.inputs()}
    wanted = [
        NewTopic(
            name,
            num_partitions=topics.partitions,
            replication_factor=topics.replication_factor,
            config=dead_letter_topic_config() if name in dead_letter_topics else {},
        )
        for name in project_topics(settings)
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(wanted, request_timeout=ADMIN_TIMEOUT_SECONDS).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_SECONDS)
            outcome[name] = "created"
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
    # A worker started at once checks its topics in the metadata; those still unlisted after the
    # wait are reported by that check.
    wait_until_listed(admin, {t.topic: t.num_partitions for t in wanted if outcome[t.topic] == "created"})
    return outcome


def wait_until_listed(
    admin: AdminClient, partitions: Mapping[str, int], timeout: float = ADMIN_TIMEOUT_SECONDS
) -> list[str]:
    """Waits until the broker's metadata lists each new topic with its `partitions`: a creation is
    answered once the controller has it, and on a broker under load the metadata can lag behind.
    Returns the topics still not listed so when `timeout` is over."""
    deadline = time.monotonic() + timeout
    while True:
        listed = admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).topics
        unlisted = [
            name
            for name, count in partitions.items()
            if name not in listed or listed[name].error is not None or len(listed[name].partitions) != count
        ]
        if not unlisted or time.monotonic() > deadline:
            return unlisted
        time.sleep(0.1)


def describe_topics(settings: Settings, names: Iterable[str] | None = None) -> list[TopicDescription | str]:
    """Each topic's partitions and replication factor, or its name alone when it does not exist."""
    metadata = _metadata(settings)
    described: list[TopicDescription | str] = []
    for name in names or project_topics(settings):
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            described.append(name)
            continue
        replicas = min((len(p.replicas) for p in topic.partitions.values()), default=0)
        described.append(TopicDescription(name, len(topic.partitions), replicas))
    return described


def require_topics(settings: Settings, names: Iterable[str]) -> None:
    existing = set(_metadata(settings).topics)
    missing = sorted(set(names) - existing)
    if missing:
        raise TopicsMissing(
            f"missing topics: {', '.join(missing)}; create them with `hitl-workers topics create`"
        )


def _metadata(settings: Settings):  # type: ignore[no-untyped-def]
    try:
        return AdminClient(admin_config(settings)).list_topics(timeout=ADMIN_TIMEOUT_SECONDS)
    except KafkaException as error:
        raise DependencyUnavailable(f"Kafka at {settings.kafka_bootstrap} did not answer: {error}") from error
