"""Which group of a review tool a task goes to (an Argilla dataset, a Label Studio project).

One group per task kind, split further where the tool fixes something when the group is made
that differs between tasks:

- moderation: one group per (model task, label set, text or image). The labels offered cannot
  change once the group exists, so keying it by its sorted label set (a short hash in the name)
  gives every label set a group of its own. Reviewers see one group per task and label set.
- rag_answer: one group.
- extraction: one group per schema name (versions share it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from workers.contracts import Extraction, Prediction, ReviewTask, TaskKind

_NAME_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True)
class TaskGroup:
    name: str
    """`<prefix>-<kind>-...`, lower case, at most 200 characters."""
    kind: TaskKind
    labels: tuple[str, ...] = ()
    """moderation: the labels, sorted."""
    image: bool = False
    """moderation: the items are images the tool can show."""
    schema_name: str | None = None
    """extraction: the schema the corrections must match."""


def task_group(task: ReviewTask, prefix: str) -> TaskGroup:
    source = task.source
    if isinstance(source, Prediction):
        labels = tuple(sorted(source.scores))
        image = is_image(source)
        name = group_name(
            prefix, "moderation", source.task, _short_hash(labels), *(["image"] if image else [])
        )
        return TaskGroup(name, TaskKind.MODERATION, labels=labels, image=image)
    if isinstance(source, Extraction):
        name = group_name(prefix, "extraction", source.schema_name)
        return TaskGroup(name, TaskKind.EXTRACTION, schema_name=source.schema_name)
    return TaskGroup(group_name(prefix, "rag_answer"), TaskKind.RAG_ANSWER)


def is_image(prediction: Prediction) -> bool:
    return prediction.item.content_type.startswith("image/") and prediction.item.uri is not None


def group_name(prefix: str, *parts: str) -> str:
    return "-".join(_NAME_UNSAFE.sub("_", part.lower()).strip("_") or "_" for part in (prefix, *parts))[:200]


def _short_hash(labels: tuple[str, ...]) -> str:
    return hashlib.sha256("\x1f".join(labels).encode()).hexdigest()[:8]
