"""What a worker is: a name, the topic it reads, the event types it accepts, the event types it
produces (each with its topic), a plain handler, and an optional sink.

A handler is a function from one decoded event (and where it came from) to what should follow
from it: zero or more events to produce, and, for a worker with a sink, what the sink is to write
for it. It does no I/O of its own. The runtime checks the input's type before the handler sees it
(a wrong type is the `wrong_event_type` dead letter), sends each output to the topic declared for
its type (keyed by the input event's id unless the output says otherwise), refuses an output whose
type has no declared topic, produces, commits, and dead-letters what the handler rejects by
raising `RejectedEvent`.

A worker may also give a `FastPath`: its handler again, on plain values (`workers.contracts.plain`)
that the codec reads and writes without the event models. The runtime tries it first; whatever it
leaves (by returning None or raising), and whatever the codec cannot read or write plainly, takes
the handler's path, so outputs and dead-letter reasons are the handler's. A worker with both a
fast path and a sink hands its sink plain events too, for the messages the fast path took.

A worker whose job includes writing to another service (PostgreSQL, Argilla) gives that to a
`Sink`, which receives every accepted event of the batch with what its handler decided. A worker
whose whole job is the side effect declares no outputs and may leave out the handler: its sink
then gets each event as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from workers.contracts import Event
from workers.contracts.plain import PlainEvent, PlainInput
from workers.errors import RejectedEvent
from workers.reasons import Reason

UNDECLARED_OUTPUT = Reason.UNDECLARED_OUTPUT


class Origin(NamedTuple):
    """Where an event was read: the lineage a handler may copy into its outputs. (A named tuple:
    the runtime makes one per message, in a third of a frozen dataclass's time.)"""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class Output:
    """One event to produce with a key of its own; a plain event yielded by a handler is keyed by
    the input event's id. The key keeps an entity's events in order and lets consumers deduplicate."""

    event: Event
    key: str


@dataclass(frozen=True, slots=True)
class Handled:
    """What a handler decided for one event: the events to produce, and what the sink is to write."""

    outputs: tuple[Event | Output, ...] = ()
    effect: Any = None


HandlerResult = Iterable[Event | Output] | Handled
Handler = Callable[[Any, Origin], HandlerResult]
"""`(event, origin) -> outputs or Handled`; the event is of one of the spec's input types."""


@dataclass(frozen=True, slots=True)
class Routed:
    """An output with the topic the spec declares for it."""

    topic: str
    key: str
    event: Event


@dataclass(frozen=True, slots=True)
class Processed:
    """An accepted event of the batch, as the sink receives it: with its outputs and its effect.
    `event` is the plain mirror of the model (`PlainInput`) where the fast path took the message,
    which leaves `outputs` empty, and `effect` too unless the fast handler gave one."""

    event: Event | PlainInput
    origin: Origin
    outputs: tuple[Routed, ...] = ()
    effect: Any = None


class Sink(Protocol):
    """A worker's side effect on a service other than Kafka, done once per batch.

    `write` must be idempotent (an upsert keyed by event id): after a crash or a retry the same
    events are written again. It raises DependencyUnavailable when the service is down or slow;
    the runtime then pauses and retries the batch. It returns the events the service refused for
    their own content (a constraint), by index in `batch`; those go to the dead-letter topic.
    """

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]: ...

    def close(self) -> None: ...


class PlainOutput(NamedTuple):
    """A plain output with a key of its own, as `Output` is for a model."""

    event: PlainEvent
    key: str


@dataclass(frozen=True, slots=True)
class PlainHandled:
    """What a fast handler decided, as `Handled`: the plain outputs, and what the sink is to write."""

    outputs: Sequence[PlainEvent | PlainOutput] = ()
    effect: Any = None


@dataclass(frozen=True, slots=True)
class FastPath:
    """The handler on plain values: `input` is the plain mirror of the input type the codec decodes;
    `handler` makes the plain mirrors of the same outputs (keyed by the input's id unless a
    `PlainOutput` says otherwise), or a `PlainHandled` with the effect for the sink, or None to
    leave the event to the handler. It must decide as the handler does; a test proves it byte for
    byte. With `needs_origin`, it is called with the origin too, as the handler is. The worker's
    sink, if it has one, gets the handler's effect where the fast handler gives one, and must
    otherwise write a plain event as it writes its model."""

    input: type[PlainInput]
    handler: Callable[..., Sequence[PlainEvent | PlainOutput] | PlainHandled | None]
    needs_origin: bool = False


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    input_topic: str
    input_types: tuple[type[Event], ...]
    handler: Handler | None = None
    outputs: Mapping[type[Event], str] = field(default_factory=dict)
    """The topic of each event type the handler produces."""
    sink: Sink | None = None
    fast_path: FastPath | None = None

    def __post_init__(self) -> None:
        if self.fast_path is not None and self.handler is None:
            raise ValueError(f"worker {self.name!r}: a fast path needs a handler")
        if self.handler is None and self.sink is None:
            raise ValueError(f"worker {self.name!r} has neither a handler nor a sink")
        if self.handler is None and self.outputs:
            raise ValueError(f"worker {self.name!r} declares outputs but has no handler to make them")

    @property
    def output_topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.outputs.values()))

    def handle(self, event: Event, origin: Origin) -> Processed:
        """The handler's decision for `event`, its outputs keyed and checked against the spec."""
        if self.handler is None:
            return Processed(event, origin)
        result = self.handler(event, origin)
        if not isinstance(result, Handled):
            result = Handled(tuple(result))
        default_key = event.key
        outputs = tuple(
            Routed(self.topic_for(output.event), output.key, output.event)
            if isinstance(output, Output)
            else Routed(self.topic_for(output), default_key, output)
            for output in result.outputs
        )
        return Processed(event, origin, outputs, result.effect)

    def topic_for(self, event: Event) -> str:
        topic = self.outputs.get(type(event))
        if topic is None:
            declared = ", ".join(t.__name__ for t in self.outputs) or "none"
            raise RejectedEvent(
                UNDECLARED_OUTPUT,
                f"worker {self.name!r} made a {type(event).__name__}, which it does not declare"
                f" (declared outputs: {declared})",
            )
        return topic
