"""Pydantic validation errors as people read them, written one way everywhere: `path: message`.

A path is the error's location with names joined by dots and list positions in brackets
(`line_items[2].amount`); the whole value has the empty path, shown as `root`. At most `limit`
problems are listed, then how many more there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

Location = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str


def field_path(location: Location) -> str:
    """`line_items[2].amount`; empty for the whole value."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def problems(error: ValidationError, limit: int) -> tuple[list[Problem], int]:
    """The first `limit` problems, and how many were left out."""
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    shown = [Problem(field_path(e["loc"]), e["msg"]) for e in errors[:limit]]
    return shown, len(errors) - len(shown)


def describe(
    error: ValidationError,
    *,
    limit: int = 20,
    root: str = "(value)",
    path: Callable[[Location], str] | None = None,
    quote: str = "",
) -> str:
    """Every problem as `path: message`, joined by `; `, then `and N more` if some were left out.

    `path` names a location another way (a setting's variable, say); `quote` goes around each path.
    """
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    name = path or field_path
    shown = [f"{quote}{name(e['loc']) or root}{quote}: {e['msg']}" for e in errors[:limit]]
    if len(errors) > limit:
        shown.append(f"and {len(errors) - limit} more")
    return "; ".join(shown)
