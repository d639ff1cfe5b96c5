"""The routed and reviewed history, read from the quality tables into plain records.

A window (`since` <= time < `until`) applies to when an event entered the loop: a decision's
`decided_at`, a task's `created_at`. `task` keeps the predictions of that task, and the other
review kinds when it names the kind (`rag_answer`, `extraction`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from workers.errors import DependencyUnavailable
from workers.storage.migrations import migrate


@dataclass(frozen=True)
class Window:
    since: datetime | None = None
    until: datetime | None = None
    task: str | None = None


@dataclass(frozen=True)
class DecisionRow:
    event_id: UUID
    task: str
    model_name: str
    model_version: str
    label: str
    outcome: str
    score: float
    band_low: float
    band_high: float
    scores: dict[str, float]
    ground_truth: str | None
    occurred_at: datetime
    decided_at: datetime


@dataclass(frozen=True)
class TaskRow:
    task_id: UUID
    kind: str
    reason: str
    task: str
    model_name: str
    model_version: str
    suggested_label: str | None
    scores: dict[str, float] | None
    ground_truth: str | None
    occurred_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class ReviewRow:
    task_id: UUID
    status: str
    answer: str | None
    first_resolved_at: datetime
    answers: tuple[tuple[str, str], ...]
    """(reviewer, answer) of the current revision's submitted answers."""


@dataclass
class History:
    decisions: list[DecisionRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    reviews: dict[UUID, ReviewRow] = field(default_factory=dict)

    def task_by_id(self) -> dict[UUID, TaskRow]:
        return {task.task_id: task for task in self.tasks}


@contextmanager
def connect(dsn: str, schema: str | None) -> Iterator[psycopg.Connection[Any]]:
    """A connection in `schema` (else the DSN's search path), with the migrations applied."""
    options = {"options": f"-c search_path={schema}"} if schema else {}
    try:
        with psycopg.connect(dsn, **options) as conn:  # type: ignore[arg-type]
            migrate(conn)
            yield conn
    except psycopg.OperationalError as error:
        raise DependencyUnavailable(f"PostgreSQL unavailable: {error}") from error


def _window_sql(column: str, window: Window, task_column: str) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if window.since is not None:
        clauses.append(f"{column} >= %(since)s")
        params["since"] = window.since
    if window.until is not None:
        clauses.append(f"{column} < %(until)s")
        params["until"] = window.until
    if window.task is not None:
        clauses.append(f"{task_column} = %(task)s")
        params["task"] = window.task
    return " AND ".join(clauses), params


def load_history(conn: psycopg.Connection[Any], window: Window) -> History:
    history = History()
    where, params = _window_sql("decided_at", window, "task")
    for row in conn.execute(
        "SELECT event_id, task, model_name, model_version, label, outcome, score, band_low, band_high,"
        f" scores, ground_truth, occurred_at, decided_at FROM quality_decisions WHERE {where}",
        params,
    ):
        history.decisions.append(DecisionRow(*row))
    where, params = _window_sql("created_at", window, "coalesce(task, kind)")
    for row in conn.execute(
        "SELECT task_id, kind, reason, coalesce(task, kind), model_name, model_version, suggested_label,"
        f" scores, ground_truth, occurred_at, created_at FROM quality_review_tasks WHERE {where}",
        params,
    ):
        history.tasks.append(TaskRow(*row))
    where, params = _window_sql("t.created_at", window, "coalesce(t.task, t.kind)")
    answers: dict[UUID, list[tuple[str, str]]] = {}
    for task_id, reviewer, answer in conn.execute(
        "SELECT a.task_id, a.reviewer, a.answer FROM quality_review_answers a"
        " JOIN quality_reviews r ON r.task_id = a.task_id AND r.revision = a.revision"
        f" JOIN quality_review_tasks t ON t.task_id = a.task_id WHERE {where} AND a.answer IS NOT NULL"
        " ORDER BY a.task_id, a.position",
        params,
    ):
        answers.setdefault(task_id, []).append((reviewer, answer))
    for task_id, status, answer, first_resolved_at in conn.execute(
        "SELECT r.task_id, r.status, r.answer, r.first_resolved_at FROM quality_reviews r"
        f" JOIN quality_review_tasks t ON t.task_id = r.task_id WHERE {where}",
        params,
    ):
        history.reviews[task_id] = ReviewRow(
            task_id, status, answer, first_resolved_at, tuple(answers.get(task_id, ()))
        )
    return history
