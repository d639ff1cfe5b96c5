"""argilla-publisher: review tasks from `hitl.review.tasks` become records in Argilla.

A worker whose whole job is the side effect: it has no handler and no outputs, and each batch is
grouped by dataset and logged with bulk upserts of `publish_batch_size` records, keyed by task id,
so a replayed task updates its record. Argilla down → DependencyUnavailable (the runtime pauses,
rewinds and retries the batch); a task Argilla refuses → returned as refused, with Argilla's
message, and dead-lettered by the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workers.argilla_bridge.adapter import ArgillaAdapter, ArgillaRejected, DatasetRef
from workers.argilla_bridge.datasets import DatasetSpec, dataset_spec_for
from workers.argilla_bridge.records import RecordItem, record_for
from workers.config import ArgillaBridgeSettings, Settings
from workers.contracts import ReviewTask
from workers.errors import RejectedEvent
from workers.runtime.worker import Processed, WorkerSpec

NAME = "argilla-publisher"


class ArgillaSink:
    def __init__(self, adapter: ArgillaAdapter, bridge: ArgillaBridgeSettings) -> None:
        self.adapter = adapter
        self.bridge = bridge

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        # The SDK builds dataset settings (fields, questions) against its default client, which is
        # the first client made in the process: connect before building any.
        self.adapter.client  # noqa: B018
        specs: dict[str, DatasetSpec] = {}
        by_dataset: dict[str, list[tuple[int, ReviewTask]]] = {}
        for index, received in enumerate(batch):
            task = received.event
            assert isinstance(task, ReviewTask)
            spec = dataset_spec_for(task, self.bridge)
            specs.setdefault(spec.name, spec)
            by_dataset.setdefault(spec.name, []).append((index, task))
        refused: dict[int, RejectedEvent] = {}
        for name, members in by_dataset.items():
            spec = specs[name]
            try:
                dataset = self.adapter.ensure_dataset(self.bridge.workspace, spec)
            except ArgillaRejected as error:
                refused.update({index: error for index, _ in members})
                continue
            items = [(index, record_for(task, spec)) for index, task in members]
            size = self.bridge.publish_batch_size
            for start in range(0, len(items), size):
                refused.update(self._log(dataset, items[start : start + size]))
        return refused

    def _log(self, dataset: DatasetRef, items: Sequence[tuple[int, RecordItem]]) -> dict[int, RejectedEvent]:
        try:
            self.adapter.upsert_records(dataset, [item for _, item in items])
            return {}
        except ArgillaRejected as error:
            if len(items) == 1:
                return {items[0][0]: error}
        # One bad record fails its whole bulk request: log them one by one to refuse only that one.
        refused: dict[int, RejectedEvent] = {}
        for index, item in items:
            try:
                self.adapter.upsert_records(dataset, [item])
            except ArgillaRejected as error:
                refused[index] = error
        return refused

    def close(self) -> None:
        self.adapter.close()


def argilla_publisher(settings: Settings, adapter: ArgillaAdapter | None = None) -> WorkerSpec:
    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.review_tasks,
        input_types=(ReviewTask,),
        sink=ArgillaSink(adapter or ArgillaAdapter(settings), settings.argilla_bridge),
    )
