"""Histories with a known truth, loaded into a PostgreSQL schema of the test's own."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from workers.contracts import Item, ModelInfo, Prediction, ReviewTask
from workers.quality.demo import Reviewers, history_rows
from workers.quality.history import History, Window, connect, load_history
from workers.quality.store import write_rows

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NAMESPACE = uuid.UUID("0b6f0f1e-6d3e-4b7e-8f59-0a1d2c3b4e5f")


def truthful(task: ReviewTask) -> list[tuple[str, str]]:
    """Two reviewers who always answer the truth."""
    assert isinstance(task.source, Prediction)
    truth = task.source.ground_truth
    assert truth is not None
    return [("ana", truth), ("bo", truth)]


def prediction(
    task: str, index: int, toxic: float, truth: str, minutes: float, version: str = "1"
) -> Prediction:
    return Prediction(
        event_id=uuid.uuid5(NAMESPACE, f"{task}:{index}"),
        occurred_at=START + timedelta(minutes=minutes),
        source="test",
        task=task,
        model=ModelInfo(name="toxicity-bert", version=version),
        item=Item(id=f"{task}-{index}", content_type="text/plain", text="a comment"),
        scores={"toxic": round(toxic, 4), "ok": round(1 - toxic, 4)},
        ground_truth=truth,
    )


def overconfident_history(task: str, count: int, seed: int, hours: float = 100.0) -> list[Prediction]:
    """Predictions whose scores are sharper than the truth (as samples/generate.py's history)."""
    rng = random.Random(f"{task}:{seed}")
    predictions = []
    for index in range(count):
        roll = rng.random()
        if roll < 0.68:
            p = rng.betavariate(0.6, 40)
        elif roll < 0.86:
            p = rng.betavariate(25, 0.8)
        else:
            p = rng.uniform(0.1, 0.9)
        truth = "toxic" if rng.random() < p else "ok"
        p = min(max(p, 1e-4), 1 - 1e-4)
        logit = 1.2 * math.log(p / (1 - p)) + 0.3 + rng.gauss(0, 0.8)
        toxic = min(max(1 / (1 + math.exp(-logit)), 0.0001), 0.9999)
        predictions.append(prediction(task, index, toxic, truth, index * hours * 60 / count))
    return predictions


Loader = Callable[..., None]


@pytest.fixture
def load(postgres_dsn: str, pg_schema: str) -> Loader:
    """Routes the predictions under the policy, reviews the tasks and writes the recorders' rows."""

    def load_predictions(predictions: list[Prediction], policy: str, reviewers: Reviewers = truthful) -> None:
        rows = history_rows(predictions, policy, reviewers)
        with connect(postgres_dsn, pg_schema) as conn, conn.transaction():
            write_rows(conn, rows)

    return load_predictions


@pytest.fixture
def read(postgres_dsn: str, pg_schema: str) -> Callable[..., History]:
    def read_history(window: Window | None = None) -> History:
        with connect(postgres_dsn, pg_schema) as conn:
            return load_history(conn, window or Window())

    return read_history


def count_rows(connection: psycopg.Connection, table: str) -> int:
    row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
