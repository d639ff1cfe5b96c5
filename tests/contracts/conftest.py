import copy
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from workers.contracts import EventCodec, Feedback, Item, ModelInfo, Prediction, Rating

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


def load_avsc(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
    return schema


def older_prediction_schema() -> dict[str, Any]:
    """The prediction schema as it was before `trace_id`, `ground_truth` and `item.metadata`."""
    schema = copy.deepcopy(load_avsc("prediction"))
    schema["fields"] = [f for f in schema["fields"] if f["name"] not in ("trace_id", "ground_truth")]
    item = next(f for f in schema["fields"] if f["name"] == "item")["type"]
    item["fields"] = [f for f in item["fields"] if f["name"] != "metadata"]
    return schema


def schemas_with_history(tmp_path: Path, old_schema: dict[str, Any]) -> Path:
    for path in SCHEMAS_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    history = tmp_path / "history" / "prediction"
    history.mkdir(parents=True)
    (history / "v1.avsc").write_text(json.dumps(old_schema))
    return tmp_path


@pytest.fixture(scope="session")
def codec() -> EventCodec:
    return EventCodec()


@pytest.fixture
def prediction() -> Prediction:
    return Prediction(
        event_id=UUID("6f1c2b8e-4a7d-4a53-9d0e-1f2a3b4c5d6e"),
        occurred_at=datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        source="comments-api",
        task="moderation",
        model=ModelInfo(name="toxicity-bert", version="3.2.0"),
        item=Item(
            id="comment-991", content_type="text/plain", text="you are all wonderful", metadata={"lang": "en"}
        ),
        scores={"toxic": 0.61, "spam": 0.05},
        trace_id="trace-abc",
    )


@pytest.fixture
def feedback() -> Feedback:
    return Feedback(
        event_id=UUID("0b5e7f6a-2222-4c1d-8e3f-9a8b7c6d5e4f"),
        occurred_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
        session_id="session-7",
        question="What is the refund window?",
        answer="90 days.",
        rating=Rating.DOWN,
        comment="It is 30 days",
        model=ModelInfo(name="rag-llm", version="2025-02"),
    )
