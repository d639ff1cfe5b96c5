"""A review task as an Argilla record, and back: the record's task and its reviewers' responses.

The record's external id is the task id. The task itself travels in the record's metadata as
JSON (Argilla stores extra metadata as is, unindexed, with no size limit of its own), so the
collector rebuilds the resolution's source event from the record alone.

A replay never reopens finished work. The collector owns two things on a record: its
`review_state` (metadata) and the `review_feedback` field shown to the reviewer. A task whose
record exists is therefore never logged again whole (Argilla would replace the record's fields and
metadata, each as a whole): `replay_item` leaves a record alone when it already holds the same
task or its resolution was emitted, and otherwise (a task id published again with other content,
the record still awaiting) updates what the publisher owns and carries the collector's values over.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from workers.contracts import (
    Extraction,
    Feedback,
    Prediction,
    ReviewTask,
    decode,
    to_json,
)
from workers.errors import RejectedEvent
from workers.reasons import Reason
from workers.review.answers import CORRECTED_JSON, LABEL, VERDICT
from workers.review.argilla import layout as ds
from workers.review.backend import Answer

RecordItem = dict[str, Any]
"""A record as Argilla's bulk upsert takes it; suggestions name their question (`question_name`)."""

UNREADABLE_RECORD = Reason.UNREADABLE_RECORD

_AGENT_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_:./\s]")


def record_for(task: ReviewTask, spec: ds.DatasetSpec) -> RecordItem:
    source = task.source
    if isinstance(source, Prediction):
        fields, metadata, suggestions = _moderation(task, source, spec.image)
    elif isinstance(source, Feedback):
        fields, metadata, suggestions = _rag(task, source)
    else:
        fields, metadata, suggestions = _extraction(task, source)
    metadata |= {
        ds.MODEL: source.model.name,
        ds.MODEL_VERSION: source.model.version,
        ds.REASON: task.reason.value,
        ds.PRIORITY: task.priority,
        ds.REVIEW_STATE: ds.AWAITING,
        ds.TASK_JSON: to_json(task).decode(),
    }
    return {
        "external_id": str(task.task_id),
        "fields": {name: value for name, value in fields.items() if value is not None},
        "metadata": metadata,
        "suggestions": suggestions,
    }


def replay_item(item: RecordItem, stored: dict[str, Any]) -> RecordItem | None:
    """What to log for `item` (from `record_for`) when its record exists as `stored`; None: nothing."""
    stored_metadata: dict[str, Any] = dict(stored.get("metadata") or {})
    if stored_metadata.get(ds.REVIEW_STATE) == ds.EMITTED:
        return None
    if stored_metadata.get(ds.TASK_JSON) == item["metadata"][ds.TASK_JSON]:
        return None
    metadata = {**stored_metadata, **item["metadata"]}
    metadata[ds.REVIEW_STATE] = stored_metadata.get(ds.REVIEW_STATE, ds.AWAITING)
    fields = dict(item["fields"])
    feedback = (stored.get("fields") or {}).get(ds.REVIEW_FEEDBACK)
    if feedback is not None:
        fields[ds.REVIEW_FEEDBACK] = feedback
    return {**item, "fields": fields, "metadata": metadata}


def _agent(task: ReviewTask, fallback: str) -> str:
    """The suggestion's agent as Argilla accepts it: `@` and other signs it refuses become `:`."""
    return _AGENT_UNSAFE.sub(":", task.suggestion.agent or fallback)


def _moderation(
    task: ReviewTask, source: Prediction, image: bool
) -> tuple[dict[str, str | None], dict[str, Any], list[dict[str, Any]]]:
    top_label, top_score = max(source.scores.items(), key=lambda item: item[1])
    label = task.suggestion.label if task.suggestion.label in source.scores else top_label
    score = task.suggestion.score if task.suggestion.score is not None else source.scores[label]
    fields: dict[str, str | None] = {ds.TEXT: source.item.text}
    if image:
        fields[ds.IMAGE] = source.item.uri
    elif source.item.text is None:
        # Not an image Argilla can show and no text: the reviewer gets the pointer to the content.
        fields[ds.TEXT] = f"({source.item.content_type}) {source.item.uri or source.item.id}"
    suggestion = {
        "question_name": LABEL,
        "value": label,
        "score": score,
        "agent": _agent(task, f"{source.model.name}@{source.model.version}"),
        "type": "model",
    }
    return fields, {ds.CONFIDENCE: top_score}, [suggestion]


def _rag(
    task: ReviewTask, source: Feedback
) -> tuple[dict[str, str | None], dict[str, Any], list[dict[str, Any]]]:
    contexts = "\n\n---\n\n".join(
        f"**[{number}] {context.doc_id}** (score {context.score:.3f})\n\n{context.text}"
        for number, context in enumerate(source.contexts, start=1)
    )
    answer = source.answer
    if source.comment:
        answer += f"\n\n> **User's comment ({source.rating.value}):** {source.comment}"
    fields: dict[str, str | None] = {
        ds.QUESTION: source.question,
        ds.ANSWER: answer,
        ds.CONTEXTS: contexts or None,
    }
    suggestions: list[dict[str, Any]] = []
    if task.suggestion.label is not None:
        suggestions.append(
            {
                "question_name": VERDICT,
                "value": task.suggestion.label,
                "score": task.suggestion.score,
                "agent": _agent(task, f"{source.model.name}@{source.model.version}"),
                "type": "model",
            }
        )
    return fields, {ds.RATING: source.rating.value}, suggestions


def _extraction(
    task: ReviewTask, source: Extraction
) -> tuple[dict[str, str | None], dict[str, Any], list[dict[str, Any]]]:
    issues = task.suggestion.validation_errors
    errors = "\n".join(f"- `{issue.path or '(root)'}`: {issue.message}" for issue in issues)
    fields: dict[str, str | None] = {
        ds.SOURCE_TEXT: source.document.text,
        ds.VALIDATION_ERRORS: errors or None,
    }
    prefill = task.suggestion.corrected_json or source.raw_output
    suggestion = {
        "question_name": CORRECTED_JSON,
        "value": prefill,
        "agent": _agent(task, f"{source.model.name}@{source.model.version}"),
        "type": "model",
    }
    return fields, {ds.SCHEMA_VERSION: source.schema_version}, [suggestion]


def answers_of(record: dict[str, Any]) -> list[Answer]:
    """The record's responses as answers, oldest first; Argilla's values ({question: {"value": v}})
    become plain ones, and stay as they are in `raw` for sending them back."""
    answers = [
        Answer(
            answer_id=str(response["id"]),
            reviewer=str(response["user_id"]),
            status=str(response["status"]),
            values={
                question: answer.get("value") if isinstance(answer, dict) else None
                for question, answer in (response.get("values") or {}).items()
            },
            at=_utc(datetime.fromisoformat(str(response.get("updated_at") or response["inserted_at"]))),
            raw=dict(response.get("values") or {}),
        )
        for response in record.get("responses") or []
    ]
    return sorted(answers, key=lambda answer: (answer.at, answer.answer_id))


def _utc(at: datetime) -> datetime:
    # Argilla writes its timestamps without an offset; they are UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def task_of(record: dict[str, Any]) -> ReviewTask:
    """The task the record was published from; raises RejectedEvent when the record does not carry it."""
    metadata = record.get("metadata") or {}
    text = metadata.get(ds.TASK_JSON)
    if not isinstance(text, str):
        raise RejectedEvent(UNREADABLE_RECORD, f"record {record.get('id')} has no {ds.TASK_JSON} metadata")
    try:
        return decode(text.encode(), [("content-type", b"application/json")], ReviewTask)
    except Exception as error:
        raise RejectedEvent(UNREADABLE_RECORD, f"record {record.get('id')}: {error}") from error


def is_emitted(record: dict[str, Any]) -> bool:
    return (record.get("metadata") or {}).get(ds.REVIEW_STATE) == ds.EMITTED
