from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from tests.conftest import TopicFactory, unique_name
from workers.config import LabelSinkSettings, Runtime, Settings, Topics, load_settings
from workers.label_sink.store import LabelStore
from workers.runtime.topics import dead_letter_topic_config
from workers.storage.postgres import open_pool


@dataclass(frozen=True)
class SinkTopics:
    resolved: str
    decisions: str
    examples: str

    @property
    def resolved_dead_letters(self) -> str:
        return self.resolved + ".dlq"

    @property
    def decisions_dead_letters(self) -> str:
        return self.decisions + ".dlq"


@pytest.fixture
def sink_topics(make_topic: TopicFactory) -> SinkTopics:
    resolved = make_topic("resolved", partitions=3)
    decisions = make_topic("decisions", partitions=3)
    for name in (resolved, decisions):
        make_topic(name=name + ".dlq", partitions=1, config=dead_letter_topic_config())
    return SinkTopics(resolved, decisions, make_topic("examples", partitions=3))


def sink_settings(kafka_bootstrap: str, postgres_dsn: str, topics: SinkTopics, **runtime: object) -> Settings:
    return load_settings(
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=postgres_dsn,
        group_id_prefix=unique_name("test"),
        topics=Topics(
            review_resolved=topics.resolved, decisions=topics.decisions, training_examples=topics.examples
        ),
        runtime=Runtime(**{"retry_initial_seconds": 0.1, "retry_max_seconds": 1.0, **runtime}),
        label_sink=LabelSinkSettings(include_auto_decisions=True),
    )


@pytest.fixture
def settings(kafka_bootstrap: str, postgres_dsn: str, sink_topics: SinkTopics) -> Settings:
    return sink_settings(kafka_bootstrap, postgres_dsn, sink_topics)


StoreFactory = Callable[..., LabelStore]


@pytest.fixture
def make_store(postgres_dsn: str, pg_schema: str) -> Iterator[StoreFactory]:
    """Builds LabelStores on the test's schema (through `dsn` if given), closed afterwards."""
    stores: list[LabelStore] = []

    def make(dsn: str | None = None, timeout: float = 5.0) -> LabelStore:
        pool = open_pool(dsn or postgres_dsn, schema=pg_schema, timeout=timeout, autocommit=True)
        stores.append(LabelStore(pool))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


TABLE_KEYS = {
    "training_examples": "example_id",
    "extraction_corrections": "extraction_event_id",
    "rag_reviews": "feedback_event_id",
    "discarded_reviews": "task_id",
}


def table_rows(connection: psycopg.Connection, table: str) -> list[tuple[object, ...]]:
    return connection.execute(f"SELECT * FROM {table} ORDER BY {TABLE_KEYS[table]}").fetchall()


def all_rows(connection: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: table_rows(connection, table) for table in TABLE_KEYS}
