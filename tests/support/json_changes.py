"""Changes to an event's JSON for the fast-path tests: values of every JSON type, the forms of a
time and of a UUID that Pydantic reads but `to_json` never writes, and edits at a field's path."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st


def json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats()
        | st.text(max_size=6)
        | st.sampled_from(["0.5", "1", "", "2026-03-01T00:00:00Z"])
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    )


TIMESTAMPS = [
    "2026-11-02T09:00:00Z",
    "2026-11-02T09:00:00z",
    "2026-11-02t09:00:00Z",
    "2026-11-02 09:00:00Z",
    "2026-11-02T09:00:00.5Z",
    "2026-11-02T09:00:00.1234567Z",
    "2026-11-02T09:00:00.9999995Z",
    "2026-11-02T09:00:00.123456789012+01:00",
    "2026-11-02T09:00Z",
    "2026-11-02T23:59:60Z",
    "2026-11-02T24:00:00Z",
    "2026-11-02T09:00:00+23:59",
    "2026-11-02T09:00:00+24:00",
    "2026-11-02T09:00:00-00:00",
    "2026-11-02T09:00:00+0530",
    "2026-11-02T09:00:00+05",
    "2026-11-02T09:00:00,5Z",
    "2026-11-02T09:00:00",
    "2026-11-02",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-02-30T00:00:00Z",
    "1700000000",
]
EVENT_IDS = [
    "6F1C2B8E-4A7D-4A53-9D0E-1F2A3B4C5D6E",
    "6f1c2b8e4a7d4a539d0e1f2a3b4c5d6e",
    "{6f1c2b8e-4a7d-4a53-9d0e-1f2a3b4c5d6e}",
    "urn:uuid:6f1c2b8e-4a7d-4a53-9d0e-1f2a3b4c5d6e",
    "6f1c2b8e4a7d-4a53-9d0e-1f2a3b4c5d6e",
    "00000000-0000-0000-0000-000000000000",
]


def set_at(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    *parents, last = path
    for name in parents:
        if not isinstance(document.get(name), dict):
            return
        document = document[name]
    document[last] = value


def delete_at(document: dict[str, Any], path: tuple[str, ...]) -> None:
    *parents, last = path
    for name in parents:
        if not isinstance(document.get(name), dict):
            return
        document = document[name]
    document.pop(last, None)


TEXT_EDITS = ["bom", "space", "duplicate", "cut", "trailing"]


def edit_text(draw: st.DrawFn, text: str, duplicate: str) -> str:
    """`text`, a JSON object, edited as text: `duplicate` (`"name": value, "name": other`) is a
    field given twice, which Pydantic reads as its last value."""
    edit = draw(st.sampled_from(TEXT_EDITS))
    if edit == "bom":
        return "\ufeff" + text
    if edit == "space":
        return f" \n{text}\t"
    if edit == "duplicate":
        return text[:-1] + f", {duplicate}}}"
    if edit == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text + "x"


Change = Callable[[st.DrawFn, dict[str, Any]], None]
"""A change of an event's own to its JSON document, drawing what it needs."""


def changed_json(
    draw: st.DrawFn,
    document: dict[str, Any],
    paths: Sequence[tuple[str, ...]],
    duplicate: str,
    own: Mapping[str, Change] | None = None,
) -> bytes:
    """An event's JSON `document` with one thing changed, at one of its field `paths` or as text
    (`edit_text`, with `duplicate`), or by one of the event's `own` changes: most are invalid, some
    are valid in a form `to_json` never writes."""
    own = own or {}
    path = draw(st.sampled_from(paths))
    change = draw(
        st.sampled_from(["delete", "replace", "unknown field", "timestamp", "event id", "null", "text", *own])
    )
    if change in own:
        own[change](draw, document)
    elif change == "delete":
        delete_at(document, path)
    elif change == "replace":
        set_at(document, path, draw(json_values()))
    elif change == "unknown field":
        set_at(document, (*path[:-1], "extra"), draw(json_values()))
    elif change == "timestamp":
        document["occurred_at"] = draw(st.sampled_from(TIMESTAMPS))
    elif change == "event id":
        document["event_id"] = draw(st.sampled_from(EVENT_IDS))
    elif change == "null":
        set_at(document, path, None)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    if change == "text":
        text = edit_text(draw, text, duplicate)
    return text.encode("utf-8", "surrogatepass")
