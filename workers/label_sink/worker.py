"""The label-sink workers: resolved reviews (and, when enabled, automatic decisions) become
training examples on `hitl.training.examples` and rows in PostgreSQL.

The runtime reads one topic per worker, so the two inputs are two workers, each its own consumer
group: `label-sink` reads `hitl.review.resolved`; `label-sink-decisions` reads `hitl.decisions`
and runs only when `label_sink.include_auto_decisions` is on. The handler maps each message to its
example (the output, keyed by example id) and its rows (the effect); the store writes the rows
before the examples are produced: a crash between the two writes the rows again, unchanged.

Automatic decisions come at the model's rate, so `label-sink-decisions` has a fast path (plain
decisions read from Avro, the same mapping, the example written from a plain mirror); resolved
reviews come at the reviewers' rate and take the models' path only.
"""

from __future__ import annotations

from workers.config import Settings
from workers.contracts import Decision, ReviewResolution, TrainingExample
from workers.contracts.plain import PlainDecision
from workers.errors import ConfigError
from workers.label_sink.mapping import (
    Mapped,
    from_decision,
    from_resolution,
    plain_training_example,
    training_example,
)
from workers.label_sink.store import LabelStore
from workers.runtime.worker import FastPath, Handled, Origin, Output, PlainHandled, PlainOutput, WorkerSpec
from workers.storage.postgres import open_pool

NAME = "label-sink"
DECISIONS_NAME = "label-sink-decisions"


def label_sink(settings: Settings, *, schema: str | None = None, pool_timeout: float = 10.0) -> WorkerSpec:
    """The resolved-review worker (`hitl-workers run label-sink`), its tables in `schema` (else the
    DSN's search path); `pool_timeout` bounds the wait for a connection, after which the batch is
    retried later."""
    return WorkerSpec(
        name=NAME,
        input_topic=settings.topics.review_resolved,
        input_types=(ReviewResolution,),
        handler=handle_resolution,
        outputs={TrainingExample: settings.topics.training_examples},
        sink=_store(settings, schema, pool_timeout),
    )


def label_sink_decisions(
    settings: Settings, *, schema: str | None = None, pool_timeout: float = 10.0
) -> WorkerSpec:
    """The automatic-decision worker (`hitl-workers run label-sink-decisions`)."""
    if not settings.label_sink.include_auto_decisions:
        raise ConfigError(
            f"{DECISIONS_NAME} writes automatic decisions as training examples:"
            " set HITL_LABEL_SINK__INCLUDE_AUTO_DECISIONS=true to run it"
        )
    return WorkerSpec(
        name=DECISIONS_NAME,
        input_topic=settings.topics.decisions,
        input_types=(Decision,),
        handler=handle_decision,
        outputs={TrainingExample: settings.topics.training_examples},
        sink=_store(settings, schema, pool_timeout),
        fast_path=FastPath(PlainDecision, handle_plain_decision, needs_origin=True),
    )


def handle_resolution(resolution: ReviewResolution, origin: Origin) -> Handled:
    return _handled(from_resolution(resolution, origin))


def handle_decision(decision: Decision, origin: Origin) -> Handled:
    return _handled(from_decision(decision, origin))


def handle_plain_decision(decision: PlainDecision, origin: Origin) -> PlainHandled:
    """`handle_decision` on the fast path: the same example and rows, without the models."""
    mapped = from_decision(decision, origin)
    assert mapped.example is not None  # every decision is an example
    example = plain_training_example(mapped.example)
    return PlainHandled((PlainOutput(example, str(example.example_id)),), effect=mapped)


def _handled(mapped: Mapped) -> Handled:
    """The example, keyed by its id, to produce; the rows, from the same mapping, for the store."""
    if mapped.example is None:
        return Handled(effect=mapped)
    example = training_example(mapped.example)
    return Handled((Output(example, str(example.example_id)),), effect=mapped)


def _store(settings: Settings, schema: str | None, pool_timeout: float) -> LabelStore:
    pool = open_pool(
        settings.postgres_dsn.get_secret_value(),
        schema=schema,
        timeout=pool_timeout,
        autocommit=True,
        limits=settings.postgres,
    )
    return LabelStore(pool)
