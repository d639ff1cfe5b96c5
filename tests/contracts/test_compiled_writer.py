"""The compiled Avro writer (`avro_program`, C) writes the bytes the Python writer writes, for every
event type and for the plain mirrors of the band-router's outputs, and refuses (`Unwritable`) what
it is not sure of, so that the codec takes the reference path. `test_fast_path` runs its proofs
against the reference path with both writers."""

from __future__ import annotations

import os
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.contracts import (
    EVENT_TYPES,
    Decision,
    EncodeError,
    Event,
    EventCodec,
    Prediction,
    SchemaRegistry,
)
from workers.contracts.avro_program import (
    COMPILED_WRITER_AVAILABLE,
    OP_LONG,
    OP_RECORD,
    compile_writer,
)
from workers.contracts.avro_writer import BodyMemo, Unwritable, Writer

from .strategies import records

by_name = pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
REGISTRY = SchemaRegistry.load()
EVENT_NAMES = frozenset(t.AVRO_NAME for t in REGISTRY.event_types)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    os.environ.get("HITL_COMPILED_WRITER") == "0", reason="the compiled writer is turned off"
)


def writers(event_type: type[Event]) -> tuple[BodyMemo, Writer, Writer]:
    schema = REGISTRY.current(event_type).schema
    memo = BodyMemo()
    compiled = compile_writer(schema, memo, EVENT_NAMES, compiled=True)
    python = compile_writer(schema, memo, EVENT_NAMES, compiled=False)
    return memo, compiled, python


def written(writer: Writer, memo: BodyMemo, value: Any) -> bytes | str:
    memo.clear()
    out = bytearray(b"prefix")
    try:
        writer(value, out)
    except Unwritable:
        return "unwritable"
    assert out.startswith(b"prefix"), "a writer appends to what is there"
    return bytes(out).removeprefix(b"prefix")


def test_the_extension_is_built_where_the_package_is_installed_with_a_compiler() -> None:
    """`make setup` builds it with the machine's gcc; without it every worker runs on the Python
    writer, about 8 µs slower per output."""
    assert COMPILED_WRITER_AVAILABLE, "workers/contracts/_avro_speedups.c was not built: is gcc installed?"
    _memo, compiled, python = writers(Prediction)
    assert type(compiled).__name__ == "Writer" and type(compiled) is not type(python)


@by_name
@given(data=st.data())
def test_every_event_is_written_as_the_python_writer_writes_it(
    event_type: type[Event], data: st.DataObject
) -> None:
    memo, compiled, python = writers(event_type)
    event = data.draw(records(event_type))

    assert written(compiled, memo, event) == written(python, memo, event)


@given(prediction=records(Prediction))
def test_an_embedded_event_is_spliced_from_the_shared_memo(prediction: Prediction) -> None:
    """Written once by either writer, the same object's body is spliced by the other."""
    memo, compiled, python = writers(Decision)
    codec = EventCodec(compiled_writer=False)
    decision = Decision(
        event_id=prediction.event_id,
        label="l",
        outcome="auto_accepted",
        score=0.5,
        band={"low": 0.1, "high": 0.9},
        band_source="default",
        policy_version="v",
        decided_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=prediction,
    )
    first = written(python, memo, decision)
    out = bytearray()
    compiled(decision, out)
    assert bytes(out) == first
    compiled(decision, out)  # the source's body is in the memo now
    assert bytes(out) == first + first
    assert codec.encode(decision).endswith(first)


def prediction_with(**changes: Any) -> Prediction:
    good = Prediction(
        event_id=UUID("6f1c2b8e-4a7d-4a53-9d0e-1f2a3b4c5d6e"),
        occurred_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        source="s",
        task="moderation",
        model={"name": "m", "version": "1"},
        item={"id": "i", "content_type": "text/plain"},
        scores={"toxic": 0.5},
    )
    return Prediction.model_construct(**{**dict(good), **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"source": "lone surrogate \ud800"},
        {"source": 7},
        {"occurred_at": datetime(2025, 3, 1, 12, 30)},
        {"occurred_at": "2025-03-01T12:30:00Z"},
        {"scores": {"toxic": "0.5"}},
        {"scores": {"toxic": True}},
        {"scores": {7: 0.5}},
        {"scores": OrderedDict(toxic=0.5)},
        {"event_id": 42},
        {"trace_id": 42},
        {"item": {"id": "i", "content_type": "text/plain"}},
    ],
    ids=repr,
)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_what_it_is_not_sure_of_is_refused_and_left_to_the_reference_path(changes: dict[str, Any]) -> None:
    memo, compiled, _python = writers(Prediction)
    value = prediction_with(**changes)

    assert written(compiled, memo, value) == "unwritable"
    assert outcome(EventCodec(compiled_writer=True), value) == outcome(EventCodec(fast=False), value)


def outcome(codec: EventCodec, event: Event) -> bytes | str:
    try:
        return codec.encode(event)
    except EncodeError as error:
        return f"EncodeError: {error}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (2**63 - 1, b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        (-(2**63), b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
    ],
)
def test_longs_are_zigzag_varints_to_the_ends_of_64_bits(value: int, expected: bytes) -> None:
    from workers.contracts.avro_program import CompiledWriter

    assert CompiledWriter is not None
    writer = CompiledWriter((OP_RECORD, (("real", (OP_LONG,)),)), Unwritable, UUID, EPOCH)
    out = bytearray()
    writer(value, out)  # an int's `.real` is itself
    assert bytes(out) == expected
    with pytest.raises(Unwritable):
        writer(2**63, bytearray())


@given(moment=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])))
def test_times_are_microseconds_since_the_epoch_at_any_offset(moment: datetime) -> None:
    memo, compiled, python = writers(Prediction)
    value = prediction_with(occurred_at=moment)

    assert written(compiled, memo, value) == written(python, memo, value)


@pytest.mark.parametrize(
    "program",
    [(), (99,), ("record",), (OP_RECORD, "fields"), (OP_RECORD, (("a",),)), (OP_RECORD, ((1, (OP_LONG,)),))],
    ids=repr,
)
def test_a_malformed_program_is_refused_when_the_writer_is_made(program: tuple[Any, ...]) -> None:
    from workers.contracts.avro_program import CompiledWriter

    assert CompiledWriter is not None
    with pytest.raises(ValueError, match="not a writer program"):
        CompiledWriter(program, Unwritable, UUID, EPOCH)
