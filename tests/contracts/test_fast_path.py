"""The codec's fast path writes byte for byte what the reference path (`to_avro_datum` + fastavro)
writes, for every event type, for outputs that embed an event already written (spliced), and for
values the fast writer hands back to the reference path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.band_router.policy import load_policy
from workers.band_router.routing import route
from workers.contracts import (
    EVENT_TYPES,
    Decision,
    EncodeError,
    Event,
    EventCodec,
    Item,
    ModelInfo,
    Prediction,
    ReviewTask,
    TaskKind,
    to_json,
)
from workers.errors import RejectedEvent

from .strategies import records

by_name = pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
POLICY = load_policy(Path(__file__).resolve().parents[2] / "deploy" / "policies" / "bands.toml")
JSON = [("content-type", b"application/json")]


@pytest.fixture(scope="module")
def fast() -> EventCodec:
    return EventCodec()


@pytest.fixture(scope="module")
def reference() -> EventCodec:
    return EventCodec(fast=False)


def outcome(codec: EventCodec, event: Event) -> bytes | tuple[str, str]:
    try:
        return codec.encode(event)
    except EncodeError as error:
        return ("EncodeError", str(error))


@by_name
@given(data=st.data())
def test_every_event_is_written_as_the_reference_writes_it(
    fast: EventCodec, reference: EventCodec, event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(records(event_type))

    assert fast.encode(event) == reference.encode(event)


@settings(max_examples=300)
@given(prediction=records(Prediction), audit_rate=st.sampled_from([0.0, 1.0]))
def test_band_router_outputs_from_json_input_are_the_reference_bytes(
    fast: EventCodec, reference: EventCodec, prediction: Prediction, audit_rate: float
) -> None:
    """Decoded as the runtime decodes it, routed, written: a decision and its audit task embed the
    same prediction, written once and spliced into the second."""
    decoded = fast.decode(to_json(prediction), JSON, Prediction)
    try:
        outputs = route(decoded, POLICY, datetime(2026, 3, 1, tzinfo=UTC))
    except RejectedEvent:
        return
    for output in outputs:
        assert fast.encode(output) == reference.encode(output)


@given(prediction=records(Prediction), data=st.data())
def test_an_event_written_alone_then_embedded_twice_is_spliced_as_written(
    fast: EventCodec, reference: EventCodec, prediction: Prediction, data: st.DataObject
) -> None:
    decision = data.draw(records(Decision, event_id=st.just(prediction.event_id), source=st.just(prediction)))
    task = data.draw(
        records(
            ReviewTask,
            kind=st.just(TaskKind.MODERATION),
            task_id=st.just(prediction.event_id),
            source=st.just(prediction),
        )
    )
    fast.decode(to_json(prediction), JSON, Prediction)  # a new message: nothing remembered

    assert fast.encode(prediction) == reference.encode(prediction)
    assert fast.encode(decision) == reference.encode(decision)
    assert fast.encode(task) == reference.encode(task)
    assert fast.encode(decision) == reference.encode(decision)


def unwritable_predictions() -> list[Prediction]:
    """Events the fast writer hands to the reference path (built unvalidated, as a buggy handler might)."""
    good = Prediction(
        event_id="6f1c2b8e-4a7d-4a53-9d0e-1f2a3b4c5d6e",
        occurred_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        source="s",
        task="moderation",
        model=ModelInfo(name="m", version="1"),
        item=Item(id="i", content_type="text/plain"),
        scores={"toxic": 0.5},
    )
    fields = dict(good)
    return [
        Prediction.model_construct(**{**fields, "source": "lone surrogate \ud800"}),
        Prediction.model_construct(**{**fields, "occurred_at": datetime(2025, 3, 1, 12, 30)}),
        Prediction.model_construct(**{**fields, "scores": {"toxic": "0.5"}}),
        Prediction.model_construct(**{**fields, "scores": {"toxic": True}}),
        Prediction.model_construct(**{**fields, "event_id": 42}),
        Prediction.model_construct(**{**fields, "trace_id": 42}),
        Prediction.model_construct(**{**fields, "item": {"id": "i", "content_type": "text/plain"}}),
    ]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("event", unwritable_predictions(), ids=lambda e: repr(e)[:60])
def test_what_the_fast_writer_cannot_write_gets_the_reference_result(
    fast: EventCodec, reference: EventCodec, event: Prediction
) -> None:
    assert outcome(fast, event) == outcome(reference, event)


def test_a_fast_encode_is_faster_than_the_reference() -> None:
    """Not a timed assertion: the fast writer is in use (it wrote without the reference path)."""
    codec = EventCodec()
    prediction = unwritable_predictions()[0].model_copy(update={"source": "s"})
    codec.encode(prediction)

    assert codec._writers[Prediction] is not None
