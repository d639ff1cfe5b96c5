"""Changes to an event's Avro for the fast-path tests: the value cut, a byte replaced, bytes
appended, the header of another schema, and values the schema carries but the model refuses or
reads otherwise (NaN and infinities, text that is not UTF-8, a UUID in another form than its
canonical text, times at the ends of the calendar), written by fastavro from the event's datum so
that no model stops them."""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any
from uuid import UUID

from fastavro import schemaless_writer
from hypothesis import assume
from hypothesis import strategies as st

from workers.contracts import Event, EventCodec
from workers.contracts.avro import HEADER_SIZE, SINGLE_OBJECT_MARKER, schema_fingerprint, to_avro_datum
from workers.contracts.schema_files import packaged_schemas_dir

AVRO = [("content-type", b"avro/binary")]
avro_headers = st.sampled_from([AVRO, [("content-type", b"application/avro")], []])
"""Headers of an Avro value: its content type, another name of it, or none (the first byte says)."""

Path = tuple[str | int, ...]
"""Where a value is in a datum: field names, map keys and array indexes."""


@cache
def reference_codec() -> EventCodec:
    return EventCodec(fast=False)


@cache
def known_fingerprints() -> frozenset[bytes]:
    """The fingerprints of every packaged schema, current and older."""
    paths = packaged_schemas_dir().rglob("*.avsc")
    return frozenset(schema_fingerprint(json.loads(path.read_text(encoding="utf-8"))) for path in paths)


LEAF_KINDS = (UUID, float, str, datetime)


@dataclass
class AvroDatum:
    """An event as fastavro writes it (`to_avro_datum`, arrays as lists), with the path of each of
    its UUIDs, floats, strings and times."""

    event_type: type[Event]
    value: dict[str, Any]
    leaves: dict[type, list[Path]] = field(default_factory=lambda: {kind: [] for kind in LEAF_KINDS})

    def set(self, path: Path, new: Any) -> None:
        container: Any = self.value
        for step in path[:-1]:
            container = _member(container[step])
        container[path[-1]] = new

    def get(self, path: Path) -> Any:
        found: Any = self.value
        for step in path:
            found = _member(found)[step]
        return found


def avro_datum(event: Event) -> AvroDatum:
    datum = AvroDatum(type(event), {})
    datum.value = _collected(to_avro_datum(event), (), datum.leaves)
    return datum


def _collected(value: Any, path: Path, leaves: dict[type, list[Path]]) -> Any:
    """`value` with arrays as lists, its leaves' paths added to `leaves`."""
    if isinstance(value, dict):
        return {key: _collected(item, (*path, key), leaves) for key, item in value.items()}
    if _is_named_member(value):
        return (value[0], _collected(value[1], path, leaves))
    if isinstance(value, list | tuple):
        return [_collected(item, (*path, index), leaves) for index, item in enumerate(value)]
    # An enum is written as its index, not as its text.
    kind = next((kind for kind in LEAF_KINDS if isinstance(value, kind)), None)
    if kind is not None and not isinstance(value, Enum):
        leaves[kind].append(path)
    return value


def _is_named_member(value: Any) -> bool:
    """A record in a union, as `to_avro_datum` names it: `(full name, record)`."""
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], dict)
    )


def _member(value: Any) -> Any:
    return value[1] if _is_named_member(value) else value


def written(datum: AvroDatum) -> bytes:
    """The single-object Avro of the datum, written by fastavro with its event's current schema."""
    entry = reference_codec().registry.current(datum.event_type)
    out = io.BytesIO()
    schemaless_writer(out, entry.schema, datum.value)
    return entry.header + out.getvalue()


# Positions are counted from the end of the value, or from its body, as the simplest draw (zero)
# is the one Hypothesis makes most: a cut of the last byte, a change of the first byte of the body.


def truncated(draw: st.DrawFn, value: bytes) -> bytes:
    return value[: len(value) - draw(st.integers(1, len(value)))]


def byte_replaced(draw: st.DrawFn, value: bytes) -> bytes:
    at = (HEADER_SIZE + draw(st.integers(0, len(value) - 1))) % len(value)
    new = draw(st.integers(0, 255).filter(lambda byte: byte != value[at]))
    return value[:at] + bytes([new]) + value[at + 1 :]


def bytes_appended(draw: st.DrawFn, value: bytes) -> bytes:
    return value + draw(st.binary(min_size=1, max_size=8))


def other_schema(draw: st.DrawFn, value: bytes) -> bytes:
    """The header of another schema: another event type's, or an older version's."""
    own = value[len(SINGLE_OBJECT_MARKER) : HEADER_SIZE]
    fingerprint = draw(st.sampled_from(sorted(known_fingerprints() - {own})))
    return SINGLE_OBJECT_MARKER + fingerprint + value[HEADER_SIZE:]


def unknown_schema(draw: st.DrawFn, value: bytes) -> bytes:
    fingerprint = draw(st.binary(min_size=8, max_size=8).filter(lambda f: f not in known_fingerprints()))
    return SINGLE_OBJECT_MARKER + fingerprint + value[HEADER_SIZE:]


BYTE_CHANGES: dict[str, Callable[[st.DrawFn, bytes], bytes]] = {
    "truncated": truncated,
    "byte replaced": byte_replaced,
    "bytes appended": bytes_appended,
    "other schema": other_schema,
    "unknown schema": unknown_schema,
}


def uuid_texts(canonical: str) -> st.SearchStrategy[str]:
    """Other texts of a UUID field: forms Pydantic reads as the same UUID, and no UUID at all."""
    return st.sampled_from(
        [
            canonical.upper(),
            canonical.replace("-", ""),
            "{" + canonical + "}",
            "urn:uuid:" + canonical,
            canonical.replace("-", "", 1),
            " " + canonical,
            canonical[:-1],
            "not-a-uuid",
            "",
        ]
    )


NOT_FINITE = [math.nan, math.inf, -math.inf]
EDGE_FLOATS = [-0.0, 1.5, -sys.float_info.max, sys.float_info.max, 5e-324]


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


FIRST_MICROSECOND = _micros(datetime(1, 1, 1, tzinfo=UTC))
LAST_MICROSECOND = _micros(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
EDGE_TIMES = [
    FIRST_MICROSECOND - 1,
    FIRST_MICROSECOND,
    FIRST_MICROSECOND + 86_400_000_000,
    LAST_MICROSECOND - 86_400_000_000,
    LAST_MICROSECOND,
    LAST_MICROSECOND + 1,
    -(2**63),
    2**63 - 1,
    0,
]
"""Timestamps in microseconds: the calendar's first and last days, and beyond them."""

# Text of the same length in bytes as `NOT_UTF8`'s members, to be replaced by one of them in the body.
PLACEHOLDER = "\x01not-utf-8\x02"
NOT_UTF8 = [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]


def not_utf8(draw: st.DrawFn, datum: AvroDatum, path: Path) -> bytes:
    """The datum with the string at `path` holding bytes that are not UTF-8."""
    invalid = draw(st.sampled_from(NOT_UTF8))
    at = draw(st.integers(0, len(PLACEHOLDER) - len(invalid)))
    ascii_text = PLACEHOLDER.encode()
    replacement = ascii_text[:at] + invalid + ascii_text[at + len(invalid) :]
    datum.set(path, PLACEHOLDER)
    value = written(datum)
    assume(value.count(ascii_text) == 1)
    return value.replace(ascii_text, replacement)


def uuid_text(draw: st.DrawFn, datum: AvroDatum, path: Path) -> bytes:
    datum.set(path, draw(uuid_texts(str(datum.get(path)))))
    return written(datum)


def edge_float(draw: st.DrawFn, datum: AvroDatum, path: Path) -> bytes:
    datum.set(path, draw(st.sampled_from(NOT_FINITE) | st.sampled_from(EDGE_FLOATS)))
    return written(datum)


def edge_time(draw: st.DrawFn, datum: AvroDatum, path: Path) -> bytes:
    datum.set(path, draw(st.sampled_from(EDGE_TIMES)))
    return written(datum)


VALUE_CHANGES: dict[type, Callable[[st.DrawFn, AvroDatum, Path], bytes]] = {
    UUID: uuid_text,
    float: edge_float,
    str: not_utf8,
    datetime: edge_time,
}


@st.composite
def changed_avro(draw: st.DrawFn, events: st.SearchStrategy[Event]) -> bytes:
    """The reference codec's Avro of an event of `events` with one thing changed: its bytes
    (`BYTE_CHANGES`) or one of its values (`VALUE_CHANGES`). Most changes make it invalid; some
    give a valid event in a form the writer never writes."""
    # Drawn first: Hypothesis draws its simplest choice more often the later a choice comes.
    changes: list[str | type] = [*BYTE_CHANGES, *VALUE_CHANGES]
    change = draw(st.sampled_from(changes))
    event = draw(events)
    datum = avro_datum(event)
    if not isinstance(change, str) and not datum.leaves[change]:
        changes = [*BYTE_CHANGES, *(kind for kind, paths in datum.leaves.items() if paths)]
        change = draw(st.sampled_from(changes))
    if isinstance(change, str):
        return BYTE_CHANGES[change](draw, reference_codec().encode(event))
    return VALUE_CHANGES[change](draw, datum, draw(st.sampled_from(datum.leaves[change])))
