"""A faster Avro writer: each schema compiled once into a tree of small functions that read the
event model's attributes directly, instead of `model_dump` and fastavro's generic walk.

It writes exactly the bytes fastavro writes for `to_avro_datum(event)` (the reference path), which
`tests/contracts/test_fast_path.py` checks over generated events of every type. What it does not
know how to write (a value of a type the schema does not expect, a string that is not UTF-8, a
schema shape it was not written for) raises `Unwritable`, and the codec then takes the reference
path, which writes the same bytes or raises the reference error.

Events embedded in an output (a decision's source prediction) are written once and remembered by
identity for the message in hand (`BodyMemo`): a second output embedding the same event, or an
output that is its input unchanged, splices those bytes instead of writing them again. Event models
are frozen, so the same object has the same bytes.
"""

from __future__ import annotations

import json
import keyword
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

Writer = Callable[[Any, bytearray], None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOUBLE = struct.Struct("<d").pack
_FLOAT = struct.Struct("<f").pack
_SMALL_VARINTS = [bytes([n]) for n in range(128)]
# Union branches and enum symbols are written as their index, a zigzag long: index i is byte 2i.
_INDEXES = [bytes([2 * n]) for n in range(64)]
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class Unwritable(Exception):
    """The fast writer cannot write this value or schema; the reference path decides."""


class BodyMemo:
    """The bodies of the events written for the message in hand, by object identity and by the
    exact record schema they were written with (an output may embed an older copy of a schema).

    Holds the objects themselves, so that an id cannot be reused while it is remembered; bounded,
    since a message has one input and a few outputs.
    """

    LIMIT = 16

    def __init__(self) -> None:
        self._bodies: dict[tuple[int, int], tuple[object, bytes]] = {}
        self._schemas: dict[str, int] = {}

    def schema_key(self, schema: Mapping[str, Any]) -> int:
        """A small number for the record schema, the same for the same definition (docs aside)."""
        text = json.dumps(_without_docs(schema), sort_keys=True, default=str)
        return self._schemas.setdefault(text, len(self._schemas))

    def get(self, value: object, schema: int) -> bytes | None:
        found = self._bodies.get((id(value), schema))
        if found is not None and found[0] is value:
            return found[1]
        return None

    def put(self, value: object, schema: int, body: bytes) -> None:
        if len(self._bodies) >= self.LIMIT:
            self._bodies.clear()
        self._bodies[(id(value), schema)] = (value, body)

    def clear(self) -> None:
        self._bodies.clear()


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, Mapping):
        return {k: _without_docs(v) for k, v in schema.items() if k != "doc" and not k.startswith("__")}
    if isinstance(schema, list):
        return [_without_docs(item) for item in schema]
    return schema


def write_long(value: int, out: bytearray) -> None:
    n = (value << 1) ^ (value >> 63)
    if n < 128:
        out += _SMALL_VARINTS[n]
        return
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_string(value: str, out: bytearray) -> None:
    if type(value) is not str and not isinstance(value, str):
        raise Unwritable(f"not a string: {type(value).__name__}")
    try:
        encoded = value.encode()
    except UnicodeEncodeError as error:
        raise Unwritable(str(error)) from error
    size = len(encoded)
    if size < 64:
        out.append(size << 1)  # the zigzag long of a length below 64 is one byte, 2 * length
    else:
        write_long(size, out)
    out += encoded


def _write_uuid(value: UUID | str, out: bytearray) -> None:
    _write_string(str(value) if isinstance(value, UUID) else value, out)


def _write_bytes(value: bytes, out: bytearray) -> None:
    if not isinstance(value, bytes | bytearray):
        raise Unwritable(f"not bytes: {type(value).__name__}")
    write_long(len(value), out)
    out += value


def _write_boolean(value: bool, out: bytearray) -> None:
    if not isinstance(value, bool):
        raise Unwritable(f"not a boolean: {type(value).__name__}")
    out.append(1 if value else 0)


def _write_int(value: int, out: bytearray) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unwritable(f"not an integer: {type(value).__name__}")
    write_long(value, out)


def _write_timestamp_micros(value: datetime, out: bytearray) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Unwritable("not an aware datetime")
    delta = value - _EPOCH
    write_long((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds, out)


def _write_double(value: float, out: bytearray) -> None:
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise Unwritable(f"not a number: {type(value).__name__}")
    out += _DOUBLE(value)


def _write_float(value: float, out: bytearray) -> None:
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise Unwritable(f"not a number: {type(value).__name__}")
    out += _FLOAT(value)


def _write_null(value: None, _out: bytearray) -> None:
    if value is not None:
        raise Unwritable("not null")


_PRIMITIVE_WRITERS: dict[str, Writer] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_int,
    "long": _write_int,
    "float": _write_float,
    "double": _write_double,
    "bytes": _write_bytes,
    "string": _write_string,
}


class _Compiler:
    """Compiles parsed (fastavro `parse_schema`) schemas; named types are compiled once."""

    def __init__(self, memo: BodyMemo, event_names: frozenset[str]) -> None:
        self.memo = memo
        self.event_names = event_names
        self.named: dict[str, Writer] = {}

    def compile(self, schema: Any) -> Writer:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVE_WRITERS[schema]
            return self._reference(schema)
        if isinstance(schema, list):
            return self._union(schema)
        if not isinstance(schema, Mapping):
            raise Unwritable(f"unknown schema {schema!r}")
        return self._compile_mapping(schema)

    def _compile_mapping(self, schema: Mapping[str, Any]) -> Writer:
        kind, logical = schema["type"], schema.get("logicalType")
        if logical is not None:
            return _logical(kind, logical)
        if kind in _PRIMITIVES:
            return _PRIMITIVE_WRITERS[kind]
        compilers: dict[str, Callable[[Mapping[str, Any]], Writer]] = {
            "record": self._record,
            "enum": self._enum,
            "array": lambda s: self._array(self.compile(s["items"])),
            "map": lambda s: self._map(self.compile(s["values"])),
        }
        if isinstance(kind, str) and kind in compilers:
            return compilers[kind](schema)
        if isinstance(kind, list | Mapping):
            return self.compile(kind)
        raise Unwritable(f"type {kind!r} is not supported")

    def _reference(self, name: str) -> Writer:
        if name not in self.named:
            raise Unwritable(f"unknown named type {name}")
        return lambda value, out: self.named[name](value, out)

    def _record(self, schema: Mapping[str, Any]) -> Writer:
        name = schema["name"]
        root = not self.named
        # Registered before the fields, so that a recursive reference finds it.
        self.named[name] = lambda value, out: write(value, out)
        fields = [(field["name"], field["type"], self.compile(field["type"])) for field in schema["fields"]]
        write_fields = _generate_record_writer(name, fields)

        memo, key = self.memo, self.memo.schema_key(schema)

        def write_event(value: Any, out: bytearray) -> None:
            body = memo.get(value, key)
            if body is not None:
                out += body
                return
            start = len(out)
            write_fields(value, out)
            memo.put(value, key, bytes(out[start:]))

        # The output itself is written afresh; the events it embeds are remembered.
        write = write_event if name in self.event_names and not root else write_fields
        self.named[name] = write
        return write

    def _enum(self, schema: Mapping[str, Any]) -> Writer:
        indexes = {symbol: _INDEXES[i] for i, symbol in enumerate(schema["symbols"]) if i < 64}
        if len(indexes) != len(schema["symbols"]):
            raise Unwritable("an enum of more than 64 symbols")

        def write(value: str, out: bytearray) -> None:
            try:
                out += indexes[value]
            except (KeyError, TypeError) as error:
                raise Unwritable(f"{value!r} is not a symbol") from error

        self.named[schema["name"]] = write
        return write

    @staticmethod
    def _array(items: Writer) -> Writer:
        def write(value: Any, out: bytearray) -> None:
            if not isinstance(value, tuple | list):
                raise Unwritable(f"not an array: {type(value).__name__}")
            if value:
                write_long(len(value), out)
                for item in value:
                    items(item, out)
            out.append(0)

        return write

    @staticmethod
    def _map(values: Writer) -> Writer:
        def write(value: Any, out: bytearray) -> None:
            if not isinstance(value, dict):
                raise Unwritable(f"not a map: {type(value).__name__}")
            if value:
                write_long(len(value), out)
                for key, item in value.items():
                    _write_string(key, out)
                    values(item, out)
            out.append(0)

        return write

    def _union(self, members: list[Any]) -> Writer:
        branches = [self.compile(member) for member in members]
        names = [_name_of(member) for member in members]
        null_index = names.index("null") if "null" in names else None
        others = [i for i in range(len(members)) if i != null_index]
        if len(others) == 1:
            other, other_writer = _INDEXES[others[0]], branches[others[0]]
            null = _INDEXES[null_index] if null_index is not None else None

            def write_optional(value: Any, out: bytearray) -> None:
                if value is None:
                    if null is None:
                        raise Unwritable("null in a union without null")
                    out += null
                    return
                out += other
                other_writer(value, out)

            return write_optional
        if any(name in _PRIMITIVES for i, name in enumerate(names) if i != null_index):
            raise Unwritable(f"a union of {names} is not supported")
        if len(members) > len(_INDEXES):
            raise Unwritable("a union of more than 64 members")
        by_name = {name: (_INDEXES[i], branches[i]) for i, name in enumerate(names) if i != null_index}
        null_branch = _INDEXES[null_index] if null_index is not None else None

        def write_records(value: Any, out: bytearray) -> None:
            if value is None and null_branch is not None:
                out += null_branch
                return
            try:
                index, writer = by_name[type(value).AVRO_NAME]
            except (KeyError, AttributeError) as error:
                raise Unwritable(f"no branch for {type(value).__name__}") from error
            out += index
            writer(value, out)

        return write_records


def _logical(kind: Any, logical: str) -> Writer:
    if kind == "string" and logical == "uuid":
        return _write_uuid
    if kind == "long" and logical == "timestamp-micros":
        return _write_timestamp_micros
    raise Unwritable(f"logical type {logical} of {kind} is not supported")


def _name_of(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, Mapping):
        if schema.get("type") in ("record", "enum", "fixed"):
            return str(schema["name"])
        return str(schema.get("type"))
    return "union"


def _generate_record_writer(name: str, fields: list[tuple[str, Any, Writer]]) -> Writer:
    """A record's writer as one generated function: the common field types (strings, UUIDs,
    doubles, longs, optional strings) written inline for their exact Python type, every other
    value by the field's compiled writer, which checks it."""
    namespace: dict[str, Any] = {
        "Unwritable": Unwritable,
        "write_long": write_long,
        "pack_double": _DOUBLE,
        "UUID": UUID,
    }
    body = ["def write_fields(value, out):", "    try:"]
    for index, (field_name, field_schema, writer) in enumerate(fields):
        namespace[f"w{index}"] = writer
        plain = field_name.isidentifier() and not keyword.iskeyword(field_name)
        access = f"value.{field_name}" if plain else f"getattr(value, {field_name!r})"
        body.append(f"        v = {access}")
        body += [f"        {line}" for line in _inline(field_schema, f"w{index}")]
    body += [
        "    except (AttributeError, UnicodeEncodeError) as error:",
        "        raise Unwritable(str(error)) from error",
    ]
    exec("\n".join(body), namespace)
    write: Writer = namespace["write_fields"]
    write.__qualname__ = f"write_{name.rpartition('.')[2]}"
    return write


_STRING = [
    "b = v.encode()",
    "n = len(b)",
    "if n < 64:",
    "    out.append(n << 1)",
    "else:",
    "    write_long(n, out)",
    "out += b",
]


def _inline(schema: Any, writer: str) -> list[str]:
    """Lines that write `v` of this schema, falling back to the compiled `writer`."""
    kind = schema if isinstance(schema, str) else schema.get("type") if isinstance(schema, Mapping) else None
    logical = schema.get("logicalType") if isinstance(schema, Mapping) else None
    fallback = ["else:", f"    {writer}(v, out)"]
    if kind == "string" and logical is None:
        return ["if type(v) is str:", *[f"    {line}" for line in _STRING], *fallback]
    if kind == "string" and logical == "uuid":
        # A UUID's text is 36 ASCII characters: length byte 72.
        return ["if type(v) is UUID:", "    out.append(72)", "    out += str(v).encode()", *fallback]
    if kind == "double" and logical is None:
        return ["if type(v) is float:", "    out += pack_double(v)", *fallback]
    if kind in ("int", "long") and logical is None:
        return ["if type(v) is int:", "    write_long(v, out)", *fallback]
    if isinstance(schema, list) and len(schema) == 2 and "null" in schema and "string" in schema:
        null, other = schema.index("null"), schema.index("string")
        return [
            "if v is None:",
            f"    out.append({2 * null})",
            "elif type(v) is str:",
            f"    out.append({2 * other})",
            *[f"    {line}" for line in _STRING],
            *fallback,
        ]
    return [f"{writer}(v, out)"]


def compile_writer(schema: Any, memo: BodyMemo, event_names: frozenset[str]) -> Writer:
    """The writer of one parsed schema; raises Unwritable when it has a shape this writer lacks."""
    return _Compiler(memo, event_names).compile(schema)
