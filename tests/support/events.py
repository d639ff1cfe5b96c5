"""Realistic events for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from workers.contracts import Item, ModelInfo, Prediction


def prediction(
    index: int = 0, *, scores: dict[str, float] | None = None, task: str = "moderation"
) -> Prediction:
    return Prediction(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        source="comment-service",
        task=task,
        model=ModelInfo(name="toxicity-bert", version="2.3.1"),
        item=Item(
            id=f"comment-{index}",
            content_type="text/plain",
            text=f"comment number {index}: you are all wonderful people",
            metadata={"lang": "en"},
        ),
        scores=scores or {"toxic": 0.61, "ok": 0.39},
    )
