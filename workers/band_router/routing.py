"""Routing one prediction by its policy: an automatic decision, a review task, or both.

Each label of the prediction is judged against its own band (see `policy` for how the band is
chosen). With score s and band (low, high):

    s >= high        accept     (the high edge is inclusive)
    s <= low         reject     (the low edge is inclusive)
    low < s < high   review     (the grey zone is open at both ends)

If any label is in review, the prediction becomes one review task (reason `grey_band`) and no
decision. Otherwise the top label, the highest score (ties broken by the label's name in
alphabetical order), is decided: `auto_accepted` or `auto_rejected`, carrying its band, the rule
that supplied it and the policy version. A share of decided predictions, the top label's audit
rate, also becomes a review task with reason `audit_sample`.

Audit sampling is a pure function of the event id (`workers.sampling`): the prediction is audited
when its draw is below audit_rate. A replay makes the same choice, and raising a rate keeps every
event the lower rate had chosen.

Priority, higher first: for a grey-zone label, closeness = 1 - |s - mid| / half, where mid and half
are the band's midpoint and half-width, so closeness is 1 at the midpoint (where the model is least
decided) and tends to 0 at the edges; with closeness rounded to 9 decimal places, priority =
1 + floor(99 * closeness + 0.5), from 1 to 100. A task's priority is that of its most undecided grey
label. Audit samples get 0, below every grey task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from workers.band_router.policy import LabelRule, Policy
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
from workers.contracts.plain import PlainDecision, PlainPrediction, PlainReviewTask, PlainSuggestion
from workers.errors import RejectedEvent
from workers.reasons import Reason
from workers.sampling import draw, in_sample

AUDIT_PRIORITY = 0
MAX_PRIORITY = 100


Unroutable = Reason
"""Why a prediction cannot be routed: the registry's band-router reasons (`workers.reasons`)."""


class Zone(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    REVIEW = "review"


class Judged(NamedTuple):
    label: str
    score: float
    rule: LabelRule
    zone: Zone


def zone_of(score: float, band: Band) -> Zone:
    if score >= band.high:
        return Zone.ACCEPT
    if score <= band.low:
        return Zone.REJECT
    return Zone.REVIEW


def priority_of(score: float, band: Band) -> int:
    """From 1 (at a grey zone's edge) to 100 (at its midpoint); only meaningful inside the zone."""
    half = (band.high - band.low) / 2
    if half <= 0:
        return MAX_PRIORITY
    # Rounded so that floating-point noise cannot split scores symmetric about the midpoint.
    closeness = round(min(1.0, max(0.0, 1 - abs(score - (band.low + half)) / half)), 9)
    return 1 + math.floor((MAX_PRIORITY - 1) * closeness + 0.5)


audit_draw = draw
"""A number in [0, 1) fixed by the event id: the prediction is audited when it is below the rate."""


class Verdict(NamedTuple):
    """What the policy says about a prediction's scores: the top label, and the priority of its
    review task if some label is in the grey zone (None when the top label is decided)."""

    top: Judged
    grey_priority: int | None


def judge(task: str, model: str, version: str, scores: Mapping[str, float], policy: Policy) -> Verdict:
    """The verdict on the scores of a `task` prediction by `model` at `version`; raises
    RejectedEvent for a prediction that cannot be routed."""
    # The Prediction model already refuses these; a handler must not rely on how its input was built.
    if not scores:
        raise RejectedEvent(Unroutable.NO_SCORES, "the prediction has no scores")
    # The top label: the highest score, ties broken by the label's name.
    top_label, top_score, top_rule = "", -1.0, None
    grey_priority: int | None = None
    for label, score in scores.items():
        rule = _rule(task, model, version, label, score, policy)
        band = rule.band
        if band.low < score < band.high:
            priority = priority_of(score, band)
            grey_priority = priority if grey_priority is None or priority > grey_priority else grey_priority
        if top_rule is None or score > top_score or (score == top_score and label < top_label):
            top_label, top_score, top_rule = label, score, rule
    assert top_rule is not None
    return Verdict(Judged(top_label, top_score, top_rule, zone_of(top_score, top_rule.band)), grey_priority)


def route(prediction: Prediction, policy: Policy, now: datetime) -> list[Decision | ReviewTask]:
    """The outputs for one prediction: a decision, a review task, or a decision and an audit task."""
    model = prediction.model
    verdict = judge(prediction.task, model.name, model.version, prediction.scores, policy)
    top = verdict.top
    if verdict.grey_priority is not None:
        return [_review_task(prediction, top, ReviewReason.GREY_BAND, verdict.grey_priority, now)]
    decision = Decision(
        event_id=prediction.event_id,
        label=top.label,
        outcome=_outcome(top),
        score=top.score,
        band=top.rule.band,
        band_source=top.rule.band_source,
        policy_version=policy.version,
        decided_at=now,
        source=prediction,
    )
    if in_sample(prediction.event_id, top.rule.audit_rate):
        return [decision, _review_task(prediction, top, ReviewReason.AUDIT_SAMPLE, AUDIT_PRIORITY, now)]
    return [decision]


def route_plain(
    prediction: PlainPrediction, policy: Policy, now: datetime
) -> list[PlainDecision | PlainReviewTask]:
    """`route` on a plain prediction, making the plain mirrors of the same outputs."""
    model = prediction.model
    verdict = judge(prediction.task, model.name, model.version, prediction.scores, policy)
    top = verdict.top
    if verdict.grey_priority is not None:
        return [_plain_review_task(prediction, top, ReviewReason.GREY_BAND, verdict.grey_priority, now)]
    rule = top.rule
    decision = PlainDecision(
        prediction.event_id,
        top.label,
        _outcome(top),
        top.score,
        rule.plain_band,
        rule.band_source,
        policy.version,
        now,
        prediction,
    )
    if in_sample(prediction.event_id, rule.audit_rate):
        return [decision, _plain_review_task(prediction, top, ReviewReason.AUDIT_SAMPLE, AUDIT_PRIORITY, now)]
    return [decision]


def _outcome(top: Judged) -> DecisionOutcome:
    return DecisionOutcome.AUTO_ACCEPTED if top.zone is Zone.ACCEPT else DecisionOutcome.AUTO_REJECTED


def _rule(task: str, model: str, version: str, label: str, score: float, policy: Policy) -> LabelRule:
    if math.isnan(score):
        raise RejectedEvent(Unroutable.SCORE_NOT_A_NUMBER, f"the score of label {label!r} is NaN")
    if not 0.0 <= score <= 1.0:
        raise RejectedEvent(
            Unroutable.SCORE_OUT_OF_RANGE, f"the score of label {label!r} is {score}, outside [0, 1]"
        )
    rule = policy.rule_by_name(task, model, version, label)
    if rule is None:
        raise RejectedEvent(
            Unroutable.UNKNOWN_TASK,
            f"no policy for task {task!r} and no default (policy {policy.version})",
        )
    return rule


def _review_task(
    prediction: Prediction, top: Judged, reason: ReviewReason, priority: int, now: datetime
) -> ReviewTask:
    return ReviewTask(
        task_id=prediction.event_id,
        kind=TaskKind.MODERATION,
        reason=reason,
        priority=priority,
        source=prediction,
        suggestion=Suggestion(
            label=top.label,
            score=top.score,
            agent=f"{prediction.model.name}@{prediction.model.version}",
        ),
        created_at=now,
    )


def _plain_review_task(
    prediction: PlainPrediction, top: Judged, reason: ReviewReason, priority: int, now: datetime
) -> PlainReviewTask:
    model = prediction.model
    suggestion = PlainSuggestion(label=top.label, score=top.score, agent=f"{model.name}@{model.version}")
    return PlainReviewTask(
        prediction.event_id, TaskKind.MODERATION, reason, priority, prediction, suggestion, now
    )
