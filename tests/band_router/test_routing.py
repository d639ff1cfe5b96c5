"""The pure routing function: band edges, overrides, several labels, audit sampling and priority."""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import timedelta

import pytest

from tests.band_router.conftest import NOW, make_prediction, policy_of, seeded_ids
from workers.band_router.routing import (
    AUDIT_PRIORITY,
    Unroutable,
    audit_draw,
    priority_of,
    route,
)
from workers.contracts import (
    Band,
    Decision,
    DecisionOutcome,
    Prediction,
    ReviewReason,
    ReviewTask,
    Suggestion,
    TaskKind,
)
from workers.errors import RejectedEvent

POLICY = policy_of(
    """
version = "routing-1"

[tasks.moderation]
low = 0.4
high = 0.8

[tasks.moderation.labels.spam]
low = 0.3
high = 0.7

[tasks.moderation.models.toxicity-bert.versions."3.0.0"]
low = 0.3
high = 0.9

[tasks.moderation.models.toxicity-bert.versions."3.0.0".labels.spam]
low = 0.5
high = 0.6

[tasks.threshold]
low = 0.5
high = 0.5
"""
)

ACCEPTED, REJECTED, GREY = (
    DecisionOutcome.AUTO_ACCEPTED,
    DecisionOutcome.AUTO_REJECTED,
    ReviewReason.GREY_BAND,
)
JUST_BELOW_HIGH = math.nextafter(0.8, 0)
JUST_ABOVE_LOW = math.nextafter(0.4, 1)


def only(outputs: list[Decision | ReviewTask]) -> Decision | ReviewTask:
    assert len(outputs) == 1, outputs
    return outputs[0]


@pytest.mark.parametrize(
    ("scores", "version", "expected", "label", "band_source"),
    [
        # the task's band (0.4, 0.8): the edges are decided, the open interval between them reviewed
        ({"toxic": 0.8}, "2.3.1", ACCEPTED, "toxic", "task:moderation"),
        ({"toxic": 0.4}, "2.3.1", REJECTED, "toxic", "task:moderation"),
        ({"toxic": JUST_BELOW_HIGH}, "2.3.1", GREY, "toxic", None),
        ({"toxic": JUST_ABOVE_LOW}, "2.3.1", GREY, "toxic", None),
        ({"toxic": math.nextafter(0.8, 1)}, "2.3.1", ACCEPTED, "toxic", "task:moderation"),
        ({"toxic": math.nextafter(0.4, 0)}, "2.3.1", REJECTED, "toxic", "task:moderation"),
        ({"toxic": 1.0}, "2.3.1", ACCEPTED, "toxic", "task:moderation"),
        ({"toxic": 0.0}, "2.3.1", REJECTED, "toxic", "task:moderation"),
        ({"toxic": 0.6}, "2.3.1", GREY, "toxic", None),
        # a label override (0.3, 0.7)
        ({"spam": 0.7}, "2.3.1", ACCEPTED, "spam", "task:moderation/label:spam"),
        ({"spam": 0.75}, "2.3.1", ACCEPTED, "spam", "task:moderation/label:spam"),
        ({"spam": 0.3}, "2.3.1", REJECTED, "spam", "task:moderation/label:spam"),
        ({"spam": 0.35}, "2.3.1", GREY, "spam", None),
        # a model version override (0.3, 0.9), and its own label override (0.5, 0.6)
        ({"toxic": 0.85}, "3.0.0", GREY, "toxic", None),
        ({"toxic": 0.9}, "3.0.0", ACCEPTED, "toxic", "task:moderation/model:toxicity-bert@3.0.0"),
        ({"toxic": 0.35}, "3.0.0", GREY, "toxic", None),
        ({"spam": 0.6}, "3.0.0", ACCEPTED, "spam", "task:moderation/model:toxicity-bert@3.0.0/label:spam"),
        ({"spam": 0.5}, "3.0.0", REJECTED, "spam", "task:moderation/model:toxicity-bert@3.0.0/label:spam"),
        # several labels: decided by the top label, reviewed if any label is grey
        ({"toxic": 0.9, "ok": 0.1}, "2.3.1", ACCEPTED, "toxic", "task:moderation"),
        ({"toxic": 0.3, "ok": 0.35}, "2.3.1", REJECTED, "ok", "task:moderation"),
        ({"toxic": 0.95, "spam": 0.5}, "2.3.1", GREY, "toxic", None),
        ({"toxic": 0.95, "ok": 0.6}, "2.3.1", GREY, "toxic", None),
        ({"spam": 0.72, "toxic": 0.1}, "2.3.1", ACCEPTED, "spam", "task:moderation/label:spam"),
        # a tie for the top score goes to the label whose name sorts first
        ({"b": 0.9, "a": 0.9}, "2.3.1", ACCEPTED, "a", "task:moderation"),
        ({"b": 0.2, "a": 0.2}, "2.3.1", REJECTED, "a", "task:moderation"),
    ],
)
def test_routing_by_band(
    scores: dict[str, float],
    version: str,
    expected: DecisionOutcome | ReviewReason,
    label: str,
    band_source: str | None,
) -> None:
    prediction = make_prediction(scores, version=version)

    output = only(route(prediction, POLICY, NOW))

    if isinstance(expected, DecisionOutcome):
        assert isinstance(output, Decision)
        assert (output.outcome, output.label, output.score) == (expected, label, scores[label])
        assert output.band_source == band_source
    else:
        assert isinstance(output, ReviewTask)
        assert output.reason is expected
        assert output.suggestion.label == label
        assert output.suggestion.score == scores[label]


@pytest.mark.parametrize(
    ("score", "outcome"), [(0.5, ACCEPTED), (math.nextafter(0.5, 1), ACCEPTED), (0.49, REJECTED)]
)
def test_a_band_without_width_has_no_grey_zone_and_accepts_at_its_edge(
    score: float, outcome: DecisionOutcome
) -> None:
    output = only(route(make_prediction({"x": score}, task="threshold"), POLICY, NOW))

    assert isinstance(output, Decision)
    assert output.outcome is outcome


def test_a_decision_carries_its_band_rule_policy_version_and_source() -> None:
    prediction = make_prediction({"spam": 0.25, "toxic": 0.1}, version="3.0.0")

    decision = only(route(prediction, POLICY, NOW))

    assert decision == Decision(
        event_id=prediction.event_id,
        label="spam",
        outcome=REJECTED,
        score=0.25,
        band=Band(low=0.5, high=0.6),
        band_source="task:moderation/model:toxicity-bert@3.0.0/label:spam",
        policy_version=POLICY.version,
        decided_at=NOW,
        source=prediction,
    )


def test_a_review_task_carries_the_prediction_and_the_top_label_as_suggestion() -> None:
    prediction = make_prediction({"toxic": 0.61, "ok": 0.39})

    task = only(route(prediction, POLICY, NOW))

    assert task == ReviewTask(
        task_id=prediction.event_id,
        kind=TaskKind.MODERATION,
        reason=ReviewReason.GREY_BAND,
        priority=priority_of(0.61, Band(low=0.4, high=0.8)),
        source=prediction,
        suggestion=Suggestion(label="toxic", score=0.61, agent="toxicity-bert@2.3.1"),
        created_at=NOW,
    )


# -- audit sampling ------------------------------------------------------------------------------

AUDITED = policy_of(
    """
version = "audit-1"
[tasks.moderation]
audit_rate = 0.25
[tasks.moderation.labels.rare]
audit_rate = 0.1
[tasks.never]
audit_rate = 0
[tasks.always]
audit_rate = 1
"""
)


def audited(prediction: Prediction) -> bool:
    outputs = route(prediction, AUDITED, NOW)
    return any(isinstance(o, ReviewTask) and o.reason is ReviewReason.AUDIT_SAMPLE for o in outputs)


def test_an_audited_prediction_gets_its_decision_and_an_audit_task() -> None:
    event_id = next(i for i in seeded_ids(100, seed=1) if audit_draw(i) < 0.25)
    prediction = make_prediction({"toxic": 0.95}, event_id=event_id)

    decision, task = route(prediction, AUDITED, NOW)

    assert isinstance(decision, Decision)
    assert decision.outcome is ACCEPTED
    assert isinstance(task, ReviewTask)
    assert (task.reason, task.priority, task.task_id) == (ReviewReason.AUDIT_SAMPLE, 0, event_id)
    assert task.suggestion == Suggestion(label="toxic", score=0.95, agent="toxicity-bert@2.3.1")


def test_the_audit_choice_depends_on_the_event_id_alone() -> None:
    for event_id in seeded_ids(200, seed=2):
        first = make_prediction({"toxic": 0.95}, event_id=event_id)
        replay = make_prediction({"toxic": 0.99, "ok": 0.01}, event_id=event_id)
        later = route(first, AUDITED, NOW + timedelta(days=30))

        assert audited(first) == audited(replay) == (len(later) == 2)


def test_the_audit_draw_is_blake2b_of_the_uuid_bytes() -> None:
    """Pinned, so that replays after an upgrade still choose the same events."""
    event_id = uuid.UUID("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")
    digest = hashlib.blake2b(event_id.bytes, digest_size=8).digest()

    assert audit_draw(event_id) == int.from_bytes(digest, "big") / 2**64
    assert 0 <= audit_draw(uuid.UUID(int=0)) < 1
    assert 0 <= audit_draw(uuid.UUID(int=2**128 - 1)) < 1


@pytest.mark.parametrize(("scores", "rate"), [({"toxic": 0.95}, 0.25), ({"rare": 0.05, "toxic": 0.01}, 0.1)])
def test_the_audited_share_matches_the_rate_of_the_top_label(scores: dict[str, float], rate: float) -> None:
    ids = seeded_ids(20_000, seed=3)

    share = sum(audited(make_prediction(scores, event_id=i)) for i in ids) / len(ids)

    # The binomial standard deviation is at most 0.0031 here: 0.01 is more than three of them.
    assert share == pytest.approx(rate, abs=0.01)


def test_a_higher_rate_keeps_every_event_a_lower_rate_chose() -> None:
    ids = seeded_ids(5_000, seed=4)
    at_ten = {i for i in ids if audited(make_prediction({"rare": 0.99}, event_id=i))}
    at_quarter = {i for i in ids if audited(make_prediction({"toxic": 0.99}, event_id=i))}

    assert at_ten < at_quarter


@pytest.mark.parametrize(("task", "expected"), [("never", 0), ("always", 500)])
def test_rates_zero_and_one_audit_nothing_and_everything(task: str, expected: int) -> None:
    ids = seeded_ids(500, seed=5)

    assert sum(audited(make_prediction({"x": 0.99}, task=task, event_id=i)) for i in ids) == expected


def test_a_grey_prediction_is_reviewed_once_never_as_an_audit_sample() -> None:
    for event_id in seeded_ids(200, seed=6):
        outputs = route(make_prediction({"x": 0.5}, task="always", event_id=event_id), AUDITED, NOW)
        task = only(outputs)
        assert isinstance(task, ReviewTask)
        assert task.reason is ReviewReason.GREY_BAND


# -- priority ------------------------------------------------------------------------------------


def test_priority_is_highest_at_the_midpoint_and_falls_towards_the_edges() -> None:
    band = Band(low=0.4, high=0.8)
    rising = [0.41, 0.45, 0.5, 0.55, 0.59, 0.6]
    falling = [0.6, 0.61, 0.65, 0.7, 0.75, 0.79]

    assert priority_of(0.6, band) == 100
    assert [priority_of(s, band) for s in rising] == sorted(priority_of(s, band) for s in rising)
    assert [priority_of(s, band) for s in falling] == sorted(
        (priority_of(s, band) for s in falling), reverse=True
    )
    assert priority_of(0.5, band) == priority_of(0.7, band) == 1 + math.floor(99 * 0.5 + 0.5)
    assert priority_of(JUST_ABOVE_LOW, band) == priority_of(JUST_BELOW_HIGH, band) == 1


def test_every_grey_task_ranks_above_every_audit_sample() -> None:
    grey = [
        only(route(make_prediction({"toxic": s}), POLICY, NOW))
        for s in (JUST_ABOVE_LOW, 0.6, JUST_BELOW_HIGH)
    ]

    assert all(isinstance(t, ReviewTask) and 1 <= t.priority <= 100 for t in grey)
    assert AUDIT_PRIORITY == 0


def test_with_several_grey_labels_the_most_undecided_one_sets_the_priority() -> None:
    task = only(route(make_prediction({"toxic": 0.75, "spam": 0.5}), POLICY, NOW))

    assert isinstance(task, ReviewTask)
    assert task.priority == priority_of(0.5, Band(low=0.3, high=0.7)) == 100
    assert task.suggestion.label == "toxic"


# -- predictions that cannot be routed -----------------------------------------------------------


def unchecked(scores: dict[str, float], task: str = "moderation") -> Prediction:
    """A prediction built without validation, as no decoder would let through."""
    valid = make_prediction({"x": 0.5}, task=task)
    return Prediction.model_construct(**{**dict(valid), "scores": scores})


@pytest.mark.parametrize(
    ("prediction", "reason", "detail"),
    [
        (unchecked({}), Unroutable.NO_SCORES, "no scores"),
        (unchecked({"toxic": float("nan")}), Unroutable.SCORE_NOT_A_NUMBER, "'toxic' is NaN"),
        (unchecked({"toxic": 1.5}), Unroutable.SCORE_OUT_OF_RANGE, "'toxic' is 1.5, outside [0, 1]"),
        (unchecked({"ok": 0.2, "toxic": -0.1}), Unroutable.SCORE_OUT_OF_RANGE, "'toxic' is -0.1"),
        (unchecked({"toxic": float("inf")}), Unroutable.SCORE_OUT_OF_RANGE, "'toxic' is inf"),
        (make_prediction({"x": 0.5}, task="translation"), Unroutable.UNKNOWN_TASK, "'translation'"),
    ],
)
def test_a_prediction_that_cannot_be_routed_is_rejected_with_its_reason(
    prediction: Prediction, reason: Unroutable, detail: str
) -> None:
    with pytest.raises(RejectedEvent) as rejected:
        route(prediction, POLICY, NOW)

    assert rejected.value.reason == reason
    assert detail in str(rejected.value)


def test_an_unknown_task_is_routed_by_the_default_policy_when_there_is_one() -> None:
    with_default = policy_of('version = "d"\n[default]\nlow = 0.2\nhigh = 0.6\n')

    decision = only(route(make_prediction({"x": 0.6}, task="translation"), with_default, NOW))

    assert isinstance(decision, Decision)
    assert (decision.outcome, decision.band_source) == (ACCEPTED, "default")
