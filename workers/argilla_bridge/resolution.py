"""From a record's responses to a ReviewResolution: pure, no I/O.

- Submitted: once at least `min_submitted` responses are submitted (Argilla then marks the record
  completed), the outcome is the majority answer among the submitted responses; `agreement` is
  the share of them that agree with it; `reviewers` are the submitters' Argilla user ids, oldest
  response first. Ties go to the answer given first.
- Discarded: when no response is submitted and at least `min_submitted` are discarded. Argilla
  counts only submitted responses towards completion, so a record everyone discarded never
  completes; the collector decides it here instead.
- An extraction correction that fails its schema is not an outcome: the responses carrying one
  are sent back (`SendBack`) with the error, and nothing is resolved until enough valid ones exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from workers.argilla_bridge import datasets as ds
from workers.argilla_bridge.records import ReviewResponse, canonical_json
from workers.contracts import (
    Extraction,
    ExtractionOutcome,
    LabelOutcome,
    RagFault,
    RagOutcome,
    RagVerdict,
    ResolutionStatus,
    ReviewResolution,
    ReviewTask,
    TaskKind,
)

SUBMITTED = "submitted"
DISCARDED = "discarded"

CorrectionCheck = Callable[[Extraction, str], str | None]
"""Checks a corrected JSON against the extraction's schema: None when valid, else the error."""


@dataclass(frozen=True)
class SendBack:
    """Responses whose corrections fail the schema, to return to their reviewers with the errors."""

    responses: tuple[ReviewResponse, ...]
    message: str


@dataclass(frozen=True)
class Unresolved:
    """Not enough answers yet."""


Decision = ReviewResolution | SendBack | Unresolved

K = TypeVar("K", bound=Hashable)


def resolve(
    task: ReviewTask,
    responses: Sequence[ReviewResponse],
    *,
    min_submitted: int,
    now: datetime,
    check_correction: CorrectionCheck,
) -> Decision:
    submitted = [response for response in responses if response.status == SUBMITTED]
    discarded = [response for response in responses if response.status == DISCARDED]
    if not submitted:
        if discarded and len(discarded) >= min_submitted:
            return _resolution(task, None, ResolutionStatus.DISCARDED, discarded, 1.0, now)
        return Unresolved()
    if task.kind is TaskKind.EXTRACTION:
        assert isinstance(task.source, Extraction)
        invalid = _invalid_corrections(task.source, submitted, check_correction)
        if invalid:
            return SendBack(tuple(response for response, _ in invalid), _send_back_message(invalid))
    if len(submitted) < min_submitted:
        return Unresolved()
    outcome, agreement = _majority_outcome(task.kind, submitted)
    return _resolution(task, outcome, ResolutionStatus.SUBMITTED, submitted, agreement, now)


def _resolution(
    task: ReviewTask,
    outcome: LabelOutcome | RagOutcome | ExtractionOutcome | None,
    status: ResolutionStatus,
    responses: Sequence[ReviewResponse],
    agreement: float,
    now: datetime,
) -> ReviewResolution:
    return ReviewResolution(
        task_id=task.task_id,
        kind=task.kind,
        outcome=outcome,
        status=status,
        reviewers=tuple(dict.fromkeys(response.user_id for response in responses)),
        agreement=round(agreement, 6),
        resolved_at=now,
        source=task.source,
    )


def _majority(keys: Sequence[K]) -> tuple[K, float]:
    """The most frequent key (the first given, on a tie) and its share of all keys."""
    counts = Counter(keys)
    best = max(counts.values())
    winner = next(key for key in keys if counts[key] == best)
    return winner, best / len(keys)


def _majority_outcome(
    kind: TaskKind, submitted: Sequence[ReviewResponse]
) -> tuple[LabelOutcome | RagOutcome | ExtractionOutcome, float]:
    if kind is TaskKind.MODERATION:
        label, agreement = _majority([str(r.value(ds.LABEL)) for r in submitted])
        return LabelOutcome(label=label), agreement
    if kind is TaskKind.RAG_ANSWER:
        return _rag_outcome(submitted)
    corrections = [(canonical_json(str(r.value(ds.CORRECTED_JSON))) or "", r) for r in submitted]
    winner, agreement = _majority([key for key, _ in corrections])
    # The text as its first author wrote it, rather than the canonical form used to compare.
    text = next(str(r.value(ds.CORRECTED_JSON)) for key, r in corrections if key == winner)
    return ExtractionOutcome(corrected_json=text), agreement


def _rag_outcome(submitted: Sequence[ReviewResponse]) -> tuple[RagOutcome, float]:
    verdict, agreement = _majority([str(r.value(ds.VERDICT)) for r in submitted])
    agreeing = [r for r in submitted if r.value(ds.VERDICT) == verdict]
    faults = [str(r.value(ds.FAULT)) for r in agreeing if r.value(ds.FAULT)]
    fault = _majority(faults)[0] if faults else None
    return RagOutcome(
        verdict=RagVerdict(verdict),
        fault=RagFault(fault) if fault else None,
        corrected_answer=_first_text(agreeing, ds.CORRECTED_ANSWER),
        note=_first_text(agreeing, ds.NOTE),
    ), agreement


def _first_text(responses: Sequence[ReviewResponse], question: str) -> str | None:
    for response in responses:
        value: Any = response.value(question)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _invalid_corrections(
    source: Extraction, submitted: Sequence[ReviewResponse], check: CorrectionCheck
) -> list[tuple[ReviewResponse, str]]:
    invalid = []
    for response in submitted:
        error = check(source, str(response.value(ds.CORRECTED_JSON) or ""))
        if error is not None:
            invalid.append((response, error))
    return invalid


def _send_back_message(invalid: Sequence[tuple[ReviewResponse, str]]) -> str:
    errors = "\n".join(f"- {error}" for _, error in invalid)
    return (
        "**Your last correction was not accepted**: it does not match the schema. "
        "Fix it and submit again.\n\n" + errors
    )
