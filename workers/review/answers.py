"""From a task's answers to a ReviewResolution, whatever the review tool: pure, no I/O.

The questions every backend asks, by kind (their names are the keys of `Answer.values`):
moderation `label`; rag_answer `verdict`, `fault`, `corrected_answer`, `note`; extraction
`corrected_json`.

- Submitted: once at least `min_submitted` answers are submitted, the outcome is the majority
  answer among them; `agreement` is the share of them that agree with it; `reviewers` are the
  submitters' ids in the tool, oldest answer first. Ties go to the answer given first.
- Discarded: when no answer is submitted and at least `min_submitted` are discarded (a tool that
  counts only submitted answers towards completion never completes such an item; this does).
- An extraction correction that fails its schema, or an answer holding text the training store
  cannot keep (a NUL character, a lone surrogate), is not an outcome: the answers carrying one
  are sent back (`SendBack`) with the error, and nothing is resolved until enough valid ones exist.
- `resolved_at` is the time of the latest counted response (submitted or discarded), never the
  clock: resolving the same answers again gives the same resolution, byte for byte. `revision` is
  given by the caller (1, then one more for each edit of the answers after an emission).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from workers.contracts import (
    Extraction,
    ExtractionOutcome,
    LabelOutcome,
    RagFault,
    RagOutcome,
    RagVerdict,
    ResolutionStatus,
    ReviewerAnswer,
    ReviewResolution,
    ReviewTask,
    TaskKind,
)
from workers.review.backend import DISCARDED, SUBMITTED, Answer

# The questions
LABEL = "label"
VERDICT = "verdict"
FAULT = "fault"
CORRECTED_ANSWER = "corrected_answer"
NOTE = "note"
CORRECTED_JSON = "corrected_json"

CorrectionCheck = Callable[[Extraction, str], str | None]
"""Checks a corrected JSON against the extraction's schema: None when valid, else the error."""


@dataclass(frozen=True)
class SendBack:
    """Answers whose corrections fail the schema, to return to their reviewers with the errors."""

    answers: tuple[Answer, ...]
    message: str


@dataclass(frozen=True)
class Unresolved:
    """Not enough answers yet."""


Ruling = ReviewResolution | SendBack | Unresolved
"""What a task's answers come to: a resolution, answers to send back, or not enough yet."""

K = TypeVar("K", bound=Hashable)


def resolve(
    task: ReviewTask,
    answers: Sequence[Answer],
    *,
    min_submitted: int,
    check_correction: CorrectionCheck,
    revision: int = 1,
) -> Ruling:
    submitted = [response for response in answers if response.status == SUBMITTED]
    discarded = [response for response in answers if response.status == DISCARDED]
    resolved_at = _latest(submitted + discarded)
    if not submitted:
        if discarded and len(discarded) >= min_submitted:
            return _resolution(task, None, ResolutionStatus.DISCARDED, discarded, 1.0, resolved_at, revision)
        return Unresolved()
    refused = _unstorable_texts(submitted)
    if task.kind is TaskKind.EXTRACTION:
        assert isinstance(task.source, Extraction)
        already = {response.answer_id for response, _ in refused}
        checked = [response for response in submitted if response.answer_id not in already]
        refused += _invalid_corrections(task.source, checked, check_correction)
    if refused:
        offending = {response.answer_id for response, _ in refused}
        answers_back = tuple(response for response in submitted if response.answer_id in offending)
        return SendBack(answers_back, _send_back_message(refused))
    if len(submitted) < min_submitted:
        return Unresolved()
    outcome, agreement = _majority_outcome(task.kind, submitted)
    return _resolution(task, outcome, ResolutionStatus.SUBMITTED, submitted, agreement, resolved_at, revision)


def answers_fingerprint(answers: Sequence[Answer]) -> str:
    """A digest of the counted (submitted or discarded) answers: it changes with any edit of them."""
    counted = sorted(
        (
            [r.answer_id, r.reviewer, r.status, r.values, _utc(r.at).isoformat()]
            for r in answers
            if r.status in (SUBMITTED, DISCARDED)
        ),
        key=lambda item: str(item[0]),
    )
    text = json.dumps(counted, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def unstorable_text_problem(text: str) -> str | None:
    """Why PostgreSQL's text and jsonb columns would refuse the text, or None when they take it."""
    if "\x00" in text:
        return "it contains a NUL character (\\u0000), which cannot be stored"
    if any("\ud800" <= character <= "\udfff" for character in text):
        return "it contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"
    return None


def _utc(at: datetime) -> datetime:
    # A time given without an offset is UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _latest(answers: Sequence[Answer]) -> datetime:
    return max(_utc(response.at) for response in answers) if answers else datetime.min.replace(tzinfo=UTC)


def _resolution(
    task: ReviewTask,
    outcome: LabelOutcome | RagOutcome | ExtractionOutcome | None,
    status: ResolutionStatus,
    answers: Sequence[Answer],
    agreement: float,
    resolved_at: datetime,
    revision: int,
) -> ReviewResolution:
    return ReviewResolution(
        task_id=task.task_id,
        kind=task.kind,
        outcome=outcome,
        status=status,
        reviewers=tuple(dict.fromkeys(response.reviewer for response in answers)),
        agreement=round(agreement, 6),
        resolved_at=resolved_at,
        source=task.source,
        revision=revision,
        answers=tuple(
            ReviewerAnswer(reviewer=r.reviewer, answer=compared_answer(task.kind, r)) for r in answers
        ),
    )


def compared_answer(kind: TaskKind, response: Answer) -> str | None:
    """The reviewer's answer in the form the majority compares; None for a discarded response."""
    if response.status != SUBMITTED:
        return None
    if kind is TaskKind.MODERATION:
        return str(response.value(LABEL))
    if kind is TaskKind.RAG_ANSWER:
        return str(response.value(VERDICT))
    return canonical_json(str(response.value(CORRECTED_JSON))) or ""


def _majority(keys: Sequence[K]) -> tuple[K, float]:
    """The most frequent key (the first given, on a tie) and its share of all keys."""
    counts = Counter(keys)
    best = max(counts.values())
    winner = next(key for key in keys if counts[key] == best)
    return winner, best / len(keys)


def _majority_outcome(
    kind: TaskKind, submitted: Sequence[Answer]
) -> tuple[LabelOutcome | RagOutcome | ExtractionOutcome, float]:
    if kind is TaskKind.MODERATION:
        label, agreement = _majority([str(r.value(LABEL)) for r in submitted])
        return LabelOutcome(label=label), agreement
    if kind is TaskKind.RAG_ANSWER:
        return _rag_outcome(submitted)
    corrections = [(canonical_json(str(r.value(CORRECTED_JSON))) or "", r) for r in submitted]
    winner, agreement = _majority([key for key, _ in corrections])
    # The text as its first author wrote it, rather than the canonical form used to compare.
    text = next(str(r.value(CORRECTED_JSON)) for key, r in corrections if key == winner)
    return ExtractionOutcome(corrected_json=text), agreement


def _rag_outcome(submitted: Sequence[Answer]) -> tuple[RagOutcome, float]:
    verdict, agreement = _majority([str(r.value(VERDICT)) for r in submitted])
    agreeing = [r for r in submitted if r.value(VERDICT) == verdict]
    faults = [str(r.value(FAULT)) for r in agreeing if r.value(FAULT)]
    fault = _majority(faults)[0] if faults else None
    return RagOutcome(
        verdict=RagVerdict(verdict),
        fault=RagFault(fault) if fault else None,
        corrected_answer=_first_text(agreeing, CORRECTED_ANSWER),
        note=_first_text(agreeing, NOTE),
    ), agreement


def _first_text(answers: Sequence[Answer], question: str) -> str | None:
    for response in answers:
        value: Any = response.value(question)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _invalid_corrections(
    source: Extraction, submitted: Sequence[Answer], check: CorrectionCheck
) -> list[tuple[Answer, str]]:
    invalid = []
    for response in submitted:
        error = check(source, str(response.value(CORRECTED_JSON) or ""))
        if error is not None:
            invalid.append((response, error))
    return invalid


def _unstorable_texts(submitted: Sequence[Answer]) -> list[tuple[Answer, str]]:
    refused = []
    for response in submitted:
        for question in sorted(response.values):
            value = response.value(question)
            problem = unstorable_text_problem(value) if isinstance(value, str) else None
            if problem is not None:
                refused.append((response, f"`{question}`: {problem}"))
    return refused


def _send_back_message(invalid: Sequence[tuple[Answer, str]]) -> str:
    errors = "\n".join(f"- {error}" for _, error in invalid)
    return (
        "**Your last answer was not accepted**: it does not match the schema or holds what cannot "
        "be stored. Fix it and submit again.\n\n" + errors
    )


def canonical_json(text: str) -> str | None:
    """The JSON text in one canonical form (sorted keys, no spaces), or None when it is not JSON."""
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None
