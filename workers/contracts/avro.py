"""The Avro side of the contracts: schema files, fingerprints, and record bodies.

Current schemas live in the package's `schemas/*.avsc` (see `schema_files`); earlier versions of
a schema, still readable, in `schemas/history/<name>/*.avsc`. Each is known by its fingerprint, the
CRC-64-AVRO of its Parsing Canonical Form as the single-object header carries it (little-endian).
"""

import io
import json
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form
from fastavro.types import Schema

from workers.contracts.base import Event, Record
from workers.contracts.errors import DecodeError, DecodeReason, EncodeError, SchemaRegistryError
from workers.contracts.events import EVENT_TYPES
from workers.contracts.schema_files import packaged_schemas_dir

SINGLE_OBJECT_MARKER = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(SINGLE_OBJECT_MARKER) + FINGERPRINT_SIZE
HISTORY_DIR = "history"


def schema_fingerprint(schema: Schema) -> bytes:
    """The 8 fingerprint bytes of the single-object header for `schema` (raw or parsed)."""
    # fastavro's hex string is already in the header's little-endian byte order.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


@dataclass(frozen=True)
class RegisteredSchema:
    """One schema file, parsed, with the event model it is read into."""

    event_type: type[Event]
    fingerprint: bytes
    schema: Schema
    path: Path

    @property
    def header(self) -> bytes:
        return SINGLE_OBJECT_MARKER + self.fingerprint


def load_schema_file(path: Path, event_types_by_name: Mapping[str, type[Event]]) -> RegisteredSchema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw)
    except (OSError, ValueError, TypeError, KeyError, SchemaParseException) as e:
        raise SchemaRegistryError(f"cannot load Avro schema {path}: {e}") from e
    full_name = parsed.get("name") if isinstance(parsed, dict) else None
    event_type = event_types_by_name.get(str(full_name))
    if event_type is None:
        raise SchemaRegistryError(f"{path} defines {full_name!r}, which is no known event type")
    return RegisteredSchema(event_type, schema_fingerprint(parsed), parsed, path)


class SchemaRegistry:
    """The current schema of every event type, and every readable writer schema by fingerprint."""

    def __init__(self, current: Iterable[RegisteredSchema], history: Iterable[RegisteredSchema] = ()) -> None:
        self._current: dict[type[Event], RegisteredSchema] = {}
        self._by_fingerprint: dict[bytes, RegisteredSchema] = {}
        for entry in current:
            if entry.event_type in self._current:
                other = self._current[entry.event_type].path
                raise SchemaRegistryError(
                    f"{entry.path} and {other} both define {entry.event_type.AVRO_NAME}"
                )
            self._current[entry.event_type] = entry
            self._add_writer(entry)
        for entry in history:
            self._add_writer(entry)

    @classmethod
    def load(
        cls, schemas_dir: Path | None = None, event_types: Iterable[type[Event]] = EVENT_TYPES
    ) -> "SchemaRegistry":
        directory = packaged_schemas_dir() if schemas_dir is None else schemas_dir
        by_name = {event_type.AVRO_NAME: event_type for event_type in event_types}
        current = [load_schema_file(p, by_name) for p in sorted(directory.glob("*.avsc"))]
        history = [load_schema_file(p, by_name) for p in sorted(directory.glob(f"{HISTORY_DIR}/*/*.avsc"))]
        registry = cls(current, history)
        missing = sorted(t.AVRO_NAME for t in by_name.values() if t not in registry._current)
        if missing:
            raise SchemaRegistryError(f"no schema in {directory} for {', '.join(missing)}")
        return registry

    def _add_writer(self, entry: RegisteredSchema) -> None:
        known = self._by_fingerprint.get(entry.fingerprint)
        if known is not None and known.event_type is not entry.event_type:
            raise SchemaRegistryError(f"{entry.path} and {known.path} have the same fingerprint")
        self._by_fingerprint.setdefault(entry.fingerprint, entry)

    @property
    def event_types(self) -> tuple[type[Event], ...]:
        return tuple(self._current)

    def current(self, event_type: type[Event]) -> RegisteredSchema:
        try:
            return self._current[event_type]
        except KeyError:
            raise SchemaRegistryError(f"no schema registered for {event_type.__name__}") from None

    def writer(self, fingerprint: bytes) -> RegisteredSchema | None:
        return self._by_fingerprint.get(fingerprint)


def to_avro_datum(record: Record) -> dict[str, Any]:
    """The record as fastavro writes it; records in union fields are named with tuple notation.

    pydantic's own dump does the conversion; only union members need naming, which fastavro
    would otherwise find by trying each branch.
    """
    datum = record.model_dump()
    _name_union_members(record, datum)
    return datum


def _name_union_members(record: Record, datum: dict[str, Any]) -> None:
    for name in _union_fields(type(record)):
        value = getattr(record, name)
        if isinstance(value, Record):
            _name_union_members(value, datum[name])
            datum[name] = (value.AVRO_NAME, datum[name])
    for name in _fields_holding_unions(type(record)):
        value = getattr(record, name)
        if isinstance(value, Record):
            _name_union_members(value, datum[name])
        elif isinstance(value, tuple | list):
            for item, item_datum in zip(value, datum[name], strict=True):
                if isinstance(item, Record):
                    _name_union_members(item, item_datum)


@cache
def _union_fields(record_type: type[Record]) -> frozenset[str]:
    return frozenset(
        name
        for name, field in record_type.model_fields.items()
        if get_origin(field.annotation) in (Union, types.UnionType)
        and any(_is_record_type(member) for member in get_args(field.annotation))
    )


@cache
def _fields_holding_unions(record_type: type[Record]) -> frozenset[str]:
    """Fields (not unions themselves) whose records, or lists of records, contain union fields."""
    return frozenset(
        name
        for name, field in record_type.model_fields.items()
        if name not in _union_fields(record_type)
        and any(_has_unions(candidate) for candidate in _record_types_in(field.annotation))
    )


def _has_unions(record_type: type[Record]) -> bool:
    return bool(_union_fields(record_type) or _fields_holding_unions(record_type))


def _record_types_in(annotation: Any) -> list[type[Record]]:
    if _is_record_type(annotation):
        return [annotation]
    return [found for argument in get_args(annotation) for found in _record_types_in(argument)]


def _is_record_type(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, Record)


def write_body(entry: RegisteredSchema, record: Record) -> bytes:
    out = io.BytesIO()
    try:
        schemaless_writer(out, entry.schema, to_avro_datum(record))
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        raise EncodeError(f"cannot write {type(record).__name__} with {entry.path.name}: {e}") from e
    return out.getvalue()


class _BodyStream(io.BytesIO):
    """Remembers whether a read asked for more bytes than were left, which marks a truncated body."""

    ran_out = False

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if size is None or size < 0 or len(chunk) < size:
            self.ran_out = True
        return chunk


def read_body(body: bytes, writer: RegisteredSchema, reader: RegisteredSchema) -> dict[str, Any]:
    """Reads a record written with `writer` into the shape of `reader` (Avro schema resolution)."""
    reader_schema = None if writer.fingerprint == reader.fingerprint else reader.schema
    stream = io.BytesIO(body)
    try:
        datum = schemaless_reader(stream, writer.schema, reader_schema)
    except SchemaResolutionError as e:
        raise DecodeError(
            DecodeReason.SCHEMA_MISMATCH,
            f"writer schema {writer.path.name} cannot be read as {reader.path.name}: {e}",
        ) from e
    # Malformed bodies surface from fastavro as many exception types (EOFError, IndexError,
    # ValueError, UnicodeDecodeError, ...); none of them may escape a decode.
    except Exception as e:
        raise _malformed(body, writer.schema, reader_schema) from e
    left_over = len(body) - stream.tell()
    if left_over:
        raise DecodeError(DecodeReason.INVALID_AVRO, f"{left_over} bytes left after the record")
    if not isinstance(datum, dict):
        raise DecodeError(DecodeReason.INVALID_AVRO, "the Avro body is not a record")
    return datum


def _malformed(body: bytes, writer_schema: Schema, reader_schema: Schema | None) -> DecodeError:
    """Reads a failing body again, watching its reads, to tell truncation from other damage.

    The watched read is slower, so the common path reads without it.
    """
    stream = _BodyStream(body)
    try:
        schemaless_reader(stream, writer_schema, reader_schema)
    except Exception as e:
        if stream.ran_out:
            return DecodeError(DecodeReason.TRUNCATED_AVRO, f"the Avro body ends early ({len(body)} bytes)")
        return DecodeError(DecodeReason.INVALID_AVRO, f"malformed Avro body: {type(e).__name__}: {e}")
    return DecodeError(DecodeReason.INVALID_AVRO, "malformed Avro body")
