"""Changes to an event's JSON for the fast-path tests: values of every JSON type, the forms of a
time and of a UUID that Pydantic reads but `to_json` never writes, and edits at a field's path."""

from __future__ import annotations

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
