"""The quality recorders: the events the loop-quality figures need, into PostgreSQL.

The runtime reads one topic per worker, so there are three, each its own consumer group:
`quality-decisions` (hitl.decisions), `quality-tasks` (hitl.review.tasks) and `quality-reviews`
(hitl.review.resolved). Each handler maps its event to rows (`recording`), which the sink writes;
none produces events.
"""

from __future__ import annotations

from workers.config import Settings
from workers.contracts import Decision, ReviewResolution, ReviewTask
from workers.quality.recording import decision_rows, resolution_rows, task_rows
from workers.quality.store import QualityStore
from workers.runtime.worker import Handled, Origin, WorkerSpec
from workers.storage.postgres import open_pool


def quality_decisions(settings: Settings, *, schema: str | None = None) -> WorkerSpec:
    """`hitl-workers run quality-decisions`."""
    return WorkerSpec(
        name="quality-decisions",
        input_topic=settings.topics.decisions,
        input_types=(Decision,),
        handler=handle_decision,
        sink=_store(settings, schema),
    )


def quality_tasks(settings: Settings, *, schema: str | None = None) -> WorkerSpec:
    """`hitl-workers run quality-tasks`."""
    return WorkerSpec(
        name="quality-tasks",
        input_topic=settings.topics.review_tasks,
        input_types=(ReviewTask,),
        handler=handle_task,
        sink=_store(settings, schema),
    )


def quality_reviews(settings: Settings, *, schema: str | None = None) -> WorkerSpec:
    """`hitl-workers run quality-reviews`."""
    return WorkerSpec(
        name="quality-reviews",
        input_topic=settings.topics.review_resolved,
        input_types=(ReviewResolution,),
        handler=handle_resolution,
        sink=_store(settings, schema),
    )


def handle_decision(decision: Decision, _origin: Origin) -> Handled:
    return Handled(effect=decision_rows(decision))


def handle_task(task: ReviewTask, _origin: Origin) -> Handled:
    return Handled(effect=task_rows(task))


def handle_resolution(resolution: ReviewResolution, _origin: Origin) -> Handled:
    return Handled(effect=resolution_rows(resolution))


def _store(settings: Settings, schema: str | None) -> QualityStore:
    pool = open_pool(
        settings.postgres_dsn.get_secret_value(), schema=schema, autocommit=True, limits=settings.postgres
    )
    return QualityStore(pool)
