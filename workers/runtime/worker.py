"""What a worker is: a name, the topic it reads, the event types it accepts, and a plain handler.

A handler is a function from one decoded event (and where it came from) to zero or more outputs.
It does no I/O of its own; the runtime produces its outputs, commits, and dead-letters what it
rejects. A handler rejects an event it cannot route by raising `RejectedEvent`. A worker whose job
includes writing to another service (PostgreSQL, Argilla) gives that to a `Sink`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from workers.contracts import Event
from workers.errors import RejectedEvent


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event was read: the lineage a handler may copy into its outputs."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class Output:
    """One event to produce. The key keeps an entity's events in order and lets consumers deduplicate."""

    topic: str
    key: str
    event: Event


Handler = Callable[[Event, Origin], Iterable[Output]]


@dataclass(frozen=True, slots=True)
class Received:
    event: Event
    origin: Origin


class Sink(Protocol):
    """A worker's side effect on a service other than Kafka, done once per batch.

    `write` must be idempotent (an upsert keyed by event id): after a crash or a retry the same
    events are written again. It raises DependencyUnavailable when the service is down or slow;
    the runtime then pauses and retries the batch. It returns the events the service refused for
    their own content (a constraint), by index in `batch`; those go to the dead-letter topic.
    """

    def write(self, batch: Sequence[Received]) -> Mapping[int, RejectedEvent]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    input_topic: str
    input_types: tuple[type[Event], ...]
    handler: Handler
    output_topics: tuple[str, ...] = field(default=())
    sink: Sink | None = None
