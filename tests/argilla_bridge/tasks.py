"""Review tasks of each kind, as the routing workers make them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from workers.contracts import (
    Document,
    Extraction,
    Feedback,
    Item,
    ModelInfo,
    Prediction,
    Rating,
    RetrievedContext,
    ReviewReason,
    ReviewTask,
    Suggestion,
    TaskKind,
    ValidationIssue,
)

MODERATION_LABELS = ("ok", "toxic")


def moderation_task(index: int = 0, *, task: str = "comments", **item: Any) -> ReviewTask:
    scores = {"toxic": 0.62, "ok": 0.38}
    prediction = Prediction(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        source="comment-service",
        task=task,
        model=ModelInfo(name="toxicity-bert", version="2.3.1"),
        item=Item(
            **{
                "id": f"comment-{index}",
                "content_type": "text/plain",
                "text": f"comment number {index}: you are all idiots, no offence",
                **item,
            }
        ),
        scores=scores,
    )
    return ReviewTask(
        task_id=prediction.event_id,
        kind=TaskKind.MODERATION,
        reason=ReviewReason.GREY_BAND,
        priority=2,
        source=prediction,
        suggestion=Suggestion(label="toxic", score=0.62, agent="toxicity-bert@2.3.1"),
        created_at=datetime.now(UTC),
    )


def rag_task(index: int = 0) -> ReviewTask:
    feedback = Feedback(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        session_id=f"session-{index}",
        question="How do I reset my password?",
        answer="Call the support line; passwords cannot be reset online.",
        contexts=(
            RetrievedContext(
                doc_id="kb-12", text="To reset a password, open Settings > Security.", score=0.91
            ),
            RetrievedContext(doc_id="kb-40", text="Passwords expire every 90 days.", score=0.42),
        ),
        rating=Rating.DOWN,
        comment="That is wrong, there is a reset button",
        user_id="user-1",
        model=ModelInfo(name="support-rag", version="2.1.0"),
    )
    return ReviewTask(
        task_id=feedback.event_id,
        kind=TaskKind.RAG_ANSWER,
        reason=ReviewReason.NEGATIVE_FEEDBACK,
        priority=5,
        source=feedback,
        suggestion=Suggestion(agent="support-rag@2.1.0"),
        created_at=datetime.now(UTC),
    )


LLM_OUTPUT = '{"tracking_number": "JD0145", "weight_kg": "heavy"}'


def extraction_task(index: int = 0, *, schema_name: str = "parcel_label") -> ReviewTask:
    extraction = Extraction(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        document=Document(id=f"doc-{index}", text="Parcel JD0145, weight 2.5 kg, to Hamburg."),
        schema_name=schema_name,
        schema_version="1",
        raw_output=LLM_OUTPUT,
        model=ModelInfo(name="extractor-llm", version="0.9"),
    )
    return ReviewTask(
        task_id=extraction.event_id,
        kind=TaskKind.EXTRACTION,
        reason=ReviewReason.SCHEMA_INVALID,
        priority=3,
        source=extraction,
        suggestion=Suggestion(
            corrected_json=json.dumps(json.loads(LLM_OUTPUT)),
            validation_errors=(ValidationIssue(path="weight_kg", message="Input should be a valid number"),),
            agent="extractor-llm@0.9",
        ),
        created_at=datetime.now(UTC),
    )
