from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from workers.feedback_triage.store import FeedbackStore

StoreFactory = Callable[..., FeedbackStore]


@pytest.fixture
def make_store(postgres_dsn: str, pg_schema: str) -> Iterator[StoreFactory]:
    """Builds FeedbackStores on the test's schema (through `dsn` if given), closed afterwards."""
    stores: list[FeedbackStore] = []

    def make(dsn: str | None = None, timeout: float = 5.0) -> FeedbackStore:
        stores.append(FeedbackStore(dsn or postgres_dsn, schema=pg_schema, pool_timeout=timeout))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def stored_event_ids(connection: psycopg.Connection) -> list[str]:
    return [str(row[0]) for row in connection.execute("SELECT event_id FROM feedback ORDER BY event_id")]
