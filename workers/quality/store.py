"""The quality recorders' `Sink`: their rows into PostgreSQL, upserted by key, one transaction a batch.

A replay changes nothing: a decision is replaced only by a later one for the same event (a re-route
under a new policy), a task keeps its first creation time (when it started waiting), a resolution
is replaced only by a later revision but keeps the earliest revision's time whatever order they
come in, and answers are per revision. A batch PostgreSQL refuses for
a row's content is written again event by event, and the refused events are dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from workers.errors import RejectedEvent
from workers.quality.recording import QualityRows
from workers.runtime.worker import Processed
from workers.storage.postgres import REFUSED, MigratedOnce, connection, write_each

COLUMNS: dict[str, tuple[str, ...]] = {
    "quality_decisions": (
        "event_id", "task", "model_name", "model_version", "label", "outcome", "score", "band_low",
        "band_high", "band_source", "policy_version", "scores", "ground_truth", "occurred_at", "decided_at",
    ),
    "quality_review_tasks": (
        "task_id", "kind", "reason", "priority", "task", "model_name", "model_version", "suggested_label",
        "suggested_score", "scores", "ground_truth", "occurred_at", "created_at",
    ),
    "quality_reviews": (
        "task_id", "kind", "status", "answer", "agreement", "reviewers", "revision", "first_resolved_at",
        "resolved_at",
    ),
    "quality_review_answers": ("task_id", "revision", "position", "reviewer", "answer"),
}  # fmt: skip

CONFLICT: dict[str, str] = {
    "quality_decisions": (
        "ON CONFLICT (event_id) DO UPDATE SET {updates} WHERE t.decided_at < EXCLUDED.decided_at"
    ),
    "quality_review_tasks": "ON CONFLICT (task_id) DO NOTHING",
    # Revisions may arrive in any order: the latest one's content, the earliest time.
    "quality_reviews": (
        "ON CONFLICT (task_id) DO UPDATE SET {newer_updates},"
        " first_resolved_at = LEAST(t.first_resolved_at, EXCLUDED.first_resolved_at)"
        " WHERE (t.revision, t.resolved_at) < (EXCLUDED.revision, EXCLUDED.resolved_at)"
        " OR EXCLUDED.first_resolved_at < t.first_resolved_at"
    ),
    "quality_review_answers": "ON CONFLICT (task_id, revision, position) DO NOTHING",
}
KEYS = {"quality_decisions": "event_id", "quality_review_tasks": "task_id", "quality_reviews": "task_id"}
CASTS = {"scores": "::jsonb"}


def upsert_statement(table: str) -> str:
    columns = COLUMNS[table]
    never_updated = {KEYS.get(table), "first_resolved_at"}
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns if name not in never_updated)
    values = ", ".join(f"%({name})s{CASTS.get(name, '')}" for name in columns)
    newer = "(t.revision, t.resolved_at) < (EXCLUDED.revision, EXCLUDED.resolved_at)"
    newer_updates = ", ".join(
        f"{name} = CASE WHEN {newer} THEN EXCLUDED.{name} ELSE t.{name} END"
        for name in columns
        if name not in never_updated
    )
    conflict = CONFLICT[table].format(updates=updates, newer_updates=newer_updates)
    return f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES ({values}) {conflict}"


STATEMENTS = {table: upsert_statement(table) for table in COLUMNS}


def write_rows(conn: psycopg.Connection[Any], batch: Sequence[QualityRows]) -> None:
    """Every row of the batch, table by table (in the caller's transaction)."""
    for table, statement in STATEMENTS.items():
        rows = [row for rows in batch for row in rows.rows.get(table, ())]
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(statement, rows)


class QualityStore:
    """The recorders' sink; it owns `pool` and closes it."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._migrations = MigratedOnce(pool)

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        if not batch:
            return {}
        self._migrations.ensure()
        # One entry per event, so that refused indices are the batch's.
        rows = [p.effect if isinstance(p.effect, QualityRows) else QualityRows() for p in batch]
        with connection(self._pool) as conn:
            try:
                with conn.transaction():
                    write_rows(conn, rows)
                return {}
            except REFUSED:
                pass
            return write_each(conn, rows, lambda each, item: write_rows(each, [item]))

    def close(self) -> None:
        self._pool.close()
