"""From decisions, review tasks and resolutions to the rows the quality figures are computed from.

Pure: each function maps one event to its rows, so a replay yields the same rows. The tables are
in migration 0003_quality.sql; `QualityStore` (the recorders' sink) writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workers.contracts import (
    Decision,
    ExtractionOutcome,
    LabelOutcome,
    Prediction,
    RagOutcome,
    ReviewResolution,
    ReviewTask,
)

Row = dict[str, Any]


@dataclass(frozen=True)
class QualityRows:
    """What one event adds to the quality tables, by table name."""

    rows: dict[str, tuple[Row, ...]] = field(default_factory=dict)


def decision_rows(decision: Decision) -> QualityRows:
    source = decision.source
    return QualityRows(
        {
            "quality_decisions": (
                {
                    "event_id": decision.event_id,
                    "task": source.task,
                    "model_name": source.model.name,
                    "model_version": source.model.version,
                    "label": decision.label,
                    "outcome": decision.outcome.value,
                    "score": decision.score,
                    "band_low": decision.band.low,
                    "band_high": decision.band.high,
                    "band_source": decision.band_source,
                    "policy_version": decision.policy_version,
                    "scores": json.dumps(source.scores, sort_keys=True),
                    "ground_truth": source.ground_truth,
                    "occurred_at": source.occurred_at,
                    "decided_at": decision.decided_at,
                },
            )
        }
    )


def task_rows(task: ReviewTask) -> QualityRows:
    source = task.source
    prediction = source if isinstance(source, Prediction) else None
    return QualityRows(
        {
            "quality_review_tasks": (
                {
                    "task_id": task.task_id,
                    "kind": task.kind.value,
                    "reason": task.reason.value,
                    "priority": task.priority,
                    "task": prediction.task if prediction else None,
                    "model_name": source.model.name,
                    "model_version": source.model.version,
                    "suggested_label": task.suggestion.label,
                    "suggested_score": task.suggestion.score,
                    "scores": json.dumps(prediction.scores, sort_keys=True) if prediction else None,
                    "ground_truth": prediction.ground_truth if prediction else None,
                    "occurred_at": source.occurred_at,
                    "created_at": task.created_at,
                },
            )
        }
    )


def compared_outcome(resolution: ReviewResolution) -> str | None:
    """The outcome in the form the reviewers' answers are compared."""
    outcome = resolution.outcome
    if isinstance(outcome, LabelOutcome):
        return outcome.label
    if isinstance(outcome, RagOutcome):
        return outcome.verdict.value
    if isinstance(outcome, ExtractionOutcome):
        try:
            return json.dumps(json.loads(outcome.corrected_json), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return outcome.corrected_json
    return None


def resolution_rows(resolution: ReviewResolution) -> QualityRows:
    review = {
        "task_id": resolution.task_id,
        "kind": resolution.kind.value,
        "status": resolution.status.value,
        "answer": compared_outcome(resolution),
        "agreement": resolution.agreement,
        "reviewers": list(resolution.reviewers),
        "revision": resolution.revision,
        "first_resolved_at": resolution.resolved_at,
        "resolved_at": resolution.resolved_at,
    }
    answers = tuple(
        {
            "task_id": resolution.task_id,
            "revision": resolution.revision,
            "position": position,
            "reviewer": answer.reviewer,
            "answer": answer.answer,
        }
        for position, answer in enumerate(resolution.answers)
    )
    return QualityRows({"quality_reviews": (review,), "quality_review_answers": answers})
