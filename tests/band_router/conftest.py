from __future__ import annotations

import random
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from workers.band_router.policy import Policy, parse_policy
from workers.contracts import Item, ModelInfo, Prediction

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def policy_of(text: str) -> Policy:
    return parse_policy(text.encode(), "test-policy")


def make_prediction(
    scores: dict[str, float],
    *,
    task: str = "moderation",
    model: str = "toxicity-bert",
    version: str = "2.3.1",
    event_id: uuid.UUID | None = None,
) -> Prediction:
    return Prediction(
        event_id=event_id or uuid.uuid4(),
        occurred_at=datetime(2026, 3, 1, 11, 59, 30, 123456, tzinfo=UTC),
        source="comment-service",
        task=task,
        model=ModelInfo(name=model, version=version),
        item=Item(id="comment-1", content_type="text/plain", text="you are all wonderful people"),
        scores=scores,
    )


def seeded_ids(count: int, seed: int) -> list[uuid.UUID]:
    """Random version-4 UUIDs, the same on every run."""
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]


@pytest.fixture
def restore_sighup() -> Iterator[None]:
    """Gives back the SIGHUP handler a test (or the worker factory it calls) replaced."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)
