"""What a worker is: a name, the topic it reads, the event types it accepts, and a plain handler.

A handler is a function from one decoded event (and where it came from) to zero or more outputs.
It does no I/O of its own; the runtime produces its outputs, commits, and dead-letters what it
rejects. A handler rejects an event it cannot route by raising `RejectedEvent`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from workers.contracts import Event


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


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    input_topic: str
    input_types: tuple[type[Event], ...]
    handler: Handler
    output_topics: tuple[str, ...] = field(default=())
