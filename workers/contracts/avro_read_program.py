"""The compiled Avro reader: each record schema turned into a read program of nested tuples, which
the C extension `_avro_speedups` runs, returning what fastavro's `schemaless_reader` returns for
the same body read with the schema's `uuid` logical types left out (UUIDs as their text).

`compile_reader` returns None where the extension is missing, or `HITL_COMPILED_WRITER=0` (the one
switch for compiled Avro code), or the schema has a shape the programs lack: a recursive record, a
fixed, a logical type other than uuid on a string and timestamp-micros on a long, an array of items
that take no bytes (nulls, empty records). Unions of any members are read.

Every body that is not exactly one record of the schema raises `MalformedBody`. A few bodies that
fastavro reads leniently are refused as well, since no Avro writer writes them: a boolean byte
other than 0 or 1, a varint longer than 10 bytes or beyond 64 bits, a negative union or enum index
(which fastavro takes from the end of the list), a negative block count whose byte size is not the
block's, and a block count of -2**63.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workers.contracts.avro_program import (
    OP_ARRAY,
    OP_BOOLEAN,
    OP_BYTES,
    OP_DOUBLE,
    OP_ENUM,
    OP_FLOAT,
    OP_LONG,
    OP_MAP,
    OP_NULL,
    OP_RECORD,
    OP_STRING,
    OP_TIMESTAMP_MICROS,
    compiled_writer_enabled,
)

CompiledReader: type[_avro_speedups.Reader] | None
try:
    from workers.contracts import _avro_speedups

    CompiledReader = _avro_speedups.Reader
except (ImportError, AttributeError):  # not built, or built from a source without the reader
    CompiledReader = None

OP_UNION = 16
"""The read programs' own operation, beside those of `avro_program`."""

# fastavro reads an int as a long, with no check of its 32 bits; so does the reader.
_PRIMITIVE_OPS = {
    "null": OP_NULL,
    "boolean": OP_BOOLEAN,
    "int": OP_LONG,
    "long": OP_LONG,
    "float": OP_FLOAT,
    "double": OP_DOUBLE,
    "bytes": OP_BYTES,
    "string": OP_STRING,
}

Program = tuple[Any, ...]
Reader = Callable[[bytes, int], Any]
"""`reader(value, offset)`: the record whose body is `value[offset:]`, or raises MalformedBody."""


class MalformedBody(ValueError):
    """A body the compiled reader refuses: truncated, with bytes left over, or not of its schema."""


class _Unsupported(Exception):
    pass


def compile_reader(schema: Any) -> Reader | None:
    """The compiled reader of one parsed (fastavro `parse_schema`) schema, or None."""
    if CompiledReader is None or not compiled_writer_enabled():
        return None
    try:
        program = _Builder().build(schema)
    except _Unsupported:
        return None
    try:
        reader: Reader = CompiledReader(program, MalformedBody)
    except ValueError:  # nested deeper than the reader goes
        return None
    return reader


class _Builder:
    """Builds the read program of a parsed schema; named types are built once."""

    def __init__(self) -> None:
        self.named: dict[str, Program] = {}

    def build(self, schema: Any) -> Program:
        if isinstance(schema, str):
            if schema in _PRIMITIVE_OPS:
                return (_PRIMITIVE_OPS[schema],)
            if schema in self.named:
                return self.named[schema]
            raise _Unsupported(f"unknown or recursive named type {schema}")
        if isinstance(schema, list):
            return (OP_UNION, tuple(self.build(member) for member in schema))
        if not isinstance(schema, Mapping):
            raise _Unsupported(f"unknown schema {schema!r}")
        return self._mapping(schema)

    def _mapping(self, schema: Mapping[str, Any]) -> Program:
        kind, logical = schema["type"], schema.get("logicalType")
        if logical is not None:
            return _logical(kind, logical)
        if isinstance(kind, str) and kind in _PRIMITIVE_OPS:
            return (_PRIMITIVE_OPS[kind],)
        if kind == "record":
            fields = tuple((field["name"], self.build(field["type"])) for field in schema["fields"])
            return self._named(schema, (OP_RECORD, fields))
        if kind == "enum":
            return self._named(schema, (OP_ENUM, tuple(schema["symbols"])))
        if kind == "array":
            items = self.build(schema["items"])
            if _takes_no_bytes(items):
                raise _Unsupported("an array of items that take no bytes")
            return (OP_ARRAY, items)
        if kind == "map":
            return (OP_MAP, self.build(schema["values"]))
        if isinstance(kind, list | Mapping):
            return self.build(kind)
        raise _Unsupported(f"type {kind!r} is not supported")

    def _named(self, schema: Mapping[str, Any], program: Program) -> Program:
        self.named[schema["name"]] = program
        return program


def _logical(kind: Any, logical: str) -> Program:
    if kind == "string" and logical == "uuid":
        return (OP_STRING,)
    if kind == "long" and logical == "timestamp-micros":
        return (OP_TIMESTAMP_MICROS,)
    raise _Unsupported(f"logical type {logical} of {kind} is not supported")


def _takes_no_bytes(program: Program) -> bool:
    """Whether a value may be written as no bytes at all, which leaves an array's count unbounded."""
    if program[0] == OP_NULL:
        return True
    return program[0] == OP_RECORD and all(_takes_no_bytes(field) for _name, field in program[1])
