"""The Argilla backend of the review package (`workers.review.backend.ReviewBackend`).

- publish: each batch is grouped by dataset (`layout.dataset_spec_for`) and logged with bulk
  upserts of `publish_batch_size` records, keyed by task id. The records the batch's tasks
  already have are looked up first: a replayed task leaves its record as the collector left it
  (`records.replay_item`), so finished work is never reopened and nothing is duplicated. A task
  Argilla refuses is returned as refused, with Argilla's message.
- items are records; answers are their responses; the marks are extra metadata (`_hitl_emitted`,
  `_hitl_failed`) beside the indexed `review_state`; sending back shows the message in the
  record's `review_feedback` field (where the dataset has one) and turns the responses back into
  drafts, which Argilla does not count as submitted.
- notifications are Argilla's signed webhooks (`webhooks`); candidates are found by searching
  every dataset of the bridge for completed records, or records holding a discarded response,
  whether awaiting or emitted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from workers.config import ArgillaBridgeSettings, Settings
from workers.contracts import ReviewTask
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.review.argilla import layout as ds
from workers.review.argilla.client import ArgillaAdapter, ArgillaRejected, DatasetRef
from workers.review.argilla.records import RecordItem, answers_of, record_for, replay_item
from workers.review.argilla.webhooks import WebhookApp, record_to_resolve, register_webhook
from workers.review.backend import DRAFT, Answer, Marks, ReviewItem, refusals_with_copies
from workers.review.metrics import CollectorMetrics
from workers.runtime.backoff import Backoff
from workers.runtime.worker import Processed

logger = logging.getLogger("hitl.argilla")

EMITTED_MARK = "_hitl_emitted"
"""JSON {"revision": n, "answers": digest}: the last revision emitted and the answers it came from."""
FAILED_MARK = "_hitl_failed"
"""JSON {"what": digest, "reason": code}: these answers to this task failed and were dead-lettered."""

# Completed records, and records holding a discarded response (a record everyone discarded never
# completes), whether awaiting or emitted (an edit after emission is a new revision). No filter on
# `review_state`: a dataset left without that property by a publisher killed while creating it
# would refuse the search, and its answers would never be reconciled.
CANDIDATE_FILTERS: tuple[list[dict[str, Any]], ...] = (
    [{"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["completed"]}],
    [{"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["discarded"]}],
)


class ArgillaBackend:
    name = "argilla"

    def __init__(
        self,
        settings: Settings,
        adapter: ArgillaAdapter | None = None,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.bridge: ArgillaBridgeSettings = settings.argilla_bridge
        self.adapter = adapter or ArgillaAdapter(settings)
        self.metrics = metrics or CollectorMetrics()
        self.webhook: dict[str, Any] | None = None
        self._min_submitted: dict[str, int] = {}

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        # The SDK builds dataset settings (fields, questions) against its default client, which is
        # the first client made in the process: connect before building any.
        self.adapter.client  # noqa: B018
        specs: dict[str, ds.DatasetSpec] = {}
        by_dataset: dict[str, list[tuple[int, ReviewTask]]] = {}
        for index, processed in enumerate(batch):
            task = processed.event
            assert isinstance(task, ReviewTask)
            spec = ds.dataset_spec_for(task, self.bridge)
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
            items = self._items_to_log(dataset, spec, members)
            size = self.bridge.publish_batch_size
            logged_refused: dict[int, RejectedEvent] = {}
            for start in range(0, len(items), size):
                logged_refused.update(self._log(dataset, items[start : start + size]))
            refused.update(refusals_with_copies(members, logged_refused))
        return refused

    def _items_to_log(
        self, dataset: DatasetRef, spec: ds.DatasetSpec, members: Sequence[tuple[int, ReviewTask]]
    ) -> list[tuple[int, RecordItem]]:
        # The last of a task's copies in the batch wins (Argilla refuses a bulk with an external id twice).
        latest = {str(task.task_id): (index, task) for index, task in members}
        stored = self.adapter.records_by_external_id(dataset, list(latest))
        items: list[tuple[int, RecordItem]] = []
        for task_id, (index, task) in latest.items():
            item: RecordItem | None = record_for(task, spec)
            if item is not None and task_id in stored:
                item = replay_item(item, stored[task_id])
            if item is not None:
                items.append((index, item))
        return items

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

    # -- items -----------------------------------------------------------------------------------

    def item(self, ref: str) -> ReviewItem:
        return self._item_of(self.adapter.record(ref))

    def candidates(self) -> Iterator[ReviewItem]:
        workspace_id = self.adapter.ensure_workspace(self.bridge.workspace)
        for dataset in self.adapter.list_datasets(workspace_id):
            if not str(dataset["name"]).startswith(self.bridge.dataset_prefix + "-"):
                continue
            try:
                found = {
                    str(record["id"]): record
                    for filters in CANDIDATE_FILTERS
                    for record in self.adapter.search_records(str(dataset["id"]), filters)
                }
            except DependencyUnavailable:
                raise
            except Exception as error:  # one dataset must not hold back the others
                log(
                    logger,
                    "candidates_failed",
                    logging.WARNING,
                    dataset=dataset["name"],
                    error=repr(error)[:500],
                )
                continue
            for record in found.values():
                try:
                    yield self._item_of(record)
                except Exception as error:  # the resolver reads it again and records what is wrong
                    log(
                        logger,
                        "record_unreadable",
                        logging.WARNING,
                        record=str(record.get("id")),
                        error=repr(error),
                    )
                    yield _unreadable_item(record)

    def _item_of(self, record: dict[str, Any]) -> ReviewItem:
        metadata = record.get("metadata") or {}
        task_json = metadata.get(ds.TASK_JSON)
        try:
            answers = tuple(answers_of(record))
        except Exception:
            # The response list itself is unreadable: the resolution fails and is recorded as such.
            return _unreadable_item(record)
        return ReviewItem(
            ref=str(record["id"]),
            task_key=str(record.get("external_id") or record["id"]),
            task_json=task_json if isinstance(task_json, str) else None,
            answers=answers,
            required_answers=self._min_submitted_of(str(record["dataset_id"])),
            emitted=metadata.get(ds.REVIEW_STATE) == ds.EMITTED,
            marks=Marks.from_json(metadata.get(EMITTED_MARK), metadata.get(FAILED_MARK)),
            where=_where(record),
        )

    def _min_submitted_of(self, dataset_id: str) -> int:
        known = self._min_submitted.get(dataset_id)
        if known is None:
            distribution = self.adapter.dataset(dataset_id).get("distribution") or {}
            known = int(distribution.get("min_submitted", 1))
            self._min_submitted[dataset_id] = known
        return known

    # -- what the collector writes ---------------------------------------------------------------

    def mark_emitted(self, item: ReviewItem, marks: Marks) -> None:
        metadata = self._metadata(item)
        metadata[ds.REVIEW_STATE] = ds.EMITTED
        metadata[EMITTED_MARK] = marks.to_json()["emitted"]
        metadata.pop(FAILED_MARK, None)
        self.adapter.update_record(item.ref, metadata=metadata)

    def mark_failed(self, item: ReviewItem, marks: Marks) -> None:
        metadata = self._metadata(item)
        metadata[FAILED_MARK] = marks.to_json()["failed"]
        self.adapter.update_record(item.ref, metadata=metadata)

    def send_back(self, item: ReviewItem, answers: Sequence[Answer], message: str) -> None:
        """Shows the message on the record, then turns the answers back into drafts.

        A draft keeps the reviewer's text but does not count as submitted, so Argilla puts the
        record back to pending and the reviewer finds it again with the error beside it. A
        dataset without the feedback field (only extraction datasets have it) gets the drafts only.
        """
        record = self.adapter.record(item.ref)
        fields = {**record["fields"], ds.REVIEW_FEEDBACK: message}
        try:
            self.adapter.update_record(item.ref, fields=fields)
        except ArgillaRejected as refused:
            log(logger, "feedback_refused", logging.WARNING, record=item.ref, error=str(refused)[:300])
        for answer in answers:
            self.adapter.update_response(answer.answer_id, answer.raw, DRAFT)

    def _metadata(self, item: ReviewItem) -> dict[str, Any]:
        # Metadata is replaced as a whole: start from what the record holds now.
        return dict(self.adapter.record(item.ref).get("metadata") or {})

    # -- notifications ---------------------------------------------------------------------------

    def notifications(
        self, on_item: Callable[[str], Awaitable[int]], stop: threading.Event
    ) -> WebhookApp | None:
        """Registers the collector's webhook with Argilla (retrying while Argilla is down) and
        returns the receiver; None if stopped meanwhile."""
        self.webhook = self._register_webhook(stop)
        if self.webhook is None:
            return None

        async def on_event(payload: dict[str, Any]) -> int:
            try:
                record_id = record_to_resolve(payload, self.bridge)
            except (AttributeError, KeyError, TypeError) as error:
                log(
                    logger,
                    "event_unreadable",
                    logging.WARNING,
                    type=str(payload.get("type")),
                    error=repr(error),
                )
                return 400
            return 200 if record_id is None else await on_item(record_id)

        return WebhookApp(
            self.webhook.get("secret"),
            urlparse(self.bridge.collector_public_url).path,
            on_event,
            self.metrics,
        )

    def _register_webhook(self, stop: threading.Event) -> dict[str, Any] | None:
        runtime = self.settings.runtime
        backoff = Backoff(runtime.retry_initial_seconds, runtime.retry_max_seconds)
        while not stop.is_set():
            try:
                return register_webhook(self.adapter, self.bridge.collector_public_url)
            except DependencyUnavailable as error:
                delay = backoff.next_delay(at_least=error.retry_after)
                log(
                    logger,
                    "waiting_for_argilla",
                    logging.WARNING,
                    retry_in_seconds=round(delay, 2),
                    error=str(error),
                )
                stop.wait(delay)
        return None

    def close(self) -> None:
        self.adapter.close()


def _where(record: dict[str, Any]) -> dict[str, str]:
    return {"topic": "argilla", "dataset": str(record.get("dataset_id")), "record": str(record.get("id"))}


def _unreadable_item(record: dict[str, Any]) -> ReviewItem:
    metadata = record.get("metadata") or {}
    task_json = metadata.get(ds.TASK_JSON)
    return ReviewItem(
        ref=str(record.get("id")),
        task_key=str(record.get("external_id") or record.get("id")),
        task_json=task_json if isinstance(task_json, str) else None,
        answers=(),
        required_answers=1,
        emitted=False,
        marks=Marks.from_json(metadata.get(EMITTED_MARK), metadata.get(FAILED_MARK)),
        where=_where(record),
    )
