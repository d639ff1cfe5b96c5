"""The review backends a deployment uses, chosen per task kind (HITL_REVIEW__BACKEND and
HITL_REVIEW__BACKEND_BY_KIND), and publishing through them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workers.config import ReviewBackendName, Settings
from workers.contracts import ReviewTask
from workers.errors import RejectedEvent
from workers.review.backend import ReviewBackend
from workers.review.metrics import CollectorMetrics
from workers.runtime.worker import Processed


def make_backend(
    name: ReviewBackendName, settings: Settings, metrics: CollectorMetrics | None = None
) -> ReviewBackend:
    if name == "label-studio":
        from workers.review.label_studio.backend import LabelStudioBackend

        return LabelStudioBackend(settings, metrics=metrics)
    from workers.review.argilla.backend import ArgillaBackend

    return ArgillaBackend(settings, metrics=metrics)


def used_backends(settings: Settings, metrics: CollectorMetrics | None = None) -> list[ReviewBackend]:
    """One backend of each kind some task kind goes to, the default one first."""
    return [make_backend(name, settings, metrics) for name in settings.review.backends_used()]


class BackendsByKind:
    """Publishes each task to the backend of its kind."""

    def __init__(self, settings: Settings, backends: Sequence[ReviewBackend]) -> None:
        self.review = settings.review
        self.backends = {backend.name: backend for backend in backends}
        self.name = "+".join(self.backends)

    def publish(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        by_backend: dict[str, list[int]] = {}
        for index, processed in enumerate(batch):
            task = processed.event
            assert isinstance(task, ReviewTask)
            by_backend.setdefault(self.review.backend_for(task.kind.value), []).append(index)
        refused: dict[int, RejectedEvent] = {}
        for name, indices in by_backend.items():
            part = self.backends[name].publish([batch[index] for index in indices])
            refused.update({indices[position]: error for position, error in part.items()})
        return refused

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()
