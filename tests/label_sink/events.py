"""Resolved reviews and automatic decisions for the label-sink tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.contracts import (
    Band,
    Decision,
    DecisionOutcome,
    Document,
    Extraction,
    ExtractionOutcome,
    Feedback,
    Item,
    LabelOutcome,
    ModelInfo,
    Prediction,
    RagFault,
    RagOutcome,
    RagVerdict,
    Rating,
    ResolutionStatus,
    RetrievedContext,
    ReviewResolution,
    TaskKind,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def prediction(index: int = 0, **fields: Any) -> Prediction:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": T0,
        "source": "comment-service",
        "task": "moderation",
        "model": ModelInfo(name="toxicity-bert", version="2.3.1"),
        "item": Item(
            id=f"comment-{index}",
            content_type="text/plain",
            text=f"comment number {index}: you are all wonderful people",
            metadata={"lang": "en"},
        ),
        "scores": {"toxic": 0.61, "ok": 0.39},
    }
    values.update(fields)
    return Prediction(**values)


def feedback(index: int = 0, **fields: Any) -> Feedback:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": T0,
        "session_id": f"session-{index}",
        "question": f"How do I reset my password? ({index})",
        "answer": "Open Settings, then Privacy.",
        "contexts": (
            RetrievedContext(
                doc_id="kb-12", text="To reset a password, open Settings > Security.", score=0.91
            ),
            RetrievedContext(doc_id="kb-40", text="Passwords expire every 90 days.", score=0.42),
        ),
        "rating": Rating.DOWN,
        "comment": "wrong menu",
        "user_id": "user-1",
        "model": ModelInfo(name="support-rag", version="2.1.0"),
        "prompt_version": "p-7",
    }
    values.update(fields)
    return Feedback(**values)


def extraction(index: int = 0, **fields: Any) -> Extraction:
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": T0,
        "document": Document(
            id=f"invoice-{index}", text=f"Invoice {index}: total 120.50 EUR, due 2026-04-01"
        ),
        "schema_name": "invoice",
        "schema_version": "1",
        "raw_output": '{"total": "120.50 EUR", "due": 2026-04-01',
        "model": ModelInfo(name="extractor-llm", version="7b-q4"),
    }
    values.update(fields)
    return Extraction(**values)


def resolution(
    source: Prediction | Feedback | Extraction, outcome: Any = None, **fields: Any
) -> ReviewResolution:
    kind = {Prediction: TaskKind.MODERATION, Feedback: TaskKind.RAG_ANSWER, Extraction: TaskKind.EXTRACTION}[
        type(source)
    ]
    if outcome is None:
        outcome = {
            TaskKind.MODERATION: LabelOutcome(label="toxic"),
            TaskKind.RAG_ANSWER: RagOutcome(
                verdict=RagVerdict.INCORRECT,
                fault=RagFault.GENERATION,
                corrected_answer="Open Settings, then Security, then choose Reset password.",
                note="the context had it",
            ),
            TaskKind.EXTRACTION: ExtractionOutcome(
                corrected_json='{"total": 120.5, "currency": "EUR", "due": "2026-04-01"}'
            ),
        }[kind]
    values: dict[str, Any] = {
        "task_id": source.event_id,
        "kind": kind,
        "outcome": outcome,
        "status": ResolutionStatus.SUBMITTED,
        "reviewers": ("ann", "bob"),
        "agreement": 1.0,
        "resolved_at": T0 + timedelta(hours=1),
        "source": source,
    }
    values.update(fields)
    if values["status"] is ResolutionStatus.DISCARDED:
        values["outcome"] = None
    return ReviewResolution(**values)


def decision(source: Prediction | None = None, **fields: Any) -> Decision:
    source = source or prediction(scores={"toxic": 0.93, "ok": 0.07})
    values: dict[str, Any] = {
        "event_id": source.event_id,
        "label": "toxic",
        "outcome": DecisionOutcome.AUTO_ACCEPTED,
        "score": 0.93,
        "band": Band(low=0.4, high=0.8),
        "band_source": "task:moderation",
        "policy_version": "v1",
        "decided_at": T0 + timedelta(minutes=1),
        "source": source,
    }
    values.update(fields)
    return Decision(**values)


def mixed_resolutions(count: int) -> list[ReviewResolution]:
    """Every kind, with a discard every tenth."""
    events: list[ReviewResolution] = []
    for index in range(count):
        source: Prediction | Feedback | Extraction = (prediction, feedback, extraction)[index % 3](index)
        status = ResolutionStatus.DISCARDED if index % 10 == 9 else ResolutionStatus.SUBMITTED
        events.append(resolution(source, status=status, resolved_at=T0 + timedelta(seconds=index)))
    return events
