"""Events as applications post them: JSON objects, with or without their id and time."""

from __future__ import annotations

import uuid
from typing import Any


def feedback_json(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "session_id": "session-9",
        "question": "What is the maximum file size for uploads?",
        "answer": "Uploads are limited to 2 GB per file on every plan.",
        "contexts": [{"doc_id": "kb-087", "text": "The upload limit is 500 MB per file.", "score": 0.87}],
        "rating": "down",
        "comment": "[outdated] the limit changed",
        "model": {"name": "support-assistant", "version": "2026-10"},
    }
    return {**document, **fields}


def prediction_json(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-11-02T09:00:00Z",
        "source": "comments-api",
        "task": "toxicity",
        "model": {"name": "toxicity-bert", "version": "2.3.1"},
        "item": {"id": "comment-1", "content_type": "text/plain", "text": "hello"},
        "scores": {"toxic": 0.6},
    }
    return {**document, **fields}
