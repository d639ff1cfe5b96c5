"""Avro bodies read straight into the plain mirrors of events, for the fast path.

The compiled reader (`avro_read_program`), or fastavro where it is not built, reads the body into
dicts, and msgspec converts them into the plain type, checking the constraints the plain type
carries. UUIDs are read as their text (the plain mirrors hold UUIDs as canonical text): the schema
is read with its `uuid` logical types left out, so a value that is not a canonical UUID fails the
plain type's pattern and goes to the reference path, which says why.
Only values written with the event's current schema are read here; an older writer schema needs
schema resolution, which the reference path does.
"""

from __future__ import annotations

import io
import json
from typing import Any, Generic, TypeVar

import msgspec
from fastavro import parse_schema, schemaless_reader

from workers.contracts.avro import HEADER_SIZE, RegisteredSchema
from workers.contracts.avro_read_program import compile_reader

P = TypeVar("P")


class PlainAvroReader(Generic[P]):
    """Reads single-object Avro values of one event type, written with its current schema."""

    def __init__(self, entry: RegisteredSchema, plain_type: type[P]) -> None:
        self.header = entry.header
        self.plain_type = plain_type
        raw = json.loads(entry.path.read_text(encoding="utf-8"))
        self._schema = parse_schema(_without_uuid_logical_types(raw))
        self._compiled = compile_reader(self._schema)

    @property
    def compiled(self) -> bool:
        """Whether the compiled reader reads the bodies, rather than fastavro."""
        return self._compiled is not None

    def read(self, value: bytes) -> P | None:
        """The plain event, or None for a value of another schema, or one the readers or msgspec refuse."""
        if not value.startswith(self.header):
            return None
        datum = self._read_body(value)
        if datum is None:
            return None
        try:
            return msgspec.convert(datum, self.plain_type)
        except msgspec.ValidationError:
            return None

    def _read_body(self, value: bytes) -> Any:
        """The body's datum, or None (never a record's datum) when it is malformed; the reference
        path reads the body again and names the damage."""
        if self._compiled is not None:
            try:
                return self._compiled(value, HEADER_SIZE)
            # MalformedBody, or whatever else: no body may crash the worker from the fast path.
            except Exception:
                return None
        stream = io.BytesIO(value)
        stream.seek(HEADER_SIZE)
        try:
            datum = schemaless_reader(stream, self._schema, None)
        # Malformed bodies surface from fastavro as many exception types.
        except Exception:
            return None
        return datum if stream.tell() == len(value) else None


def _without_uuid_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: _without_uuid_logical_types(item)
            for key, item in schema.items()
            if not (key == "logicalType" and item == "uuid")
        }
    if isinstance(schema, list):
        return [_without_uuid_logical_types(item) for item in schema]
    return schema
