"""Which feedback becomes a review task, and how urgent it is.

    thumbs-down with a comment      review task, reason negative_feedback, priority 75
    thumbs-down without a comment   review task, reason negative_feedback, priority 50
    thumbs-up in the sample         review task, reason positive_sample,   priority 0
    other thumbs-up                 nothing

A comment is one with something besides whitespace; a user who says what is wrong gives the
reviewer a head start, so that task comes first.

The sample is a pure function of the event id, drawn as every worker draws (`workers.sampling`):
the thumbs-up is sampled when its draw is below positive_sample_rate. A replay makes the same
choice, and raising the rate keeps every event the lower rate had chosen.

Each event is routed on its own: a thumbs-down the same user later turns into a thumbs-up still
becomes a task (which vote counts is the `feedback_latest_votes` view's business, not routing's).
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from workers.contracts import Feedback, Rating, ReviewReason, ReviewTask, Suggestion, TaskKind
from workers.contracts.plain import PlainFeedback, PlainReviewTask, PlainSuggestion
from workers.sampling import in_sample


class Priority(IntEnum):
    """Review priority of a feedback task; higher is more urgent."""

    POSITIVE_SAMPLE = 0
    NEGATIVE = 50
    NEGATIVE_WITH_COMMENT = 75


def triage(feedback: Feedback, positive_sample_rate: float, now: datetime) -> list[ReviewTask]:
    """The review task this feedback calls for, if any (its task id is the event id); `now` is its
    creation time."""
    routed = route(feedback, positive_sample_rate)
    if routed is None:
        return []
    reason, priority = routed
    task = ReviewTask(
        task_id=feedback.event_id,
        kind=TaskKind.RAG_ANSWER,
        reason=reason,
        priority=priority,
        source=feedback,
        suggestion=Suggestion(agent=f"{feedback.model.name}@{feedback.model.version}"),
        created_at=now,
    )
    return [task]


def triage_plain(
    feedback: PlainFeedback, positive_sample_rate: float, now: datetime
) -> list[PlainReviewTask]:
    """`triage` on a plain feedback event, making the plain mirror of the same task."""
    routed = route(feedback, positive_sample_rate)
    if routed is None:
        return []
    reason, priority = routed
    model = feedback.model
    suggestion = PlainSuggestion(agent=f"{model.name}@{model.version}")
    return [
        PlainReviewTask(
            feedback.event_id, TaskKind.RAG_ANSWER, reason, int(priority), feedback, suggestion, now
        )
    ]


def route(
    feedback: Feedback | PlainFeedback, positive_sample_rate: float
) -> tuple[ReviewReason, Priority] | None:
    # A plain event's rating is the text of the enum's value.
    if feedback.rating == Rating.DOWN:
        if feedback.comment is not None and feedback.comment.strip():
            return ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE_WITH_COMMENT
        return ReviewReason.NEGATIVE_FEEDBACK, Priority.NEGATIVE
    if in_sample(feedback.event_id, positive_sample_rate):
        return ReviewReason.POSITIVE_SAMPLE, Priority.POSITIVE_SAMPLE
    return None
