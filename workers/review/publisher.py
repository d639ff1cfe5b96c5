"""The review publisher (`hitl-workers run argilla-publisher`): review tasks from
`hitl.review.tasks` become items of the review tool.

A worker whose whole job is the side effect: it has no handler and no outputs; its sink is the
backend's `publish`. The tool down → DependencyUnavailable (the runtime pauses, rewinds and
retries the batch); a task the tool refuses → dead-lettered by the runtime with the tool's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workers.config import Settings
from workers.contracts import ReviewTask
from workers.errors import RejectedEvent
from workers.review.argilla.backend import ArgillaBackend
from workers.review.argilla.client import ArgillaAdapter
from workers.review.backend import ReviewBackend
from workers.runtime.worker import Processed, WorkerSpec

NAME = "argilla-publisher"


class PublishingSink:
    """The runtime's sink over a review backend."""

    def __init__(self, backend: ReviewBackend) -> None:
        self.backend = backend

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        return self.backend.publish(batch)

    def close(self) -> None:
        self.backend.close()


def argilla_publisher(settings: Settings, adapter: ArgillaAdapter | None = None) -> WorkerSpec:
    return review_publisher(settings, ArgillaBackend(settings, adapter))


def review_publisher(settings: Settings, backend: ReviewBackend) -> WorkerSpec:
    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.review_tasks,
        input_types=(ReviewTask,),
        sink=PublishingSink(backend),
    )
