"""The feedback-triage worker: `hitl.feedback` → the `feedback` table and `hitl.review.tasks`.

Every event is stored by the sink before its task, if any, is produced, keyed by the event id
(`triage` says which events become tasks). PostgreSQL being down pauses the worker and retries
the batch; a row PostgreSQL refuses sends its event to the dead-letter topic instead.

JSON feedback takes the fast path (`triage_plain`, read by msgspec, no Pydantic models), which
the sink stores as it stores the models; Avro feedback (the gateway's) takes the reference path.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workers.config import Settings, Topics
from workers.contracts import Event, Feedback, ReviewTask
from workers.contracts.plain import PlainFeedback, PlainReviewTask
from workers.feedback_triage.store import FeedbackStore
from workers.feedback_triage.triage import triage, triage_plain
from workers.runtime.worker import FastPath, Origin, WorkerSpec

NAME = "feedback-triage"


def outputs(topics: Topics) -> dict[type[Event], str]:
    """Where the worker's outputs go: review tasks to `hitl.review.tasks`."""
    return {ReviewTask: topics.review_tasks}


def feedback_triage(
    settings: Settings, *, schema: str | None = None, pool_timeout: float = 10.0
) -> WorkerSpec:
    """The worker `hitl-workers run feedback-triage` runs; its table in `schema` (else the DSN's
    search path); `pool_timeout` bounds the wait for a connection, after which the batch is retried."""
    rate = settings.feedback_triage.positive_sample_rate

    def handle(feedback: Feedback, _origin: Origin) -> list[ReviewTask]:
        return triage(feedback, rate, datetime.now(UTC))

    def handle_plain(feedback: PlainFeedback) -> list[PlainReviewTask]:
        return triage_plain(feedback, rate, datetime.now(UTC))

    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.feedback,
        input_types=(Feedback,),
        handler=handle,
        outputs=outputs(settings.topics),
        sink=FeedbackStore(
            settings.postgres_dsn.get_secret_value(),
            schema=schema,
            pool_timeout=pool_timeout,
            limits=settings.postgres,
        ),
        fast_path=FastPath(PlainFeedback, handle_plain),
    )
