"""The feedback-triage worker: `hitl.feedback` → the `feedback` table and `hitl.review.tasks`.

Every event is stored by the sink before its task, if any, is produced, keyed by the event id
(`triage` says which events become tasks). PostgreSQL being down pauses the worker and retries
the batch; a row PostgreSQL refuses sends its event to the dead-letter topic instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workers.config import Settings
from workers.contracts import Event, Feedback
from workers.errors import RejectedEvent
from workers.feedback_triage.store import FeedbackStore
from workers.feedback_triage.triage import TriagePolicy, triage
from workers.runtime.worker import Origin, Output, WorkerSpec

NAME = "feedback-triage"


def feedback_triage(settings: Settings) -> WorkerSpec:
    """The worker `hitl-workers run feedback-triage` runs."""
    return feedback_triage_spec(settings)


def feedback_triage_spec(
    settings: Settings, *, schema: str | None = None, pool_timeout: float = 10.0
) -> WorkerSpec:
    """The worker, its table in `schema` (else the DSN's search path); `pool_timeout` bounds the wait
    for a connection, after which the batch is retried later."""
    policy = TriagePolicy(
        review_topic=settings.topics.review_tasks,
        positive_sample_rate=settings.feedback_triage.positive_sample_rate,
    )

    def handle(event: Event, _origin: Origin) -> list[Output]:
        if not isinstance(event, Feedback):
            raise RejectedEvent("wrong_event_type", f"expected a Feedback, got {type(event).__name__}")
        return triage(event, policy, datetime.now(UTC))

    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.feedback,
        input_types=(Feedback,),
        handler=handle,
        output_topics=(settings.topics.review_tasks,),
        sink=FeedbackStore(
            settings.postgres_dsn.get_secret_value(),
            schema=schema,
            pool_timeout=pool_timeout,
            limits=settings.postgres,
        ),
    )
