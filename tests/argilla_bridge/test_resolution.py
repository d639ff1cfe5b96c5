"""The pure part: responses → resolution, without Argilla."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.argilla_bridge.schemas import ParcelLabel
from tests.argilla_bridge.tasks import extraction_task, moderation_task, rag_task
from workers.contracts import (
    ExtractionOutcome,
    LabelOutcome,
    RagFault,
    RagOutcome,
    RagVerdict,
    ResolutionStatus,
    ReviewResolution,
    ReviewTask,
    encode,
)
from workers.extraction_validator.registry import ExtractionSchema, ExtractionSchemas
from workers.review.answers import SendBack, Unresolved, answers_fingerprint, resolve
from workers.review.backend import Answer
from workers.review.corrections import correction_check

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
CHECK = correction_check(ExtractionSchemas([ExtractionSchema("parcel_label", "1", ParcelLabel)]))


def _response(n: int, status: str = "submitted", **values: Any) -> Answer:
    return Answer(
        answer_id=f"r{n}",
        reviewer=f"user-{n}",
        status=status,
        values=values,
        at=T0 + timedelta(minutes=n),
    )


def _resolve(task: ReviewTask, *responses: Answer, min_submitted: int = 1) -> object:
    return resolve(task, responses, min_submitted=min_submitted, check_correction=CHECK)


def test_majority_label_with_the_share_agreeing() -> None:
    task = moderation_task()
    resolution = _resolve(
        task, _response(1, label="ok"), _response(2, label="toxic"), _response(3, label="ok"), min_submitted=3
    )
    assert isinstance(resolution, ReviewResolution)
    assert resolution.outcome == LabelOutcome(label="ok")
    assert resolution.agreement == round(2 / 3, 6)
    assert resolution.reviewers == ("user-1", "user-2", "user-3")
    assert resolution.source == task.source


def test_a_tie_goes_to_the_first_answer() -> None:
    resolution = _resolve(
        moderation_task(), _response(2, label="toxic"), _response(1, label="ok"), min_submitted=2
    )
    assert isinstance(resolution, ReviewResolution)
    assert resolution.outcome == LabelOutcome(label="toxic")
    assert resolution.agreement == 0.5


def test_too_few_submitted_responses_resolve_nothing() -> None:
    assert isinstance(_resolve(moderation_task(), _response(1, label="ok"), min_submitted=2), Unresolved)
    assert isinstance(_resolve(moderation_task(), _response(1, "draft", label="ok")), Unresolved)


def test_discarded_by_all_is_a_discarded_resolution() -> None:
    resolution = _resolve(
        moderation_task(), _response(1, "discarded"), _response(2, "discarded"), min_submitted=2
    )
    assert isinstance(resolution, ReviewResolution)
    assert resolution.status is ResolutionStatus.DISCARDED
    assert resolution.outcome is None
    assert resolution.reviewers == ("user-1", "user-2")
    assert isinstance(_resolve(moderation_task(), _response(1, "discarded"), min_submitted=2), Unresolved)


def test_discarded_responses_do_not_count_against_submitted_ones() -> None:
    resolution = _resolve(moderation_task(), _response(1, "discarded"), _response(2, label="ok"))
    assert isinstance(resolution, ReviewResolution)
    assert resolution.status is ResolutionStatus.SUBMITTED
    assert resolution.reviewers == ("user-2",)
    assert resolution.agreement == 1.0


def test_rag_verdict_by_majority_with_fault_and_texts_from_those_agreeing() -> None:
    resolution = _resolve(
        rag_task(),
        _response(1, verdict="correct"),
        _response(2, verdict="incorrect", fault="retrieval", note="  "),
        _response(
            3, verdict="incorrect", fault="retrieval", corrected_answer="Use the reset button.", note="n"
        ),
        min_submitted=3,
    )
    assert isinstance(resolution, ReviewResolution)
    assert resolution.outcome == RagOutcome(
        verdict=RagVerdict.INCORRECT,
        fault=RagFault.RETRIEVAL,
        corrected_answer="Use the reset button.",
        note="n",
    )


def test_extraction_corrections_agree_whatever_their_formatting() -> None:
    resolution = _resolve(
        extraction_task(),
        _response(1, corrected_json='{"weight_kg": 2.5, "tracking_number": "JD0145"}'),
        _response(2, corrected_json='{"tracking_number":"JD0145","weight_kg":2.5}'),
        min_submitted=2,
    )
    assert isinstance(resolution, ReviewResolution)
    assert resolution.outcome == ExtractionOutcome(
        corrected_json='{"weight_kg": 2.5, "tracking_number": "JD0145"}'
    )
    assert resolution.agreement == 1.0


def test_a_correction_failing_its_schema_is_sent_back_with_the_error() -> None:
    decision = _resolve(
        extraction_task(),
        _response(1, corrected_json='{"tracking_number": "JD0145", "weight_kg": 2.5}'),
        _response(2, corrected_json='{"tracking_number": "JD", "weight_kg": 2.5, "colour": "red"}'),
        _response(3, corrected_json="not json"),
        min_submitted=2,
    )
    assert isinstance(decision, SendBack)
    assert [r.answer_id for r in decision.answers] == ["r2", "r3"]
    assert "tracking_number" in decision.message and "colour" in decision.message
    assert "not valid JSON" in decision.message


def test_an_unregistered_schema_accepts_any_json_object_only() -> None:
    task = extraction_task(schema_name="unregistered")
    assert isinstance(_resolve(task, _response(1, corrected_json='{"any": 1}')), ReviewResolution)
    assert isinstance(_resolve(task, _response(1, corrected_json="[1, 2]")), SendBack)


def test_resolved_at_is_the_latest_counted_response_not_the_clock() -> None:
    responses = (_response(1, label="ok"), _response(3, "discarded"), _response(5, "draft", label="toxic"))
    task = moderation_task()
    first, again = _resolve(task, *responses), _resolve(task, *responses)
    assert isinstance(first, ReviewResolution) and isinstance(again, ReviewResolution)
    assert first.resolved_at == T0 + timedelta(minutes=3)
    assert again == first


def test_the_same_answers_resolve_into_the_same_bytes() -> None:
    task = moderation_task()
    responses = (_response(1, label="ok"), _response(2, label="ok"))
    first, second = (_resolve(task, *responses, min_submitted=2) for _ in range(2))
    assert isinstance(first, ReviewResolution) and isinstance(second, ReviewResolution)
    assert encode(first) == encode(second)


def test_the_revision_is_the_callers_and_an_edit_changes_the_answers_fingerprint() -> None:
    task = moderation_task()
    decision = resolve(task, [_response(1, label="ok")], min_submitted=1, check_correction=CHECK, revision=3)
    assert isinstance(decision, ReviewResolution) and decision.revision == 3
    before = answers_fingerprint([_response(1, label="ok"), _response(2, "draft", label="toxic")])
    assert answers_fingerprint([_response(1, label="ok")]) == before  # drafts do not count
    assert answers_fingerprint([_response(1, label="toxic")]) != before


@pytest.mark.parametrize(
    ("question", "text"),
    [("corrected_answer", "Reset it\x00 online"), ("note", "lone \ud800 surrogate")],
    ids=["nul", "surrogate"],
)
def test_rag_text_the_store_would_refuse_is_sent_back(question: str, text: str) -> None:
    decision = _resolve(
        rag_task(), _response(1, verdict="incorrect", **{question: text}), _response(2, verdict="correct")
    )
    assert isinstance(decision, SendBack)
    assert [r.answer_id for r in decision.answers] == ["r1"]
    assert question in decision.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"tracking_number": "JD0145", "weight_kg": NaN}', "NaN"),
        ('{"tracking_number": "JD0145", "weight_kg": -Infinity}', "Infinity"),
        ('{"tracking_number": "JD0145", "weight_kg": 1e400}', "too large"),
        ('{"tracking_number": "JD\\u0000145", "weight_kg": 2.5}', "NUL"),
        ('{"tracking_number": "JD\\udc00145", "weight_kg": 2.5}', "surrogate"),
        ('{"tracking_number": "JD0145", "weight_kg": 2.5, "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested"),
    ],
    ids=["nan", "infinity", "overflow", "nul", "surrogate", "nested-5000"],
)
def test_corrections_postgresql_would_refuse_are_sent_back(text: str, expected: str) -> None:
    decision = _resolve(extraction_task(), _response(1, corrected_json=text))
    assert isinstance(decision, SendBack)
    assert expected in decision.message
