"""A review task as a Label Studio task, and back: its data, its marks, its annotators' answers.

- `data` holds what annotators see (`projects` names the keys) and the task id, by which a
  replay finds the task it already published.
- `meta`, which annotators never see, holds the task as JSON (from which the collector rebuilds
  the resolution's source event), its review state and the collector's marks.
- The model's output is a prediction, shown as the pre-annotation: the label or verdict it chose
  with its score, or the extraction's output in the answer box.
- Annotations are answers: a skipped one (`was_cancelled`) is discarded. Label Studio lets one
  user annotate a task twice; only the latest annotation of each user is counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workers.contracts import Extraction, Feedback, Prediction, ReviewTask, to_json
from workers.review.answers import CORRECTED_JSON, LABEL, VERDICT
from workers.review.backend import DISCARDED, SUBMITTED, Answer
from workers.review.grouping import is_image
from workers.review.label_studio import projects as ps

TASK_JSON = "hitl_task"
REVIEW_STATE = "hitl_review_state"
EMITTED_MARK = "hitl_emitted"
FAILED_MARK = "hitl_failed"
AWAITING = "awaiting"
EMITTED = "emitted"

LabelStudioTask = dict[str, Any]


def task_for(task: ReviewTask) -> LabelStudioTask:
    source = task.source
    prediction: dict[str, Any] | None
    if isinstance(source, Prediction):
        data, prediction = _moderation(task, source)
    elif isinstance(source, Feedback):
        data, prediction = _rag(task, source)
    else:
        data, prediction = _extraction(task, source)
    data = {ps.TASK_ID: str(task.task_id), **data, ps.REVIEW_FEEDBACK: ""}
    return {
        "data": data,
        "meta": {TASK_JSON: to_json(task).decode(), REVIEW_STATE: AWAITING},
        "predictions": [prediction] if prediction else [],
    }


def replay_update(fresh: LabelStudioTask, stored: dict[str, Any]) -> dict[str, Any] | None:
    """The fields to update on `stored` for a task published again as `fresh`; None: nothing.

    Finished work is never reopened, and the collector's feedback and marks are kept."""
    meta = dict(stored.get("meta") or {})
    if meta.get(REVIEW_STATE) == EMITTED or meta.get(TASK_JSON) == fresh["meta"][TASK_JSON]:
        return None
    data = {**fresh["data"], ps.REVIEW_FEEDBACK: (stored.get("data") or {}).get(ps.REVIEW_FEEDBACK, "")}
    return {"data": data, "meta": {**meta, TASK_JSON: fresh["meta"][TASK_JSON]}}


def _details(task: ReviewTask, model: str, extra: str = "") -> str:
    return f"model {model} · {task.reason.value} · priority {task.priority}{extra}"


def _model_version(task: ReviewTask, source: Prediction | Feedback | Extraction) -> str:
    return task.suggestion.agent or f"{source.model.name}@{source.model.version}"


def _moderation(task: ReviewTask, source: Prediction) -> tuple[dict[str, Any], dict[str, Any]]:
    top_label, top_score = max(source.scores.items(), key=lambda item: item[1])
    label = task.suggestion.label if task.suggestion.label in source.scores else top_label
    score = task.suggestion.score if task.suggestion.score is not None else source.scores[label]
    image = is_image(source)
    text = source.item.text
    if text is None and not image:
        # Not an image Label Studio can show and no text: the annotator gets the pointer to the content.
        text = f"({source.item.content_type}) {source.item.uri or source.item.id}"
    data: dict[str, Any] = {ps.TEXT: text or ""}
    if image:
        data[ps.IMAGE] = source.item.uri
    model = f"{source.model.name}@{source.model.version}"
    data[ps.DETAILS] = _details(task, model, f" · confidence {top_score:.3f}")
    to_name = ps.IMAGE if image else ps.TEXT
    prediction = {
        "model_version": _model_version(task, source),
        "score": score,
        "result": [
            {"from_name": LABEL, "to_name": to_name, "type": "choices", "value": {"choices": [label]}}
        ],
    }
    return data, prediction


def _rag(task: ReviewTask, source: Feedback) -> tuple[dict[str, Any], dict[str, Any] | None]:
    contexts = "\n\n---\n\n".join(
        f"[{number}] {context.doc_id} (score {context.score:.3f})\n\n{context.text}"
        for number, context in enumerate(source.contexts, start=1)
    )
    answer = source.answer
    if source.comment:
        answer += f"\n\nUser's comment ({source.rating.value}): {source.comment}"
    model = f"{source.model.name}@{source.model.version}"
    data = {
        ps.QUESTION: source.question,
        ps.ANSWER: answer,
        ps.CONTEXTS: contexts,
        ps.DETAILS: _details(task, model, f" · rating {source.rating.value}"),
    }
    if task.suggestion.label is None:
        return data, None
    prediction = {
        "model_version": _model_version(task, source),
        "score": task.suggestion.score,
        "result": [
            {
                "from_name": VERDICT,
                "to_name": ps.ANSWER,
                "type": "choices",
                "value": {"choices": [task.suggestion.label]},
            }
        ],
    }
    return data, prediction


def _extraction(task: ReviewTask, source: Extraction) -> tuple[dict[str, Any], dict[str, Any]]:
    errors = "\n".join(
        f"- {issue.path or '(root)'}: {issue.message}" for issue in task.suggestion.validation_errors
    )
    model = f"{source.model.name}@{source.model.version}"
    data = {
        ps.SOURCE_TEXT: source.document.text,
        ps.VALIDATION_ERRORS: errors,
        ps.DETAILS: _details(task, model, f" · schema {source.schema_name} {source.schema_version}"),
    }
    prefill = task.suggestion.corrected_json or source.raw_output
    prediction = {
        "model_version": _model_version(task, source),
        "result": [
            {
                "from_name": CORRECTED_JSON,
                "to_name": ps.SOURCE_TEXT,
                "type": "textarea",
                "value": {"text": [prefill]},
            }
        ],
    }
    return data, prediction


def answers_of(stored: dict[str, Any]) -> list[Answer]:
    """The task's counted annotations as answers, oldest first: the latest of each annotator."""
    latest: dict[str, Answer] = {}
    for annotation in stored.get("annotations") or []:
        answer = _answer(annotation)
        known = latest.get(answer.reviewer)
        if known is None or (answer.at, int(answer.answer_id)) > (known.at, int(known.answer_id)):
            latest[answer.reviewer] = answer
    return sorted(latest.values(), key=lambda answer: (answer.at, int(answer.answer_id)))


def _answer(annotation: dict[str, Any]) -> Answer:
    completed_by = annotation.get("completed_by")
    reviewer = completed_by.get("id") if isinstance(completed_by, dict) else completed_by
    cancelled = bool(annotation.get("was_cancelled"))
    result = annotation.get("result") or []
    return Answer(
        answer_id=str(int(annotation["id"])),
        reviewer=str(reviewer),
        status=DISCARDED if cancelled else SUBMITTED,
        values={} if cancelled else _values(result),
        at=_utc(datetime.fromisoformat(str(annotation.get("updated_at") or annotation["created_at"]))),
        raw=result,
    )


def _values(result: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer to each question: a choice, or the text of a text area."""
    values: dict[str, Any] = {}
    for region in result:
        value = region.get("value") or {}
        if "choices" in value:
            choices = value["choices"]
            values[str(region["from_name"])] = choices[0] if choices else None
        elif "text" in value:
            texts = value["text"]
            values[str(region["from_name"])] = "\n".join(texts) if isinstance(texts, list) else texts
    return values


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
