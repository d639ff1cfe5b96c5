"""label-sink-decisions' fast path (decisions read from Avro into plain structs, mapped by the same
`from_decision`, the example written from its plain mirror) gives every message what the reference
path (fastavro, Pydantic, `handle_decision`) gives it: the same training example under the same
key, the same rows in PostgreSQL, and for a changed or broken decision the same dead letter."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.contracts.strategies import records
from tests.label_sink.conftest import StoreFactory
from tests.label_sink.events import decision, prediction
from tests.support import avro_changes
from tests.support.avro_changes import AVRO, avro_datum, changed_avro, written
from tests.support.fast_path import MAX_OUTPUT_BYTES, handled_both_ways, produced_or_dead_letter
from tests.support.messages import StoredMessage
from workers.band_router.policy import load_policy
from workers.band_router.routing import route
from workers.config import LabelSinkSettings, load_settings
from workers.contracts import Decision, DecisionOutcome, EventCodec, Prediction
from workers.contracts.plain import PlainDecision
from workers.label_sink.store import TRAINING_EXAMPLES, mapped_of, rows_of
from workers.label_sink.worker import label_sink_decisions
from workers.runtime.batch import BatchHandler, MessageResult
from workers.runtime.worker import WorkerSpec

REFERENCE = EventCodec(fast=False)
REPO = Path(__file__).resolve().parents[2]
POLICY = load_policy(REPO / "deploy" / "policies" / "bands.toml")
SAMPLE_PREDICTIONS = REPO / "samples" / "predictions.jsonl"
# Kafka timestamps of the input message, in ms: none (created_at is then the decision's time) or one.
TIMESTAMPS = st.sampled_from([0, 1_700_000_000_123, 1_764_590_400_000])


@pytest.fixture(scope="module")
def spec(postgres_dsn: str) -> Iterator[WorkerSpec]:
    """The worker as `hitl-workers run label-sink-decisions` builds it; its own sink never writes
    here (the store test writes with a store on its own schema)."""
    settings = load_settings(
        postgres_dsn=postgres_dsn, label_sink=LabelSinkSettings(include_auto_decisions=True)
    )
    built = label_sink_decisions(settings)
    yield built
    assert built.sink is not None
    built.sink.close()


def message(value: bytes, timestamp_ms: int = 1_700_000_000_123, offset: int = 7) -> Any:
    return StoredMessage(value, AVRO, topic="hitl.decisions", offset=offset, timestamp_ms=timestamp_ms)


def outcome_of(result: MessageResult) -> tuple[Any, Any]:
    """What the runtime produces or dead-letters, and the rows the sink writes for it."""
    rows = None if result.processed is None else rows_of(mapped_of(result.processed))
    return produced_or_dead_letter(result), rows


def took_fast_path(result: MessageResult) -> bool:
    return result.processed is not None and isinstance(result.processed.event, PlainDecision)


@settings(max_examples=150, deadline=None)
@given(prediction=records(Prediction), data=st.data(), timestamp_ms=TIMESTAMPS)
def test_a_generated_decision_gives_the_same_example_key_and_rows(
    spec: WorkerSpec, prediction: Prediction, data: st.DataObject, timestamp_ms: int
) -> None:
    event = data.draw(records(Decision, event_id=st.just(prediction.event_id), source=st.just(prediction)))
    fast, reference = handled_both_ways(spec, message(REFERENCE.encode(event), timestamp_ms))

    assert took_fast_path(fast)
    assert outcome_of(fast) == outcome_of(reference)


def test_the_band_router_s_decisions_of_the_bundled_samples_take_the_fast_path(spec: WorkerSpec) -> None:
    lines = SAMPLE_PREDICTIONS.read_text().splitlines()
    decisions = [
        output
        for line in lines
        if line.strip()
        for output in route(
            REFERENCE.decode(line.encode(), None, Prediction), POLICY, datetime(2026, 3, 1, tzinfo=UTC)
        )
        if isinstance(output, Decision)
    ]
    handler = BatchHandler(spec, EventCodec(), MAX_OUTPUT_BYTES)
    reference = BatchHandler(spec, REFERENCE, MAX_OUTPUT_BYTES)
    for offset, event in enumerate(decisions):
        consumed = message(REFERENCE.encode(event), offset=offset)
        assert outcome_of(handler(consumed)) == outcome_of(reference(consumed))
    assert handler.fallbacks == 0
    assert len(decisions) >= 50


# Values the schema can carry and the model refuses, or that the fast path must leave to it.
CHANGES: dict[str, tuple[avro_changes.Path, Any]] = {
    "score NaN": (("score",), math.nan),
    "score above 1": (("score",), 1.5),
    "band low above high": (("band",), {"low": 0.9, "high": 0.1}),
    "band NaN": (("band",), {"low": math.nan, "high": 0.5}),
    "a source score NaN": (("source", "scores"), {"toxic": math.nan}),
    "no source score": (("source", "scores"), {}),
    "another prediction's event id": (("event_id",), "0b6a6a5e-43b6-4a3e-9d6c-6f7a1d7bb9b1"),
    "decided in year 9999": (("decided_at",), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    "made in year 1": (("source", "occurred_at"), datetime(1, 1, 1, 0, 1, tzinfo=UTC)),
    "empty label": (("label",), ""),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_decision_the_schema_holds_and_the_model_may_refuse_gets_the_reference_outcome(
    spec: WorkerSpec, name: str
) -> None:
    datum = avro_datum(decision())
    datum.set(*CHANGES[name])
    fast, reference = handled_both_ways(spec, message(written(datum)))

    assert outcome_of(fast) == outcome_of(reference)


DECISIONS = records(Prediction).flatmap(
    lambda source: records(Decision, event_id=st.just(source.event_id), source=st.just(source))
)


@settings(max_examples=300, deadline=None)
@given(value=changed_avro(DECISIONS))
def test_a_changed_or_damaged_decision_gets_the_reference_outcome(spec: WorkerSpec, value: bytes) -> None:
    fast, reference = handled_both_ways(spec, message(value))

    assert outcome_of(fast) == outcome_of(reference)


# The columns the sink writes (the table also has when each row was stored).
COLUMNS = ", ".join(name for name, _type in TRAINING_EXAMPLES.columns)


def test_both_paths_store_the_same_rows(
    spec: WorkerSpec, make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    """Written to PostgreSQL by the sink: the fast path's batch, then the reference path's, after
    the table is emptied, leave the same rows."""
    events = [
        decision(prediction(0), label="toxic", score=0.95),
        decision(prediction(1), label="ok", score=0.02, outcome=DecisionOutcome.AUTO_REJECTED),
    ]
    messages = [message(REFERENCE.encode(event), offset=n) for n, event in enumerate(events)]
    store = make_store()
    stored = []
    for codec in (EventCodec(), REFERENCE):
        handler = BatchHandler(spec, codec, MAX_OUTPUT_BYTES)
        batch = [handler(consumed).processed for consumed in messages]
        assert all(processed is not None for processed in batch)
        assert store.write([p for p in batch if p is not None]) == {}
        rows = pg_connection.execute(f"SELECT {COLUMNS} FROM training_examples ORDER BY source_offset")
        stored.append(rows.fetchall())
        pg_connection.execute("TRUNCATE training_examples CASCADE")

    fast_rows, reference_rows = stored
    assert len(fast_rows) == len(events)
    assert fast_rows == reference_rows
