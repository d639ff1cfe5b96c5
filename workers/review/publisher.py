"""The review publisher (`hitl-workers run argilla-publisher`, or `review-publisher`): review tasks
from `hitl.review.tasks` become items of the review tool of their kind (HITL_REVIEW__BACKEND,
HITL_REVIEW__BACKEND_BY_KIND).

A worker whose whole job is the side effect: it has no handler and no outputs; its sink is the
backends' `publish`. A tool down → DependencyUnavailable (the runtime pauses, rewinds and
retries the batch); a task the tool refuses → dead-lettered by the runtime with the tool's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from workers.config import Settings
from workers.contracts import ReviewTask
from workers.errors import RejectedEvent
from workers.review.argilla.backend import ArgillaBackend
from workers.review.argilla.client import ArgillaAdapter
from workers.review.backends import BackendsByKind, used_backends
from workers.runtime.worker import Processed, WorkerSpec

NAME = "argilla-publisher"


class Publishes(Protocol):
    def publish(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]: ...

    def close(self) -> None: ...


class PublishingSink:
    """The runtime's sink over a review backend."""

    def __init__(self, backend: Publishes) -> None:
        self.backend = backend

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        return self.backend.publish(batch)

    def close(self) -> None:
        self.backend.close()


def publisher(settings: Settings) -> WorkerSpec:
    """The publisher of the settings' backends."""
    backends = used_backends(settings)
    if len(backends) == 1:
        return review_publisher(settings, backends[0])
    return review_publisher(settings, BackendsByKind(settings, backends))


def argilla_publisher(settings: Settings, adapter: ArgillaAdapter | None = None) -> WorkerSpec:
    """A publisher to Argilla alone, whatever the settings choose."""
    return review_publisher(settings, ArgillaBackend(settings, adapter))


def review_publisher(settings: Settings, backend: Publishes) -> WorkerSpec:
    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.review_tasks,
        input_types=(ReviewTask,),
        sink=PublishingSink(backend),
    )
