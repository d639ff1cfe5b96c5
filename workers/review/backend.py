"""What a review backend (Argilla, Label Studio, ...) implements, and the neutral shapes it speaks.

The review package does everything that does not depend on the tool: which answers resolve a
task and how (`answers`), emitting resolutions and dead letters, isolating failures and
reconciling (`collecting`), and the two processes (`publisher`, `collector`). A backend only
moves tasks and answers between those and its tool:

    publish(batch)            log review tasks as items of the tool, keyed by task id (a replay
                              never duplicates nor reopens one); returns the tasks it refused
    item(ref)                 one item as it is now: its task, its answers, the marks on it
    candidates()              items that may hold answers not yet resolved (the reconciliation)
    mark_emitted(item, marks) record on the item that its resolution (this revision) is emitted
    mark_failed(item, marks)  record that these answers failed, so that they are not tried again
    send_back(item, answers, message)
                              return answers to their reviewers with the message, as unfinished
    notifications(on_item, stop)
                              the receiver of the tool's notifications (webhooks): its `path` and
                              its `receive`, an ASGI callable for one POST there, calling
                              `on_item(ref)` for each item they concern; None if stopped first
    close()

Everything it reads is given back as a `ReviewItem`: answers with plain values per question
(the names in `answers`), in the order they were given.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from workers.contracts import ReviewTask
from workers.errors import RejectedEvent
from workers.runtime.worker import Processed

SUBMITTED = "submitted"
DISCARDED = "discarded"
DRAFT = "draft"


@dataclass(frozen=True)
class Answer:
    """One reviewer's answer to an item."""

    answer_id: str
    reviewer: str
    status: str
    """`submitted`, `discarded` or `draft`."""
    values: Mapping[str, Any]
    """The answer to each question, by question name."""
    at: datetime
    raw: Any = field(default=None, compare=False, repr=False)
    """What the backend needs to hand the answer back (its own form of the values)."""

    def value(self, question: str) -> Any:
        return self.values.get(question)


@dataclass(frozen=True)
class Marks:
    """What the collector wrote on an item: its emitted revision and answers, and a failure."""

    revision: int | None = None
    emitted_answers: str | None = None
    failed: str | None = None
    failed_reason: str | None = None

    def to_json(self) -> dict[str, str]:
        """The marks as the two JSON texts a backend stores (`emitted`, `failed`)."""
        stored = {}
        if self.revision is not None:
            stored["emitted"] = json.dumps({"revision": self.revision, "answers": self.emitted_answers})
        if self.failed is not None:
            stored["failed"] = json.dumps({"what": self.failed, "reason": self.failed_reason})
        return stored

    @classmethod
    def from_json(cls, emitted: Any, failed: Any) -> Marks:
        emitted_mark, failed_mark = _json_object(emitted), _json_object(failed)
        revision = emitted_mark.get("revision")
        return cls(
            revision=revision if isinstance(revision, int) and revision >= 1 else None,
            emitted_answers=_str_or_none(emitted_mark.get("answers")),
            failed=_str_or_none(failed_mark.get("what")),
            failed_reason=_str_or_none(failed_mark.get("reason")),
        )


@dataclass(frozen=True)
class ReviewItem:
    """A task as the review tool holds it, with its answers."""

    ref: str
    """The backend's id of the item (what `item(ref)` takes)."""
    task_key: str
    """The task id it was published under."""
    task_json: str | None
    """The task as published, JSON; None when the item does not carry it."""
    answers: tuple[Answer, ...]
    required_answers: int
    emitted: bool
    marks: Marks
    where: Mapping[str, str] = field(default_factory=dict)
    """Where the item is, for a dead letter's headers (`dataset`, `record`, ...)."""


class Receiver(Protocol):
    path: str

    async def receive(self, scope: Any, receive: Any, send: Any) -> None: ...


class ReviewBackend(Protocol):
    name: str

    def publish(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]: ...

    def item(self, ref: str) -> ReviewItem: ...

    def candidates(self) -> Iterable[ReviewItem]: ...

    def mark_emitted(self, item: ReviewItem, marks: Marks) -> None: ...

    def mark_failed(self, item: ReviewItem, marks: Marks) -> None: ...

    def send_back(self, item: ReviewItem, answers: Sequence[Answer], message: str) -> None: ...

    def notifications(self, on_item: Callable[[str], Awaitable[int]], stop: Any) -> Receiver | None: ...

    def close(self) -> None: ...


def refusals_with_copies(
    members: Sequence[tuple[int, ReviewTask]], refused: Mapping[int, RejectedEvent]
) -> dict[int, RejectedEvent]:
    """The refusals, extended to every copy in the batch of a refused task."""
    by_task = {task.task_id: refused[index] for index, task in members if index in refused}
    return {index: by_task[task.task_id] for index, task in members if task.task_id in by_task}


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
