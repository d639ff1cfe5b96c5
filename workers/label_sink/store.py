"""The label-sink's `Sink`: training examples and their companion rows into PostgreSQL, by upsert.

A batch is one transaction. Each table's rows are COPYed straight into it when they are all new
(the usual case); when one is already there, into a temporary staging table instead, then moved
with `INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`: a COPY or two and one statement per
table, whatever the batch size. The update only happens when the incoming row is at least as
recent (labelled_at / resolved_at) and differs, so a replay touches no row and an older label
never replaces a newer one. Rows with the same key in one batch are reduced to the most recent
first (PostgreSQL refuses to update a row twice in one statement).

When PostgreSQL refuses the batch for a row's content (a constraint, a value it cannot hold), the
batch is written again event by event in one transaction, each event under a savepoint: the
events it refuses are returned by index with the database's message (the runtime dead-letters
them), the others are stored. A database that cannot be reached raises DependencyUnavailable.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from workers.contracts import Decision, ReviewResolution
from workers.errors import RejectedEvent
from workers.label_sink.mapping import (
    Mapped,
    correction_row,
    discard_row,
    example_row,
    from_decision,
    from_resolution,
    rag_review_row,
)
from workers.runtime.worker import Processed
from workers.storage.postgres import REFUSED, MigratedOnce, connection, write_each

logger = logging.getLogger("hitl.label_sink")

Row = tuple[Any, ...]


# Compared and hashed by identity: each table is one constant, used as a dict key for every row.
@dataclass(frozen=True, eq=False)
class Table:
    """A table the sink upserts into: its written columns (name, type), key, and recency column."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: str
    recency: str
    key_index: int = field(init=False, repr=False)
    recency_index: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.columns]
        object.__setattr__(self, "key_index", names.index(self.key))
        object.__setattr__(self, "recency_index", names.index(self.recency))

    @property
    def staging(self) -> str:
        return f"stage_{self.name}"

    def row(self, values: Mapping[str, Any]) -> Row:
        """The row of `values`, given by column name, in the table's column order."""
        if values.keys() != self.column_names:
            missing, extra = self.column_names - values.keys(), values.keys() - self.column_names
            raise ValueError(f"{self.name}: row without {sorted(missing)}, with unknown {sorted(extra)}")
        return tuple(values[name] for name, _ in self.columns)

    @property
    def column_names(self) -> set[str]:
        return {name for name, _ in self.columns}

    def latest(self, rows: Iterable[Row]) -> list[Row]:
        """One row per key: the most recent, and of equally recent ones the last."""
        key_index, recency_index = self.key_index, self.recency_index
        kept: dict[Any, Row] = {}
        for row in rows:
            current = kept.get(row[key_index])
            if current is None or row[recency_index] >= current[recency_index]:
                kept[row[key_index]] = row
        return list(kept.values())


TRAINING_EXAMPLES = Table(
    "training_examples",
    (
        ("example_id", "uuid"),
        ("kind", "text"),
        ("label_source", "text"),
        ("source_event_id", "uuid"),
        ("label", "text"),
        ("input", "jsonb"),
        ("model_output", "jsonb"),
        ("human_output", "jsonb"),
        ("reviewers", "text[]"),
        ("agreement", "double precision"),
        ("model_name", "text"),
        ("model_version", "text"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
        ("task_id", "uuid"),
        ("occurred_at", "timestamptz"),
        ("labelled_at", "timestamptz"),
        ("created_at", "timestamptz"),
    ),
    key="example_id",
    recency="labelled_at",
)
EXTRACTION_CORRECTIONS = Table(
    "extraction_corrections",
    (
        ("extraction_event_id", "uuid"),
        ("example_id", "uuid"),
        ("document_id", "text"),
        ("source_text", "text"),
        ("schema_name", "text"),
        ("schema_version", "text"),
        ("llm_output", "text"),
        ("corrected_output", "text"),
        ("reviewers", "text[]"),
        ("agreement", "double precision"),
        ("model_name", "text"),
        ("model_version", "text"),
        ("occurred_at", "timestamptz"),
        ("resolved_at", "timestamptz"),
    ),
    key="extraction_event_id",
    recency="resolved_at",
)
RAG_REVIEWS = Table(
    "rag_reviews",
    (
        ("feedback_event_id", "uuid"),
        ("example_id", "uuid"),
        ("verdict", "text"),
        ("fault", "text"),
        ("corrected_answer", "text"),
        ("note", "text"),
        ("reviewers", "text[]"),
        ("agreement", "double precision"),
        ("resolved_at", "timestamptz"),
    ),
    key="feedback_event_id",
    recency="resolved_at",
)
DISCARDED_REVIEWS = Table(
    "discarded_reviews",
    (
        ("task_id", "uuid"),
        ("kind", "text"),
        ("reviewers", "text[]"),
        ("agreement", "double precision"),
        ("resolved_at", "timestamptz"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
    ),
    key="task_id",
    recency="resolved_at",
)
# In this order: the companion tables refer to training_examples.
TABLES = (TRAINING_EXAMPLES, EXTRACTION_CORRECTIONS, RAG_REVIEWS, DISCARDED_REVIEWS)


def rows_of(mapped: Mapped) -> dict[Table, Row]:
    """The rows one input message becomes, by table."""
    rows: dict[Table, Row] = {}
    example = mapped.example
    if example is not None:
        rows[TRAINING_EXAMPLES] = TRAINING_EXAMPLES.row(example_row(example))
        if mapped.correction is not None:
            rows[EXTRACTION_CORRECTIONS] = EXTRACTION_CORRECTIONS.row(
                correction_row(example, mapped.correction)
            )
        if mapped.rag_outcome is not None:
            rows[RAG_REVIEWS] = RAG_REVIEWS.row(rag_review_row(example, mapped.rag_outcome))
    if mapped.discard is not None:
        rows[DISCARDED_REVIEWS] = DISCARDED_REVIEWS.row(discard_row(mapped.discard, mapped.origin))
    return rows


def mapped_of(processed: Processed) -> Mapped:
    """What the handler mapped the event to; mapped here when the store is used on its own."""
    if isinstance(processed.effect, Mapped):
        return processed.effect
    event = processed.event
    if isinstance(event, ReviewResolution):
        return from_resolution(event, processed.origin)
    if isinstance(event, Decision):
        return from_decision(event, processed.origin)
    raise TypeError(f"the label sink takes ReviewResolution and Decision events, not {type(event).__name__}")


class LabelStore:
    """The `Sink` of the label-sink workers. It owns `pool` (opened with autocommit) and closes it."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        # Connections whose session has the staging tables (temporary tables live as long as it).
        self._staged: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
        self._migrations = MigratedOnce(pool)

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        if not batch:
            return {}
        self._migrations.ensure()
        rows = [rows_of(mapped_of(processed)) for processed in batch]
        with connection(self._pool) as conn:
            self._create_staging_tables(conn)
            try:
                with conn.transaction():
                    write_batch(conn, rows)
                return {}
            except REFUSED:
                pass
            return write_each(conn, rows, _upsert_event_rows)

    def close(self) -> None:
        self._pool.close()

    def _create_staging_tables(self, conn: psycopg.Connection[Any]) -> None:
        # Outside the batch's transaction: a rolled-back batch must not take them with it.
        if conn in self._staged:
            return
        for table in TABLES:
            conn.execute(_statements(table).create_staging)
        self._staged.add(conn)


def write_batch(conn: psycopg.Connection[Any], rows: Sequence[Mapping[Table, Row]]) -> None:
    """Writes every row of the batch, table by table, in the caller's transaction (the staging
    tables must exist in the session).

    New rows, the usual case, are COPYed straight into the table, under a savepoint. If one of
    them is already there (a replay, a re-review), that COPY is undone at its first such row and
    the rows go through the staging table and the upsert instead.
    """
    for table in TABLES:
        table_rows = table.latest(row[table] for row in rows if table in row)
        if not table_rows:
            continue
        statements = _statements(table)
        try:
            with conn.transaction():
                _copy(conn, statements.copy_into_table, table_rows)
            continue
        except psycopg.errors.UniqueViolation:
            pass
        _copy(conn, statements.copy_into_staging, table_rows)
        conn.execute(statements.upsert_staged)


def _copy(conn: psycopg.Connection[Any], statement: sql.Composed, rows: Iterable[Row]) -> None:
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _upsert_event_rows(conn: psycopg.Connection[Any], event_rows: Mapping[Table, Row]) -> None:
    for table in TABLES:
        if table in event_rows:
            conn.execute(_statements(table).upsert_row, event_rows[table])


# -- SQL -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statements:
    create_staging: sql.Composed
    copy_into_table: sql.Composed
    copy_into_staging: sql.Composed
    upsert_staged: sql.Composed
    upsert_row: sql.Composed


def _build_statements(table: Table) -> Statements:
    target, staging = sql.Identifier(table.name), sql.Identifier(table.staging)
    names = [name for name, _ in table.columns]
    columns = sql.SQL(", ").join(map(sql.Identifier, names))
    updated = [name for name in names if name != table.key]
    on_conflict = sql.SQL(
        " ON CONFLICT ({key}) DO UPDATE SET {assignments}, updated_at = now()"
        " WHERE t.{recency} <= EXCLUDED.{recency} AND ({current}) IS DISTINCT FROM ({incoming})"
    ).format(
        key=sql.Identifier(table.key),
        assignments=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in updated
        ),
        recency=sql.Identifier(table.recency),
        current=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(name)) for name in updated),
        incoming=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(name)) for name in updated),
    )
    values = sql.SQL(", ").join(sql.SQL("%s::" + kind) for _, kind in table.columns)
    return Statements(
        create_staging=sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {target} INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        ).format(staging=staging, target=target),
        copy_into_table=sql.SQL("COPY {target} ({columns}) FROM STDIN").format(
            target=target, columns=columns
        ),
        copy_into_staging=sql.SQL("COPY {staging} ({columns}) FROM STDIN").format(
            staging=staging, columns=columns
        ),
        upsert_staged=sql.SQL("INSERT INTO {target} AS t ({columns}) SELECT {columns} FROM {staging}").format(
            target=target, columns=columns, staging=staging
        )
        + on_conflict,
        upsert_row=sql.SQL("INSERT INTO {target} AS t ({columns}) VALUES ({values})").format(
            target=target, columns=columns, values=values
        )
        + on_conflict,
    )


_STATEMENTS = {table.name: _build_statements(table) for table in TABLES}


def _statements(table: Table) -> Statements:
    return _STATEMENTS[table.name]
