"""Routing feedback to review, without a broker: the rules, the sample and the task itself."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime

import pytest

from tests.feedback_triage.events import feedback
from workers.config import Topics
from workers.contracts import Rating, ReviewReason, ReviewTask, Suggestion, TaskKind
from workers.feedback_triage.triage import Priority, in_sample, triage
from workers.feedback_triage.worker import outputs

NOW = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
TOPIC = "hitl.review.tasks"
IDS = [uuid.UUID(int=n * 7919 + 1, version=4) for n in range(20_000)]


def first_id(sampled: bool, rate: float) -> uuid.UUID:
    return next(event_id for event_id in IDS if in_sample(event_id, rate) is sampled)


@pytest.mark.parametrize(
    ("rating", "comment", "sampled", "expected"),
    [
        (Rating.DOWN, None, False, (ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE)),
        (Rating.DOWN, "", False, (ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE)),
        (Rating.DOWN, " \n\t", True, (ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE)),
        (Rating.DOWN, "Wrong date", False, (ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE_WITH_COMMENT)),
        (Rating.DOWN, "Wrong date", True, (ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE_WITH_COMMENT)),
        (Rating.UP, None, True, (ReviewReason.POSITIVE_SAMPLE, Priority.POSITIVE_SAMPLE)),
        (Rating.UP, "Great answer", True, (ReviewReason.POSITIVE_SAMPLE, Priority.POSITIVE_SAMPLE)),
        (Rating.UP, None, False, None),
        (Rating.UP, "Great answer", False, None),
    ],
)
def test_routing(
    rating: Rating, comment: str | None, sampled: bool, expected: tuple[ReviewReason, Priority] | None
) -> None:
    rate = 0.3
    event = feedback(event_id=first_id(sampled, rate), rating=rating, comment=comment)

    tasks = triage(event, rate, NOW)

    if expected is None:
        assert tasks == []
        return
    [task] = tasks
    assert (outputs(Topics())[type(task)], task.key) == (TOPIC, str(event.event_id))
    assert task == ReviewTask(
        task_id=event.event_id,
        kind=TaskKind.RAG_ANSWER,
        reason=expected[0],
        priority=expected[1],
        source=event,
        suggestion=Suggestion(agent="support-rag@2.1.0"),
        created_at=NOW,
    )


def test_priorities_put_negative_with_comment_first_and_positive_samples_last() -> None:
    assert Priority.NEGATIVE_WITH_COMMENT > Priority.NEGATIVE > Priority.POSITIVE_SAMPLE


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.3, 0.5, 1.0])
def test_the_sample_has_the_configured_share(rate: float) -> None:
    share = sum(in_sample(event_id, rate) for event_id in IDS) / len(IDS)
    # Binomial standard deviation at n = 20,000 is at most 0.0036; 0.012 is over three of them.
    assert abs(share - rate) <= 0.012


@pytest.mark.parametrize(("rate", "edge"), [(0.0, False), (1.0, True)])
def test_rates_zero_and_one_are_never_and_always(rate: float, edge: bool) -> None:
    assert {in_sample(event_id, rate) for event_id in IDS} == {edge}


def test_the_choice_depends_on_the_event_id_alone() -> None:
    rate = 0.2
    for event_id in IDS[:300]:
        choices = {
            bool(triage(feedback(event_id=event_id, rating=Rating.UP, **fields), rate, NOW))
            for fields in (
                {},
                {"comment": "Nice", "user_id": None},
                {"session_id": "other", "occurred_at": NOW, "question": "Another question?"},
            )
        }
        assert choices == {in_sample(event_id, rate)}


def test_raising_the_rate_keeps_every_event_already_chosen() -> None:
    rates = [0.01, 0.05, 0.2, 0.5, 0.9]
    chosen = [{event_id for event_id in IDS if in_sample(event_id, rate)} for rate in rates]
    for lower, higher in itertools.pairwise(chosen):
        assert lower < higher


def test_the_draw_is_the_documented_one_and_stays_so() -> None:
    """A replay after an upgrade must choose as before."""
    pinned = {
        uuid.UUID("00000000-0000-4000-8000-000000000000"): 0.3341400330555748,
        uuid.UUID("00000000-0000-4000-8000-000000000001"): 0.5942479292101731,
        uuid.UUID("00000000-0000-4000-8000-000000000002"): 0.8770185721594888,
        uuid.UUID("00000000-0000-4000-8000-000000000003"): 0.338563198773139,
    }
    for event_id, draw in pinned.items():
        digest = hashlib.blake2b(event_id.bytes, digest_size=8).digest()
        assert int.from_bytes(digest, "big") / 2**64 == draw
        assert in_sample(event_id, draw + 1e-9)
        assert not in_sample(event_id, draw - 1e-9)
