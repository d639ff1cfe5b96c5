"""A faster Avro writer: each record schema compiled once into one generated function that reads
the event's attributes directly (of a model, or of its plain mirror in `plain`), with nested
records, maps, arrays and optional values written inline, instead of `model_dump` and fastavro's
generic walk.

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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
        self.bodies: dict[tuple[int, int], tuple[object, bytes]] = {}
        self._schemas: dict[str, int] = {}

    def schema_key(self, schema: Mapping[str, Any]) -> int:
        """A small number for the record schema, the same for the same definition (docs aside)."""
        text = json.dumps(_without_docs(schema), sort_keys=True, default=str)
        return self._schemas.setdefault(text, len(self._schemas))

    def get(self, value: object, schema: int) -> bytes | None:
        found = self.bodies.get((id(value), schema))
        if found is not None and found[0] is value:
            return found[1]
        return None

    def put(self, value: object, schema: int, body: bytes) -> None:
        if len(self.bodies) >= self.LIMIT:
            self.bodies.clear()
        self.bodies[(id(value), schema)] = (value, body)

    def clear(self) -> None:
        self.bodies.clear()


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
    delta = value - EPOCH
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
        write_fields = _Generator(self).function(name, fields)

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
        names = [branch_name(member) for member in members]
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


def branch_name(schema: Any) -> str:
    """The name a union branch is known by: a named type's name, else its type."""
    if isinstance(schema, str):
        return schema
    if isinstance(schema, Mapping):
        if schema.get("type") in ("record", "enum", "fixed"):
            return str(schema["name"])
        return str(schema.get("type"))
    return "union"


class _Generator:
    """Writes one record's writer as the source of one function: the fields of nested records
    (those that are not events, which `BodyMemo` remembers), the entries of maps and arrays, and
    the branches of optional values are written inline, each value for its exact Python type, and
    any other value by its compiled writer, which checks it (and raises Unwritable)."""

    def __init__(self, compiler: _Compiler) -> None:
        self.compiler = compiler
        self.namespace: dict[str, Any] = {
            "Unwritable": Unwritable,
            "write_long": write_long,
            "pack_double": _DOUBLE,
            "UUID": UUID,
            "datetime": datetime,
            "EPOCH": EPOCH,
        }
        self._names = 0

    def _new(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def _bind(self, value: object) -> str:
        name = self._new("w")
        self.namespace[name] = value
        return name

    def function(self, name: str, fields: list[tuple[str, Any, Writer]]) -> Writer:
        body = ["def write_fields(value, out):", "    append = out.append", "    try:"]
        for field_name, field_schema, writer in fields:
            var = self._new("v")
            body.append(f"        {var} = {_attribute('value', field_name)}")
            body += [
                f"        {line}".replace("out.append(", "append(")
                for line in self.lines(field_schema, var, writer)
            ]
        body += [
            "    except (AttributeError, UnicodeEncodeError) as error:",
            "        raise Unwritable(str(error)) from error",
        ]
        exec("\n".join(body), self.namespace)
        write: Writer = self.namespace["write_fields"]
        write.__qualname__ = f"write_{name.rpartition('.')[2]}"
        return write

    def lines(self, schema: Any, var: str, writer: Writer | None = None) -> list[str]:
        """Lines that write `var` of this schema, falling back to its compiled writer."""
        fallback = self._bind(writer if writer is not None else self.compiler.compile(schema))
        simple = _SIMPLE.get(_kind_of(schema))
        if simple is not None:
            check, write = simple
            return [
                f"if {check.format(v=var)}:",
                *_indent([line.format(v=var) for line in write]),
                "else:",
                f"    {fallback}({var}, out)",
            ]
        inline: list[str] | None = None
        if isinstance(schema, list):
            inline = self._optional(schema, var)
        elif isinstance(schema, Mapping) and schema.get("logicalType") is None:
            inline = self._complex(schema, var, fallback)
        return inline or [f"{fallback}({var}, out)"]

    def _optional(self, members: list[Any], var: str) -> list[str] | None:
        names = [branch_name(member) for member in members]
        if len(members) != 2 or "null" not in names:
            return None
        null = names.index("null")
        other = 1 - null
        return [
            f"if {var} is None:",
            f"    out.append({2 * null})",
            "else:",
            f"    out.append({2 * other})",
            *_indent(self.lines(members[other], var)),
        ]

    def _complex(self, schema: Mapping[str, Any], var: str, fallback: str) -> list[str] | None:
        kind = schema["type"]
        if kind == "record" and schema["name"] not in self.compiler.event_names:
            lines = []
            for field in schema["fields"]:
                inner = self._new("v")
                lines.append(f"{inner} = {_attribute(var, field['name'])}")
                lines += self.lines(field["type"], inner)
            return lines
        if kind == "enum" and len(schema["symbols"]) <= len(_INDEXES):
            indexes = self._bind({symbol: _INDEXES[i] for i, symbol in enumerate(schema["symbols"])})
            index = self._new("i")
            return [
                f"{index} = {indexes}.get({var}) if type({var}) is str or isinstance({var}, str) else None",
                f"if {index} is not None:",
                f"    out += {index}",
                "else:",
                f"    {fallback}({var}, out)",
            ]
        if kind == "map":
            key, item = self._new("k"), self._new("x")
            return [
                f"if type({var}) is dict:",
                f"    if {var}:",
                f"        n = len({var})",
                "        if n < 64:",
                "            out.append(n << 1)",
                "        else:",
                "            write_long(n, out)",
                f"        for {key}, {item} in {var}.items():",
                *_indent(_string(key), 3),
                *_indent(self.lines(schema["values"], item), 3),
                "    out.append(0)",
                "else:",
                f"    {fallback}({var}, out)",
            ]
        if kind == "array":
            item = self._new("x")
            return [
                f"if type({var}) is tuple or type({var}) is list:",
                f"    if {var}:",
                f"        n = len({var})",
                "        if n < 64:",
                "            out.append(n << 1)",
                "        else:",
                "            write_long(n, out)",
                f"        for {item} in {var}:",
                *_indent(self.lines(schema["items"], item), 3),
                "    out.append(0)",
                "else:",
                f"    {fallback}({var}, out)",
            ]
        return None


def _attribute(var: str, name: str) -> str:
    plain = name.isidentifier() and not keyword.iskeyword(name)
    return f"{var}.{name}" if plain else f"getattr({var}, {name!r})"


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    return [f"{'    ' * levels}{line}" for line in lines]


def _string(var: str) -> list[str]:
    """Writes the string `var`; a value that is not one has no `encode` (AttributeError: Unwritable)."""
    return [line.format(v=var) for line in _STRING]


_STRING = [
    "b = {v}.encode()",
    "n = len(b)",
    "if n < 64:",
    "    out.append(n << 1)",  # the zigzag long of a length below 64 is one byte, 2 * length
    "else:",
    "    write_long(n, out)",
    "out += b",
]
# The values written inline for their exact Python type: (schema type, logical type) -> the check
# and the lines that write `{v}`.
_SIMPLE: dict[tuple[Any, Any], tuple[str, list[str]]] = {
    ("string", None): ("type({v}) is str", _STRING),
    # A UUID's text is 36 ASCII characters: length byte 72. A plain event holds the text already.
    ("string", "uuid"): (
        "type({v}) is UUID or type({v}) is str and len({v}) == 36 and {v}.isascii()",
        ["out.append(72)", "out += ({v} if type({v}) is str else str({v})).encode()"],
    ),
    ("double", None): ("type({v}) is float", ["out += pack_double({v})"]),
    ("int", None): ("type({v}) is int", ["write_long({v}, out)"]),
    ("long", None): ("type({v}) is int", ["write_long({v}, out)"]),
    ("long", "timestamp-micros"): (
        "type({v}) is datetime and {v}.tzinfo is not None",
        ["d = {v} - EPOCH", "write_long((d.days * 86400 + d.seconds) * 1000000 + d.microseconds, out)"],
    ),
}


def _kind_of(schema: Any) -> tuple[Any, Any]:
    if isinstance(schema, str):
        return (schema, None)
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        return (kind if isinstance(kind, str) else None, schema.get("logicalType"))
    return (None, None)


def compile_writer(schema: Any, memo: BodyMemo, event_names: frozenset[str]) -> Writer:
    """The writer of one parsed schema; raises Unwritable when it has a shape this writer lacks."""
    return _Compiler(memo, event_names).compile(schema)
