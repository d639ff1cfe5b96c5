"""The compiled Avro writer: each record schema turned into a program of nested tuples, which the C
extension `_avro_speedups` runs, reading the event's attributes as the generated Python writer
(`avro_writer`) does and writing the same bytes, about five times faster.

The extension is built when the package is installed with a C compiler at hand (`setup.py`); where
it is missing, or `HITL_COMPILED_WRITER=0`, or a schema has a shape the programs lack (a recursive
record), `compile_writer` returns the Python writer instead. Either writer raises `Unwritable` for
a value it is not sure of, and the codec then takes the reference path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from workers.contracts import avro_writer
from workers.contracts.avro_writer import EPOCH, BodyMemo, Unwritable, Writer, branch_name

CompiledWriter: type[_avro_speedups.Writer] | None
try:
    from workers.contracts import _avro_speedups

    CompiledWriter = _avro_speedups.Writer
except ImportError:  # built without a C compiler: the Python writer is used
    CompiledWriter = None

COMPILED_WRITER_AVAILABLE = CompiledWriter is not None
"""True when the extension was built; `HITL_COMPILED_WRITER=0` still turns it off."""

# The operations of `_avro_speedups.c`.
OP_NULL, OP_BOOLEAN, OP_LONG, OP_FLOAT, OP_DOUBLE, OP_BYTES, OP_STRING = range(7)
OP_UUID, OP_TIMESTAMP_MICROS, OP_ENUM, OP_RECORD, OP_EVENT = range(7, 12)
OP_ARRAY, OP_MAP, OP_OPTIONAL, OP_RECORDS = range(12, 16)

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
_MAX_INDEX = 64

Program = tuple[Any, ...]


def compiled_writer_enabled() -> bool:
    return COMPILED_WRITER_AVAILABLE and os.environ.get("HITL_COMPILED_WRITER", "1") != "0"


def compile_writer(
    schema: Any, memo: BodyMemo, event_names: frozenset[str], *, compiled: bool | None = None
) -> Writer:
    """The fastest writer of one parsed schema: the compiled one unless `compiled` is False (or it is
    not available); raises Unwritable when neither writer knows the schema's shape."""
    if compiled is None:
        compiled = compiled_writer_enabled()
    if compiled and CompiledWriter is not None:
        try:
            program = _Builder(memo, event_names).build(schema)
        except Unwritable:
            pass  # the Python writer knows more shapes (recursive records)
        else:
            writer: Writer = CompiledWriter(program, Unwritable, UUID, EPOCH)
            return writer
    return avro_writer.compile_writer(schema, memo, event_names)


class _Builder:
    """Builds the program of a parsed (fastavro `parse_schema`) schema, as `avro_writer._Compiler`
    compiles it: named types are built once, embedded events are remembered by `memo`."""

    def __init__(self, memo: BodyMemo, event_names: frozenset[str]) -> None:
        self.memo = memo
        self.event_names = event_names
        self.named: dict[str, Program] = {}
        self.building: set[str] = set()

    def build(self, schema: Any) -> Program:
        if isinstance(schema, str):
            if schema in _PRIMITIVE_OPS:
                return (_PRIMITIVE_OPS[schema],)
            if schema in self.named:
                return self.named[schema]
            raise Unwritable(f"unknown or recursive named type {schema}")
        if isinstance(schema, list):
            return self._union(schema)
        if not isinstance(schema, Mapping):
            raise Unwritable(f"unknown schema {schema!r}")
        return self._mapping(schema)

    def _mapping(self, schema: Mapping[str, Any]) -> Program:
        kind, logical = schema["type"], schema.get("logicalType")
        if logical is not None:
            return _logical(kind, logical)
        if isinstance(kind, str) and kind in _PRIMITIVE_OPS:
            return (_PRIMITIVE_OPS[kind],)
        if kind == "record":
            return self._record(schema)
        if kind == "enum":
            return self._enum(schema)
        if kind == "array":
            return (OP_ARRAY, self.build(schema["items"]))
        if kind == "map":
            return (OP_MAP, self.build(schema["values"]))
        if isinstance(kind, list | Mapping):
            return self.build(kind)
        raise Unwritable(f"type {kind!r} is not supported")

    def _record(self, schema: Mapping[str, Any]) -> Program:
        name = schema["name"]
        root = not self.named and not self.building
        self.building.add(name)
        fields = tuple((field["name"], self.build(field["type"])) for field in schema["fields"])
        self.building.discard(name)
        program: Program = (OP_RECORD, fields)
        # The output itself is written afresh; the events it embeds are remembered.
        if name in self.event_names and not root:
            program = (OP_EVENT, self.memo.bodies, self.memo.schema_key(schema), program, BodyMemo.LIMIT)
        self.named[name] = program
        return program

    def _enum(self, schema: Mapping[str, Any]) -> Program:
        symbols = schema["symbols"]
        if len(symbols) > _MAX_INDEX:
            raise Unwritable("an enum of more than 64 symbols")
        program = (OP_ENUM, {symbol: index for index, symbol in enumerate(symbols)})
        self.named[schema["name"]] = program
        return program

    def _union(self, members: list[Any]) -> Program:
        branches = [self.build(member) for member in members]
        names = [branch_name(member) for member in members]
        null_index = names.index("null") if "null" in names else -1
        others = [index for index in range(len(members)) if index != null_index]
        if len(others) == 1:
            return (OP_OPTIONAL, null_index, others[0], branches[others[0]])
        if any(names[index] in _PRIMITIVE_OPS for index in others):
            raise Unwritable(f"a union of {names} is not supported")
        if len(members) > _MAX_INDEX:
            raise Unwritable("a union of more than 64 members")
        return (OP_RECORDS, null_index, {names[index]: (index, branches[index]) for index in others})


def _logical(kind: Any, logical: str) -> Program:
    if kind == "string" and logical == "uuid":
        return (OP_UUID,)
    if kind == "long" and logical == "timestamp-micros":
        return (OP_TIMESTAMP_MICROS,)
    raise Unwritable(f"logical type {logical} of {kind} is not supported")
