"""The label-sink workers: resolved reviews (and, when enabled, automatic decisions) become
training examples on `hitl.training.examples` and rows in PostgreSQL.

The runtime reads one topic per worker, so the two inputs are two workers, each its own consumer
group: `label-sink` reads `hitl.review.resolved`; `label-sink-decisions` reads `hitl.decisions`
and runs only when `label_sink.include_auto_decisions` is on. Both write through the same store,
before their examples are produced: a crash between the two writes the rows again, unchanged.
The handler hands its mapping of each message to the store, which would otherwise map it again.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.config import Settings
from workers.contracts import Decision, Event, ReviewResolution
from workers.errors import ConfigError, RejectedEvent
from workers.label_sink.mapping import Mapped, from_decision, from_resolution, training_example
from workers.label_sink.store import LabelStore
from workers.runtime.worker import Origin, Output, WorkerSpec
from workers.storage.postgres import open_pool

NAME = "label-sink"
DECISIONS_NAME = "label-sink-decisions"


def label_sink(settings: Settings) -> WorkerSpec:
    """The worker `hitl-workers run label-sink` runs."""
    return label_sink_spec(settings)


def label_sink_decisions(settings: Settings) -> WorkerSpec:
    """The worker `hitl-workers run label-sink-decisions` runs."""
    if not settings.label_sink.include_auto_decisions:
        raise ConfigError(
            f"{DECISIONS_NAME} writes automatic decisions as training examples:"
            " set HITL_LABEL_SINK__INCLUDE_AUTO_DECISIONS=true to run it"
        )
    return label_sink_decisions_spec(settings)


def label_sink_spec(
    settings: Settings, *, schema: str | None = None, pool_timeout: float = 10.0
) -> WorkerSpec:
    """The resolved-review worker, its tables in `schema` (else the DSN's search path);
    `pool_timeout` bounds the wait for a connection, after which the batch is retried later."""
    store = _store(settings, schema, pool_timeout)
    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.review_resolved,
        input_types=(ReviewResolution,),
        handler=_handler(settings.topics.training_examples, _map_resolution, store),
        output_topics=(settings.topics.training_examples,),
        sink=store,
    )


def label_sink_decisions_spec(
    settings: Settings, *, schema: str | None = None, pool_timeout: float = 10.0
) -> WorkerSpec:
    """The automatic-decision worker, whatever the setting (`label_sink_decisions` checks it)."""
    store = _store(settings, schema, pool_timeout)
    return WorkerSpec(
        name=DECISIONS_NAME,
        input_topic=settings.topics.decisions,
        input_types=(Decision,),
        handler=_handler(settings.topics.training_examples, _map_decision, store),
        output_topics=(settings.topics.training_examples,),
        sink=store,
    )


def _map_resolution(event: Event, origin: Origin) -> Mapped:
    if not isinstance(event, ReviewResolution):
        raise RejectedEvent("wrong_event_type", f"expected a ReviewResolution, got {type(event).__name__}")
    return from_resolution(event, origin)


def _map_decision(event: Event, origin: Origin) -> Mapped:
    if not isinstance(event, Decision):
        raise RejectedEvent("wrong_event_type", f"expected a Decision, got {type(event).__name__}")
    return from_decision(event, origin)


def _handler(
    topic: str, mapper: Callable[[Event, Origin], Mapped], store: LabelStore | None = None
) -> Callable[[Event, Origin], list[Output]]:
    def handle(event: Event, origin: Origin) -> list[Output]:
        mapped = mapper(event, origin)
        if store is not None:
            store.remember(event, mapped)
        if mapped.example is None:
            return []
        return [Output(topic, str(mapped.example.example_id), training_example(mapped.example))]

    return handle


def _store(settings: Settings, schema: str | None, pool_timeout: float) -> LabelStore:
    pool = open_pool(
        settings.postgres_dsn.get_secret_value(),
        schema=schema,
        timeout=pool_timeout,
        autocommit=True,
        limits=settings.postgres,
    )
    return LabelStore(pool)
