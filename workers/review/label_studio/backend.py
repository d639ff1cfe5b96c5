"""The Label Studio backend of the review package (`workers.review.backend.ReviewBackend`).

- publish: each batch is grouped by project (`projects.project_spec_for`), the projects made when
  missing (with the collector's webhook copied onto them when one exists), then the tasks the
  batch's tasks already have are looked up by task id: a replayed task is left as the collector
  left it (`tasks.replay_update`), so finished work is never reopened and nothing is duplicated.
  New tasks are imported in bulks of `publish_batch_size`; when Label Studio refuses a bulk, the
  tasks are imported one by one so that only the one at fault is refused, with its message.
- items are tasks; answers are their annotations; the marks are in the task's `meta`; sending back
  writes the message in the task's `review_feedback` (shown to annotators) and turns the
  annotations into drafts, so the task is no longer completed and comes back to the queue.
- notifications are Label Studio's webhooks, one per project with a secret header; candidates are
  the tasks of this backend's projects that hold annotations, skipped ones included.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from workers.config import Settings
from workers.contracts import ReviewTask
from workers.errors import DependencyUnavailable, RejectedEvent
from workers.logs import log
from workers.review.backend import Answer, Marks, ReviewItem, refusals_with_copies
from workers.review.label_studio import projects as ps
from workers.review.label_studio import tasks as ts
from workers.review.label_studio.client import LabelStudioClient, LabelStudioRejected
from workers.review.label_studio.webhooks import (
    LabelStudioWebhookApp,
    ensure_webhooks,
    existing_secret,
    webhook_secret,
)
from workers.review.metrics import CollectorMetrics
from workers.runtime.backoff import Backoff
from workers.runtime.worker import Processed

logger = logging.getLogger("hitl.label_studio")

LOOKUP_CHUNK = 50
"""Task ids looked up per request (an OR of filters)."""
ANNOTATED = (
    {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0},
    {"filter": "filter:tasks:cancelled_annotations", "operator": "greater", "type": "Number", "value": 0},
)


class LabelStudioBackend:
    name = "label-studio"

    def __init__(
        self,
        settings: Settings,
        client: LabelStudioClient | None = None,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.options = settings.label_studio
        self.client = client or LabelStudioClient(settings)
        self.metrics = metrics or CollectorMetrics()
        self.webhook_url = self.options.collector_public_url
        self.secret: str | None = None
        self._project_ids: dict[str, int] = {}
        self._required: dict[int, int] = {}
        self._lock = threading.Lock()

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        specs: dict[str, ps.ProjectSpec] = {}
        by_project: dict[str, list[tuple[int, ReviewTask]]] = {}
        for index, processed in enumerate(batch):
            task = processed.event
            assert isinstance(task, ReviewTask)
            spec = ps.project_spec_for(
                task, self.options.project_prefix, self.settings.argilla_bridge.min_submitted
            )
            specs.setdefault(spec.title, spec)
            by_project.setdefault(spec.title, []).append((index, task))
        refused: dict[int, RejectedEvent] = {}
        for title, members in by_project.items():
            try:
                project_id = self._project_id(specs[title])
            except LabelStudioRejected as error:
                refused.update({index: error for index, _ in members})
                continue
            refused.update(refusals_with_copies(members, self._publish_to(project_id, members)))
        return refused

    def _publish_to(
        self, project_id: int, members: Sequence[tuple[int, ReviewTask]]
    ) -> dict[int, RejectedEvent]:
        # The last of a task's copies in the batch wins.
        latest = {str(task.task_id): (index, ts.task_for(task)) for index, task in members}
        stored = self._stored_tasks(project_id, list(latest))
        new: list[tuple[int, ts.LabelStudioTask]] = []
        for task_id, (index, fresh) in latest.items():
            if task_id not in stored:
                new.append((index, fresh))
                continue
            update = ts.replay_update(fresh, stored[task_id])
            if update is not None:
                self.client.update_task(int(stored[task_id]["id"]), **update)
        refused: dict[int, RejectedEvent] = {}
        size = self.options.publish_batch_size
        for start in range(0, len(new), size):
            refused.update(self._import(project_id, new[start : start + size]))
        return refused

    def _import(
        self, project_id: int, items: Sequence[tuple[int, ts.LabelStudioTask]]
    ) -> dict[int, RejectedEvent]:
        try:
            self.client.import_tasks(project_id, [task for _, task in items])
            return {}
        except LabelStudioRejected as error:
            if len(items) == 1:
                return {items[0][0]: error}
        # An import is refused as a whole: one by one, only the task at fault is refused.
        refused: dict[int, RejectedEvent] = {}
        for index, task in items:
            try:
                self.client.import_tasks(project_id, [task])
            except LabelStudioRejected as error:
                refused[index] = error
        return refused

    def _stored_tasks(self, project_id: int, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The tasks already in the project under these task ids (the oldest, if there are two)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(task_ids), LOOKUP_CHUNK):
            filters = [
                {
                    "filter": f"filter:tasks:data.{ps.TASK_ID}",
                    "operator": "equal",
                    "type": "String",
                    "value": task_id,
                }
                for task_id in task_ids[start : start + LOOKUP_CHUNK]
            ]
            for stored in self.client.tasks(project_id, filters):
                task_id = str((stored.get("data") or {}).get(ps.TASK_ID))
                if task_id not in found or int(stored["id"]) < int(found[task_id]["id"]):
                    found[task_id] = stored
        return found

    def _project_id(self, spec: ps.ProjectSpec) -> int:
        with self._lock:
            known = self._project_ids.get(spec.title)
            if known is not None:
                return known
            project_id = self._find_project(spec.title)
            if project_id is None:
                made = self.client.create_project(
                    spec.title, spec.label_config, spec.description, spec.maximum_annotations
                )
                # Two publishers may make the same project at once: the oldest one is kept.
                project_id = self._find_project(spec.title) or int(made["id"])
                if project_id != int(made["id"]):
                    self.client.delete_project(int(made["id"]))
                self._copy_webhook(project_id)
            self._project_ids[spec.title] = project_id
            return project_id

    def _find_project(self, title: str) -> int | None:
        ids = [int(project["id"]) for project in self.client.projects() if project.get("title") == title]
        return min(ids) if ids else None

    def _copy_webhook(self, project_id: int) -> None:
        """Gives a new project the collector's webhook, when the collector registered one already."""
        secret = self._known_secret()
        if secret is not None:
            ensure_webhooks(self.client, self.webhook_url, secret, [project_id])

    def _known_secret(self) -> str | None:
        return self.secret or existing_secret(self.client, self.webhook_url)

    def our_projects(self) -> list[dict[str, Any]]:
        prefix = self.options.project_prefix + "-"
        return [
            project for project in self.client.projects() if str(project.get("title", "")).startswith(prefix)
        ]

    # -- items -----------------------------------------------------------------------------------

    def item(self, ref: str) -> ReviewItem:
        return self._item_of(self.client.task(int(ref)))

    def candidates(self) -> Iterator[ReviewItem]:
        projects = self.our_projects()
        if self.secret is not None:
            # Projects made since the last pass get the webhook too.
            ensure_webhooks(self.client, self.webhook_url, self.secret, [int(p["id"]) for p in projects])
        for project in projects:
            try:
                found = list(self.client.tasks(int(project["id"]), ANNOTATED))
            except DependencyUnavailable:
                raise
            except Exception as error:  # one project must not hold back the others
                log(
                    logger,
                    "candidates_failed",
                    logging.WARNING,
                    project=project.get("title"),
                    error=repr(error)[:500],
                )
                continue
            for stored in found:
                yield self._item_of(stored)

    def _item_of(self, stored: dict[str, Any]) -> ReviewItem:
        meta = stored.get("meta") or {}
        task_json = meta.get(ts.TASK_JSON)
        try:
            answers: tuple[Answer, ...] = tuple(ts.answers_of(stored))
        except Exception as error:  # the resolution fails and is recorded as such
            log(
                logger,
                "task_unreadable",
                logging.WARNING,
                task=str(stored.get("id")),
                error=repr(error)[:300],
            )
            answers, task_json = (), None
        return ReviewItem(
            ref=str(stored["id"]),
            task_key=str((stored.get("data") or {}).get(ps.TASK_ID) or stored["id"]),
            task_json=task_json if isinstance(task_json, str) else None,
            answers=answers,
            required_answers=self._required_of(int(stored["project"])),
            emitted=meta.get(ts.REVIEW_STATE) == ts.EMITTED,
            marks=Marks.from_json(meta.get(ts.EMITTED_MARK), meta.get(ts.FAILED_MARK)),
            where={
                "topic": "label-studio",
                "project": str(stored.get("project")),
                "task": str(stored.get("id")),
            },
        )

    def _required_of(self, project_id: int) -> int:
        known = self._required.get(project_id)
        if known is None:
            known = max(1, int(self.client.project(project_id).get("maximum_annotations") or 1))
            self._required[project_id] = known
        return known

    # -- what the collector writes ---------------------------------------------------------------

    def mark_emitted(self, item: ReviewItem, marks: Marks) -> None:
        meta = self._meta(item)
        meta[ts.REVIEW_STATE] = ts.EMITTED
        meta[ts.EMITTED_MARK] = marks.to_json()["emitted"]
        meta.pop(ts.FAILED_MARK, None)
        self.client.update_task(int(item.ref), meta=meta)

    def mark_failed(self, item: ReviewItem, marks: Marks) -> None:
        meta = self._meta(item)
        meta[ts.FAILED_MARK] = marks.to_json()["failed"]
        self.client.update_task(int(item.ref), meta=meta)

    def send_back(self, item: ReviewItem, answers: Sequence[Answer], message: str) -> None:
        """Shows the message (with the answers it refers to) on the task, then turns the answers into drafts.

        Label Studio keeps a converted annotation as a draft of the backend's own user, not of the
        annotator: the message quotes each answer's text so that its author can start from it.
        """
        stored = self.client.task(int(item.ref))
        quoted = "".join(_quoted(answer) for answer in answers)
        data = {**(stored.get("data") or {}), ps.REVIEW_FEEDBACK: "REVIEW FEEDBACK\n" + message + quoted}
        self.client.update_task(int(item.ref), data=data)
        for answer in answers:
            try:
                self.client.convert_to_draft(int(answer.answer_id))
            except LabelStudioRejected as error:
                if error.status_code != 404:  # already gone
                    raise

    def _meta(self, item: ReviewItem) -> dict[str, Any]:
        # Meta is replaced as a whole: start from what the task holds now.
        return dict(self.client.task(int(item.ref)).get("meta") or {})

    # -- notifications ---------------------------------------------------------------------------

    def notifications(
        self, on_item: Callable[[str], Awaitable[int]], stop: threading.Event
    ) -> LabelStudioWebhookApp | None:
        """Registers the webhook on every project of this backend (retrying while Label Studio is
        down) and returns the receiver; None if stopped meanwhile."""
        runtime = self.settings.runtime
        backoff = Backoff(runtime.retry_initial_seconds, runtime.retry_max_seconds)
        while not stop.is_set():
            try:
                secret = webhook_secret(self.client, self.webhook_url)
                ensure_webhooks(
                    self.client, self.webhook_url, secret, [int(p["id"]) for p in self.our_projects()]
                )
                self.secret = secret
                break
            except DependencyUnavailable as error:
                delay = backoff.next_delay(at_least=error.retry_after)
                log(
                    logger,
                    "waiting_for_label_studio",
                    logging.WARNING,
                    retry_in_seconds=round(delay, 2),
                    error=str(error),
                )
                stop.wait(delay)
        if self.secret is None:
            return None

        project_prefix = self.options.project_prefix + "-"

        def in_scope(payload: dict[str, Any]) -> bool:
            project = payload.get("project")
            return isinstance(project, dict) and str(project.get("title", "")).startswith(project_prefix)

        return LabelStudioWebhookApp(
            self.secret, urlparse(self.webhook_url).path, on_item, in_scope, self.metrics
        )

    def close(self) -> None:
        self.client.close()


def _quoted(answer: Answer) -> str:
    texts = [
        f"{question}: {value}" for question, value in sorted(answer.values.items()) if isinstance(value, str)
    ]
    return ("\n\nYour answer was:\n" + "\n".join(texts)) if texts else ""
