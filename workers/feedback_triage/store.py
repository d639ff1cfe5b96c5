"""The worker's sink: every feedback event into the `feedback` table, once per event id.

A batch is one `INSERT ... SELECT FROM unnest(...)` on an autocommit connection: one statement,
one round trip. `ON CONFLICT (event_id) DO NOTHING` makes a replay a no-op, whether it comes in
a later batch or twice in the same one. When PostgreSQL refuses the batch for a row's content,
the batch is written again row by row in one transaction, each row under a savepoint: the rows it
refuses are returned by index (the runtime dead-letters them with the database's message) and the
others are stored. A database that cannot be reached raises DependencyUnavailable, whatever the
moment: waiting for a connection, mid-statement, or at commit.

The migrations are applied when the store is built and, if PostgreSQL is down then, before the
first write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.config import PostgresSettings
from workers.contracts import Feedback
from workers.contracts.plain import PlainFeedback
from workers.errors import RejectedEvent
from workers.runtime.worker import Processed
from workers.storage.postgres import REFUSED, MigratedOnce, connection, open_pool, write_each

logger = logging.getLogger("hitl.feedback_triage")


# Column name and the array type its values are sent as.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "uuid"),
    ("occurred_at", "timestamptz"),
    ("session_id", "text"),
    ("question", "text"),
    ("answer", "text"),
    ("contexts", "jsonb"),
    ("rating", "text"),
    ("comment", "text"),
    ("user_id", "text"),
    ("model_name", "text"),
    ("model_version", "text"),
    ("prompt_version", "text"),
    ("source_topic", "text"),
    ("source_partition", "integer"),
    ("source_offset", "bigint"),
)
_NAMES = ", ".join(name for name, _ in COLUMNS)
INSERT_BATCH = (
    f"INSERT INTO feedback ({_NAMES}) "
    f"SELECT * FROM unnest({', '.join(f'%s::{kind}[]' for _, kind in COLUMNS)}) "
    "ON CONFLICT (event_id) DO NOTHING"
)
INSERT_ROW = (
    f"INSERT INTO feedback ({_NAMES}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
    "ON CONFLICT (event_id) DO NOTHING"
)

Row = tuple[
    str, datetime, str, str, str, Jsonb, str, str | None, str | None, str, str, str | None, str, int, int
]


class FeedbackStore:
    """The `Sink` of the feedback-triage worker, on a pool of its own.

    `schema` is the search path (else the DSN's); `pool_timeout` bounds the wait for a connection;
    `limits` are the sessions' statement and lock timeouts.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        pool_timeout: float = 10.0,
        limits: PostgresSettings | None = None,
    ) -> None:
        # Autocommit: the batch statement is its own transaction, and a refused one leaves the
        # connection ready for the row-by-row transaction.
        self._pool = open_pool(dsn, schema=schema, timeout=pool_timeout, autocommit=True, limits=limits)
        self._migrations = MigratedOnce(self._pool)

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        if not batch:
            return {}
        self._migrations.ensure()
        rows = [feedback_row(received) for received in batch]
        with connection(self._pool) as conn:
            try:
                conn.execute(INSERT_BATCH, [list(column) for column in zip(*rows, strict=True)])
                return {}
            except REFUSED:
                pass
            return write_each(conn, rows, _insert_row)

    def close(self) -> None:
        self._pool.close()


def _insert_row(conn: psycopg.Connection[Any], row: Row) -> None:
    conn.execute(INSERT_ROW, row)


def feedback_row(received: Processed) -> Row:
    """The row of a Feedback event, or of its plain mirror (the fast path's), which is the same."""
    feedback = received.event
    if not isinstance(feedback, Feedback | PlainFeedback):
        raise TypeError(f"the feedback store takes Feedback events, not {type(feedback).__name__}")
    origin = received.origin
    contexts = [{"doc_id": c.doc_id, "text": c.text, "score": c.score} for c in feedback.contexts]
    return (
        # As text, the form both give (a batch may hold both): PostgreSQL casts it to uuid.
        str(feedback.event_id),
        feedback.occurred_at,
        feedback.session_id,
        feedback.question,
        feedback.answer,
        Jsonb(contexts),
        str(feedback.rating),
        feedback.comment,
        feedback.user_id,
        feedback.model.name,
        feedback.model.version,
        feedback.prompt_version,
        origin.topic,
        origin.partition,
        origin.offset,
    )
