"""The compiled Avro reader (`avro_read_program`, C) returns exactly what fastavro returns for the
bodies of every registered schema, read with the schema's `uuid` logical types left out; it refuses
(`MalformedBody`) every body fastavro cannot read, and of those fastavro reads only the lenient
cases it documents. `PlainAvroReader` reads with it, and with fastavro where it is turned off."""

from __future__ import annotations

import gc
import io
import json
import os
import struct
import tracemalloc
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.contracts import (
    EVENT_TYPES,
    EventCodec,
    Extraction,
    Feedback,
    Prediction,
    SchemaRegistry,
    packaged_schemas_dir,
)
from workers.contracts.avro import HEADER_SIZE, RegisteredSchema, load_schema_file, write_body
from workers.contracts.avro_plain import PlainAvroReader
from workers.contracts.avro_program import OP_ARRAY, OP_LONG, OP_RECORD, OP_UUID
from workers.contracts.avro_read_program import (
    OP_UNION,
    CompiledReader,
    MalformedBody,
    Reader,
    compile_reader,
)
from workers.contracts.plain import PlainExtraction, PlainFeedback, PlainPrediction

from .strategies import records

if CompiledReader is None or os.environ.get("HITL_COMPILED_WRITER") == "0":
    pytest.skip("the compiled reader is not built or turned off", allow_module_level=True)

REGISTRY = SchemaRegistry.load()
REFERENCE = EventCodec(fast=False)
SCHEMA_FILES = [
    *sorted(packaged_schemas_dir().glob("*.avsc")),
    *sorted(packaged_schemas_dir().glob("history/*/*.avsc")),
]
ENTRIES = [load_schema_file(path, {t.AVRO_NAME: t for t in EVENT_TYPES}) for path in SCHEMA_FILES]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PLAIN_SAMPLES = [
    ("predictions.jsonl", Prediction, PlainPrediction),
    ("feedback.jsonl", Feedback, PlainFeedback),
    ("extractions.jsonl", Extraction, PlainExtraction),
]
PLAIN_SAMPLE_IDS = [file_name for file_name, _event_type, _plain_type in PLAIN_SAMPLES]

# Where fastavro reads what no Avro writer writes, the compiled reader refuses (avro_read_program).
LENIENT_IN_FASTAVRO = (
    "a boolean byte other than 0 or 1",
    "a varint longer than 10 bytes",
    "a varint beyond 64 bits",
    "a negative union index",
    "a negative enum index",
    "a block byte size",
    "a block count of -2**63",
)

COLOUR = {"type": "enum", "name": "test.Colour", "symbols": ["red", "green", "blue"]}
TIMESTAMP = {"type": "long", "logicalType": "timestamp-micros"}
ENUM = {"type": "enum", "name": "test.E", "symbols": ["a", "b"]}
LONGS = {"type": "array", "items": "long"}
LONG_VALUES = {"type": "map", "values": "long"}
EVERYTHING: dict[str, Any] = {
    "type": "record",
    "name": "test.Everything",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "large", "type": "long"},
        {"name": "single", "type": "float"},
        {"name": "double", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "text", "type": "string"},
        {"name": "nothing", "type": "null"},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "at", "type": TIMESTAMP},
        {"name": "colour", "type": COLOUR},
        {"name": "choice", "type": ["null", "boolean", "long", "double", "string", "test.Colour"]},
        {"name": "colours", "type": {"type": "array", "items": "test.Colour"}},
        {"name": "nested", "type": {"type": "map", "values": {"type": "array", "items": ["null", "double"]}}},
    ],
}
"""Every type and logical type the reader knows, beside the registered schemas' few."""


def record_of(field_type: Any, name: str = "test.R") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": [{"name": "f", "type": field_type}]}


def without_uuids(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: without_uuids(v) for k, v in schema.items() if (k, v) != ("logicalType", "uuid")}
    if isinstance(schema, list):
        return [without_uuids(item) for item in schema]
    return schema


class Case:
    """A schema, its compiled reader, the schema fastavro reads with, and bodies written with it."""

    def __init__(self, raw: dict[str, Any], bodies: st.SearchStrategy[bytes]) -> None:
        reader = compile_reader(parse_schema(raw))
        assert reader is not None, f"no compiled reader for {raw['name']}"
        self.reader: Reader = reader
        self.readable = parse_schema(without_uuids(raw))
        self.bodies = bodies


def event_bodies(entry: RegisteredSchema) -> st.SearchStrategy[bytes]:
    if REGISTRY.current(entry.event_type) is entry:
        return records(entry.event_type).map(lambda event: REFERENCE.encode(event)[HEADER_SIZE:])
    return records(entry.event_type).map(lambda event: write_body(entry, event))


def written(raw: dict[str, Any], datum: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(raw), datum)
    return out.getvalue()


finite = st.floats(allow_nan=False, allow_infinity=False)
# The times of years 1 and 9999, in microseconds since 1970: the ends of Python's datetime.
FIRST_MICROSECOND, LAST_MICROSECOND = -62_135_596_800_000_000, 253_402_300_799_999_999
everything_bodies = st.fixed_dictionaries(
    {
        "flag": st.booleans(),
        "small": st.integers(-(2**31), 2**31 - 1),
        "large": st.integers(-(2**63), 2**63 - 1),
        "single": st.floats(width=32),
        "double": st.floats(),
        "raw": st.binary(max_size=20),
        "text": st.text(max_size=20),
        "nothing": st.none(),
        "id": st.uuids(),
        "at": st.datetimes(timezones=st.just(UTC)) | st.integers(FIRST_MICROSECOND, LAST_MICROSECOND),
        "colour": st.sampled_from(["red", "green", "blue"]),
        "choice": st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text(max_size=5),
        "colours": st.lists(st.sampled_from(["red", "green", "blue"]), max_size=3),
        "nested": st.dictionaries(st.text(max_size=5), st.lists(st.none() | finite, max_size=3), max_size=3),
    }
).map(lambda datum: written(EVERYTHING, datum))

CASES = {
    **{
        entry.path.relative_to(packaged_schemas_dir()).as_posix(): Case(
            json.loads(entry.path.read_text(encoding="utf-8")), event_bodies(entry)
        )
        for entry in ENTRIES
    },
    "Everything": Case(EVERYTHING, everything_bodies),
}
by_case = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True), dicts in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float):  # NaN, and the sign of zero
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, datetime):
        return a == b and a.tzinfo is b.tzinfo and a.fold == b.fold
    return bool(a == b)


REFUSED = object()


def by_fastavro(case: Case, body: bytes) -> Any:
    stream = io.BytesIO(body)
    try:
        datum = schemaless_reader(stream, case.readable, None)
    except Exception:
        return REFUSED
    return datum if stream.tell() == len(body) else REFUSED


def by_compiled(case: Case, body: bytes) -> Any:
    """What the reader reads from the body behind a header (it reads from an offset), or its refusal."""
    try:
        return case.reader(b"\xc3\x01fingerpr" + body, HEADER_SIZE)
    except MalformedBody as refusal:
        return refusal


def assert_agree(case: Case, body: bytes) -> None:
    expected, datum = by_fastavro(case, body), by_compiled(case, body)
    if isinstance(datum, MalformedBody):
        assert expected is REFUSED or str(datum).startswith(LENIENT_IN_FASTAVRO), (
            f"refused ({datum}) what fastavro reads: {body.hex()}"
        )
    else:
        assert expected is not REFUSED, f"read what fastavro refuses: {body.hex()}"
        assert same(datum, expected), f"{datum!r} != {expected!r}"


@by_case
@given(data=st.data())
def test_every_body_reads_as_fastavro_reads_it(case: Case, data: st.DataObject) -> None:
    body = data.draw(case.bodies)

    datum = by_compiled(case, body)

    assert not isinstance(datum, MalformedBody), datum
    assert same(datum, by_fastavro(case, body))


@by_case
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_a_body_cut_short_anywhere_is_refused(case: Case, data: st.DataObject) -> None:
    body = data.draw(case.bodies)
    for size in range(len(body)):
        assert isinstance(by_compiled(case, body[:size]), MalformedBody)
        assert_agree(case, body[:size])


@by_case
@settings(deadline=None)
@given(data=st.data())
def test_a_body_with_a_byte_replaced_reads_as_fastavro_reads_it_or_is_refused(
    case: Case, data: st.DataObject
) -> None:
    body = data.draw(case.bodies)
    position = data.draw(st.integers(0, len(body) - 1))
    replaced = body[:position] + bytes([data.draw(st.integers(0, 255))]) + body[position + 1 :]

    assert_agree(case, replaced)


@by_case
@given(data=st.data(), extra=st.binary(min_size=1, max_size=8))
def test_bytes_after_the_record_are_refused(case: Case, data: st.DataObject, extra: bytes) -> None:
    body = data.draw(case.bodies) + extra

    refusal = by_compiled(case, body)

    assert isinstance(refusal, MalformedBody)
    assert str(refusal) == f"{len(extra)} bytes left after the record"
    assert by_fastavro(case, body) is REFUSED


@by_case
@given(body=st.binary(max_size=64))
def test_random_bytes_read_as_fastavro_reads_them_or_are_refused(case: Case, body: bytes) -> None:
    assert_agree(case, body)


def reader_of(schema: Any) -> Reader:
    reader = compile_reader(parse_schema(schema))
    assert reader is not None
    return reader


@pytest.mark.parametrize(
    ("schema", "body", "refusal"),
    [
        ("long", b"", "the body ends early"),
        ("long", b"\x80", "the body ends early"),
        ("double", b"\x00" * 7, "the body ends early"),
        ("float", b"\x00" * 3, "the body ends early"),
        ("boolean", b"", "the body ends early"),
        ("long", b"\x80" * 10 + b"\x00", "a varint longer than 10 bytes"),
        ("long", b"\xff" * 9 + b"\x02", "a varint beyond 64 bits"),
        ("string", b"\x01", "a negative length"),
        ("bytes", b"\x01", "a negative length"),
        ("string", b"\x06ab", "the body ends early"),
        ("bytes", b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", "the body ends early"),
        ("string", b"\x02\xff", "'utf-8' codec can't decode byte 0xff"),
        ("string", b"\x06\xed\xa0\x80", "'utf-8' codec can't decode byte 0xed"),  # a lone surrogate
        ("string", b"\x04\xc0\x80", "'utf-8' codec can't decode byte 0xc0"),  # an overlong NUL
        (["null", "string"], b"\x04", "a union index out of range"),
        (["null", "string"], b"\x01\x02a", "a negative union index"),
        (ENUM, b"\x04", "an enum index out of range"),
        (ENUM, b"\x01", "a negative enum index"),
        ("boolean", b"\x02", "a boolean byte other than 0 or 1"),
        (LONGS, b"\x7e\x00\x00", "a block count beyond the body"),
        (LONG_VALUES, b"\x08\x02a\x00", "a block count beyond the body"),
        (LONGS, b"\x03\x06\x02\x04\x00", "a block byte size other than the block's"),
        (LONG_VALUES, b"\x01\x7e\x02a\x02\x00", "a block byte size beyond the body"),
        (LONGS, b"\x03\x01\x02\x04\x00", "a block byte size beyond the body"),
        (LONGS, b"\xff" * 9 + b"\x01\x00\x00", "a block count of -2**63"),
        (TIMESTAMP, b"\xfe" + b"\xff" * 8 + b"\x01", "a time outside the years 1 to 9999"),
        ("long", b"\x00\x00", "1 bytes left after the record"),
    ],
    ids=repr,
)
def test_each_kind_of_damage_raises_the_one_exception(schema: Any, body: bytes, refusal: str) -> None:
    reader = reader_of(record_of(schema))

    with pytest.raises(MalformedBody, match="^" + refusal.replace("*", r"\*")) as raised:
        reader(body, 0)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("schema", "body", "expected"),
    [
        (LONGS, b"\x03\x04\x02\x04\x00", [1, 2]),  # a count of -2, 2 bytes
        (LONGS, b"\x02\x02\x02\x04\x00", [1, 2]),  # two blocks
        (LONG_VALUES, b"\x01\x06\x02a\x02\x00", {"a": 1}),
        (LONG_VALUES, b"\x04\x02a\x02\x02a\x04\x00", {"a": 2}),  # the last wins
        ("long", b"\x80\x00", 0),  # a varint longer than it needs, within 10 bytes
        ("long", b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 2**63 - 1),
        ("long", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", -(2**63)),
        ("int", b"\xfe\xff\xff\xff\x1f", 2**32 - 1),  # an int beyond 32 bits, as fastavro reads it
        (TIMESTAMP, b"\x01", datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
    ids=repr,
)
def test_what_avro_allows_is_read(schema: Any, body: bytes, expected: Any) -> None:
    case = Case(record_of(schema), st.nothing())

    assert same(case.reader(body, 0), {"f": expected})
    assert_agree(case, body)


@given(moment=st.datetimes(timezones=st.just(UTC)))
def test_times_read_as_fastavro_reads_them_from_year_1_to_9999(moment: datetime) -> None:
    case = Case(record_of(TIMESTAMP), st.nothing())
    body = written(record_of(TIMESTAMP), {"f": moment})

    assert same(by_compiled(case, body), {"f": moment.replace(fold=0)})
    assert_agree(case, body)


def test_a_string_of_a_megabyte_reads_whole() -> None:
    text = "a megabyte of text, é and 😀 " * 40_000
    body = written(record_of("string"), {"f": text})
    assert len(body) > 1_000_000

    assert reader_of(record_of("string"))(body, 0) == {"f": text}


def nested_arrays(levels: int) -> tuple[Any, ...]:
    program: tuple[Any, ...] = (OP_LONG,)
    for _ in range(levels):
        program = (OP_ARRAY, program)
    return program


def test_a_read_goes_no_deeper_than_64_values() -> None:
    assert CompiledReader is not None
    reader = CompiledReader(nested_arrays(64), MalformedBody)  # 65 values deep at the bottom
    assert reader(b"\x02" * 63 + b"\x00" * 64, 0) == nested_arrays_value(63)
    with pytest.raises(MalformedBody, match="nested too deep"):
        reader(b"\x02" * 64 + b"\x00" + b"\x00" * 64, 0)
    with pytest.raises(ValueError, match="not a reader program"):
        CompiledReader(nested_arrays(65), MalformedBody)


def nested_arrays_value(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "program",
    [
        (),
        (99,),
        (2**70,),
        ("record",),
        (OP_UUID,),
        (OP_LONG, 1),
        (OP_RECORD, "fields"),
        (OP_RECORD, (("a",),)),
        (OP_RECORD, ((1, (OP_LONG,)),)),
        (OP_UNION, ((OP_LONG,), "string")),
        (9, ("a", 1)),
    ],
    ids=repr,
)
def test_a_malformed_program_is_refused_when_the_reader_is_made(program: tuple[Any, ...]) -> None:
    assert CompiledReader is not None
    with pytest.raises(ValueError, match="not a reader program"):
        CompiledReader(program, MalformedBody)


def test_arguments_other_than_bytes_and_an_offset_within_them_are_refused() -> None:
    reader = reader_of(record_of("long"))
    assert reader(b"xx\x02", 2) == {"f": 1}
    for arguments in [(bytearray(b"\x02"), 0), (b"\x02",), (b"\x02", "0")]:
        with pytest.raises(TypeError):
            reader(*arguments)
    for offset in (-1, 4):
        with pytest.raises(IndexError):
            reader(b"xx\x02", offset)


@pytest.mark.parametrize(
    "schema",
    [
        record_of(["null", "test.R"]),  # recursive
        record_of({"type": "fixed", "name": "test.F", "size": 4}),
        record_of({"type": "int", "logicalType": "date"}),
        record_of({"type": "string", "logicalType": "timestamp-micros"}),
        record_of({"type": "array", "items": "null"}),
        record_of({"type": "array", "items": record_of("null", "test.Empty")}),
        record_of(json.loads('{"type": "array", "items": ' * 70 + '"long"' + "}" * 70)),
    ],
    ids=["recursive", "fixed", "date", "timestamp of a string", "array of nulls", "array of empties", "deep"],
)
def test_a_schema_of_a_shape_it_lacks_gets_no_compiled_reader(schema: dict[str, Any]) -> None:
    assert compile_reader(parse_schema(schema)) is None


def test_no_compiled_reader_is_made_when_compiled_code_is_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = REGISTRY.current(Prediction).schema
    assert compile_reader(schema) is not None
    monkeypatch.setenv("HITL_COMPILED_WRITER", "0")
    assert compile_reader(schema) is None


def sample_values(file_name: str, event_type: type[Any]) -> list[bytes]:
    lines = (SAMPLES / file_name).read_bytes().splitlines()
    return [REFERENCE.encode(REFERENCE.decode(line, None, event_type)) for line in lines]


def only_fastavro_reads(value: bytes) -> bytes:
    """The value with the length of its first field, the event id, as an 11-byte varint."""
    body = value[HEADER_SIZE:]
    assert body[0] == 0x48  # 36, zigzag
    return value[:HEADER_SIZE] + b"\xc8" + b"\x80" * 9 + b"\x00" + body[1:]


@pytest.mark.parametrize(("file_name", "event_type", "plain_type"), PLAIN_SAMPLES, ids=PLAIN_SAMPLE_IDS)
def test_plain_events_read_the_same_with_the_compiled_reader_off(
    monkeypatch: pytest.MonkeyPatch, file_name: str, event_type: type[Any], plain_type: type[Any]
) -> None:
    entry = REGISTRY.current(event_type)
    compiled = PlainAvroReader(entry, plain_type)
    monkeypatch.setenv("HITL_COMPILED_WRITER", "0")
    fallback = PlainAvroReader(entry, plain_type)
    assert compiled.compiled and not fallback.compiled

    values = sample_values(file_name, event_type)
    for value in values:
        plain = compiled.read(value)
        assert plain is not None and fallback.read(value) == plain
        assert compiled.read(value[:-1]) is None and fallback.read(value[:-1]) is None
        assert compiled.read(value + b"\x00") is None and fallback.read(value + b"\x00") is None
    # Only fastavro reads an overlong varint: the fallback is what read.
    assert fallback.read(only_fastavro_reads(values[0])) == compiled.read(values[0])
    assert compiled.read(only_fastavro_reads(values[0])) is None


def test_refusals_free_what_they_built() -> None:
    value = sample_values("feedback.jsonl", Feedback)[0]
    reader = compile_reader(REGISTRY.current(Feedback).schema)
    assert reader is not None
    cuts = [value[:size] for size in range(HEADER_SIZE, len(value) + 1)]

    def read_all(read: Callable[[bytes, int], Any]) -> None:
        for cut in cuts:
            with suppress(MalformedBody):
                read(cut, HEADER_SIZE)

    read_all(reader)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            read_all(reader)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes kept after {50 * len(cuts)} reads"
