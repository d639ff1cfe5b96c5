"""The feedback-triage worker's fast path (JSON read by msgspec, or Avro of the current schema read
by fastavro and msgspec, into plain structs, triaged on plain values, stored by the same sink)
gives every message what the reference path (Pydantic, `triage`, fastavro) gives it: the same
review-task bytes, the same row in the `feedback` table, and for every changed or broken event the
same outputs or the same dead-letter reason and message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.contracts.strategies import records
from tests.feedback_triage.conftest import StoreFactory
from tests.feedback_triage.events import feedback
from tests.support.avro_changes import AVRO, avro_headers, changed_avro
from tests.support.fast_path import MAX_OUTPUT_BYTES, handled_both_ways, produced_or_dead_letter
from tests.support.json_changes import changed_json, json_values
from tests.support.messages import StoredMessage
from workers.contracts import EventCodec, Feedback, Rating, ReviewTask, encode, to_json
from workers.contracts.plain import PlainFeedback
from workers.feedback_triage.store import FeedbackStore, feedback_row
from workers.feedback_triage.triage import triage, triage_plain
from workers.runtime.batch import BatchHandler, MessageResult
from workers.runtime.worker import FastPath, Origin, Processed, WorkerSpec

NOW = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)
JSON = [("content-type", b"application/json")]
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "feedback.jsonl"
# Rates at which every thumbs-up is sampled, none is, and some are.
RATES = st.sampled_from([0.0, 0.3, 1.0])
REFERENCE = EventCodec(fast=False)


@pytest.fixture(scope="module")
def store(postgres_dsn: str) -> Iterator[FeedbackStore]:
    """The worker's sink; these tests build its rows without writing them."""
    sink = FeedbackStore(postgres_dsn)
    yield sink
    sink.close()


def triage_spec(store: FeedbackStore, rate: float) -> WorkerSpec:
    """The feedback-triage worker's spec (`feedback_triage.worker`) with a fixed clock."""
    return WorkerSpec(
        name="feedback-triage",
        input_topic="feedback",
        input_types=(Feedback,),
        handler=lambda event, _origin: triage(event, rate, NOW),
        outputs={ReviewTask: "review-tasks"},
        sink=store,
        fast_path=FastPath(PlainFeedback, lambda event: triage_plain(event, rate, NOW)),
    )


def consumed(value: bytes, headers: list[tuple[str, bytes]]) -> Any:
    return StoredMessage(value, headers, key=b"k", topic="feedback", offset=7, timestamp_ms=1_772_357_415_000)


def both_paths(
    store: FeedbackStore, value: bytes, rate: float = 0.3, headers: list[tuple[str, bytes]] = JSON
) -> tuple[MessageResult, MessageResult]:
    return handled_both_ways(triage_spec(store, rate), consumed(value, headers))


def took_fast_path(result: MessageResult) -> bool:
    return result.processed is not None and isinstance(result.processed.event, PlainFeedback)


Outcome = tuple[str, Any]


def outcome_of(result: MessageResult) -> Outcome:
    """What the runtime does with the message: its outputs and the row the sink writes, or its
    dead letter."""
    if result.rejection is not None:
        return produced_or_dead_letter(result)
    assert result.processed is not None
    row = tuple(value.obj if isinstance(value, Jsonb) else value for value in feedback_row(result.processed))
    return ("produced", [(e.topic, e.key, e.value) for e in result.encoded], row)


@given(event=records(Feedback), rate=RATES)
def test_the_fast_path_gives_the_reference_bytes_and_row_for_every_feedback(
    store: FeedbackStore, event: Feedback, rate: float
) -> None:
    fast, reference = both_paths(store, to_json(event), rate)

    assert took_fast_path(fast)
    assert outcome_of(fast) == outcome_of(reference)
    assert fast.event_time == reference.event_time
    assert fast.origin == reference.origin


FIELD_PATHS = [
    ("event_id",),
    ("occurred_at",),
    ("session_id",),
    ("question",),
    ("answer",),
    ("contexts",),
    ("rating",),
    ("comment",),
    ("user_id",),
    ("model",),
    ("model", "name"),
    ("model", "version"),
    ("prompt_version",),
]
RATINGS = ["up", "down", "UP", "Down", " up", "", 1, True, None]
CONTEXT_FIELDS = ["doc_id", "text", "score", "extra"]


def changed_rating(draw: st.DrawFn, document: dict[str, Any]) -> None:
    document["rating"] = draw(st.sampled_from(RATINGS))


def added_context(draw: st.DrawFn, document: dict[str, Any]) -> None:
    context = {"doc_id": "kb-1", "text": "t", "score": 0.5}
    value = draw(json_values() | st.sampled_from([1e400, -1e400, 7, -0.0, 1e308]))
    context[draw(st.sampled_from(CONTEXT_FIELDS))] = value
    document["contexts"] = [*document["contexts"], context]


@st.composite
def changed_feedback_json(draw: st.DrawFn) -> bytes:
    """A feedback event's JSON with one thing changed (`changed_json`), its rating, or a context."""
    document = json.loads(to_json(draw(records(Feedback))))
    duplicate = '"rating": "up", "rating": "down"'
    own = {"rating": changed_rating, "context": added_context}
    return changed_json(draw, document, FIELD_PATHS, duplicate, own)


@settings(max_examples=600)
@given(value=changed_feedback_json(), rate=RATES)
def test_a_changed_feedback_gets_the_reference_outputs_and_row_or_dead_letter_reason(
    store: FeedbackStore, value: bytes, rate: float
) -> None:
    fast, reference = both_paths(store, value, rate)

    assert outcome_of(fast) == outcome_of(reference)


def test_every_bundled_sample_takes_the_fast_path(store: FeedbackStore) -> None:
    spec = triage_spec(store, 0.3)
    handler = BatchHandler(spec, EventCodec(), MAX_OUTPUT_BYTES)
    reference = BatchHandler(spec, EventCodec(fast=False), MAX_OUTPUT_BYTES)
    lines = [line.encode() for line in SAMPLES.read_text().splitlines() if line.strip()]

    for line in lines:
        message = consumed(line, JSON)
        assert outcome_of(handler(message)) == outcome_of(reference(message))
    assert handler.fallbacks == 0
    assert len(lines) >= 50


def test_avro_feedback_takes_the_fast_path_to_the_reference_bytes_and_row(store: FeedbackStore) -> None:
    """As the gateway sends it: the sink gets the plain event, and writes the model's row."""
    fast, reference = both_paths(store, encode(feedback()), rate=1.0, headers=AVRO)

    assert took_fast_path(fast)
    assert outcome_of(fast) == outcome_of(reference)
    assert [e.topic for e in fast.encoded] == ["review-tasks"]
    assert fast.event_time == reference.event_time
    assert fast.origin == reference.origin


@settings(max_examples=150)
@given(event=records(Feedback), rate=RATES, headers=avro_headers)
def test_the_fast_path_gives_the_reference_bytes_and_row_for_every_feedback_in_avro(
    store: FeedbackStore, event: Feedback, rate: float, headers: list[tuple[str, bytes]]
) -> None:
    fast, reference = both_paths(store, REFERENCE.encode(event), rate, headers)

    assert took_fast_path(fast)
    assert outcome_of(fast) == outcome_of(reference)
    assert fast.event_time == reference.event_time
    assert fast.origin == reference.origin


@settings(max_examples=400)
@given(value=changed_avro(records(Feedback)), rate=RATES, headers=avro_headers)
def test_a_changed_feedback_in_avro_gets_the_reference_outputs_and_row_or_dead_letter_reason(
    store: FeedbackStore, value: bytes, rate: float, headers: list[tuple[str, bytes]]
) -> None:
    fast, reference = both_paths(store, value, rate, headers)

    assert outcome_of(fast) == outcome_of(reference)


def test_plain_events_and_models_in_one_batch_are_stored_alike(
    make_store: StoreFactory, pg_connection: psycopg.Connection
) -> None:
    """The same rows in the table, whichever path each event of the batch took."""
    events = [feedback(rating=rating, comment=comment) for rating in Rating for comment in (None, "no")]
    codec = EventCodec()
    plain = [codec.decode_plain(to_json(event), JSON, PlainFeedback) for event in events]
    batch = [
        Processed(plain[n] if n % 2 else event, Origin("feedback", 1, n, None))
        for n, event in enumerate(events)
    ]
    assert all(p is not None for p in plain)

    assert make_store().write(batch) == {}

    stored = pg_connection.execute(
        "SELECT event_id, occurred_at, contexts, rating, comment, source_offset FROM feedback"
        " ORDER BY source_offset"
    ).fetchall()
    assert stored == [
        (
            event.event_id,
            event.occurred_at,
            [context.model_dump() for context in event.contexts],
            event.rating.value,
            event.comment,
            n,
        )
        for n, event in enumerate(events)
    ]
