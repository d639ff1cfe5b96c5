"""Finding the JSON document in an LLM's output, which is often wrapped in markdown or prose.

The rules, tried in order; the first that yields text parsing as JSON wins:

1. The whole output, without surrounding whitespace and byte-order mark: `whole_output`.
2. The body of a markdown code fence (three backticks). Fences tagged `json` (in any case; `jsonc`
   and the like too) are tried first, in order, then every other fence, in order: `code_fence`.
   A fence may hold its body on the opening line, as in ```json {"a": 1}```.
3. A balanced `{...}` or `[...]` span of the text, among the outermost spans the longest that
   parses (the first of equal length), so that a citation like `[1]` in the prose does not win
   over the object: `embedded_in_text`. The scan matches brackets while skipping JSON strings
   (with their escapes), so brackets inside string values do not count. A span that does not
   parse is skipped whole, never searched for smaller objects inside it: a fragment of a broken
   object is not the output. A bracket that is never closed (the output was cut off) ends the
   scan, for the same reason.

"Parses" means strict JSON (RFC 8259) as Pydantic reads it: no trailing commas, no single quotes,
no comments, no NaN or Infinity, nothing after the value. Any JSON value counts, so an array or a
number is found, and then fails validation against an object model with an error of its own.

When nothing parses, the result says why, with the parser's message, and gives the text most like
the intended JSON (a `json` or untagged fence, else the longest span or cut-off tail), so that a
reviewer can start the correction from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic_core import from_json

from workers.contracts import JsonLocation

_BOM = "\ufeff"
_FENCE = re.compile(r"```(?P<tag>[\w.+-]*)[^\S\n]*(?P<body>.*?)```", re.DOTALL)
_CLOSERS = {"{": "}", "[": "]"}
_OPENER = re.compile(r"[{\[]")


@dataclass(frozen=True, slots=True)
class FoundJson:
    """JSON text that parses, as it appears in the output, and where it was found."""

    text: str
    location: JsonLocation


@dataclass(frozen=True, slots=True)
class NoJson:
    """No JSON in the output: why (`problem`), and the text most like the intended JSON, if any."""

    problem: str
    candidate: str | None = None


@dataclass(frozen=True, slots=True)
class _Fence:
    body: str
    start: int
    tag: str

    @property
    def is_json(self) -> bool:
        return self.tag.lower().startswith("json")


def find_json(output: str) -> FoundJson | NoJson:
    """Applies the rules of the module docstring to `output`."""
    whole = output.strip().lstrip(_BOM).strip()
    if not whole:
        return NoJson("the output is empty")
    if _parse_error(whole) is None:
        return FoundJson(whole, JsonLocation.WHOLE_OUTPUT)
    fences = _fences(output)
    for fence in fences:
        if fence.body and _parse_error(fence.body) is None:
            return FoundJson(fence.body, JsonLocation.CODE_FENCE)
    spans = list(_outermost_spans(output))
    parsing = [
        output[start:end]
        for start, end in spans
        if end is not None and _parse_error(output[start:end]) is None
    ]
    if parsing:
        return FoundJson(max(parsing, key=len), JsonLocation.EMBEDDED_IN_TEXT)
    return _why_not(output, whole, fences, spans)


def _parse_error(text: str) -> str | None:
    try:
        from_json(text, allow_inf_nan=False)
    except ValueError as error:
        return str(error)
    return None


def _fences(output: str) -> list[_Fence]:
    """Every fenced block, `json`-tagged ones first, each group in the order of the text."""
    fences = [_Fence(match["body"].strip(), match.start(), match["tag"]) for match in _FENCE.finditer(output)]
    return sorted(fences, key=lambda fence: not fence.is_json)


def _outermost_spans(text: str) -> Iterator[tuple[int, int | None]]:
    """(start, end) of each outermost bracketed span; end is None for the unclosed last one."""
    opener = _OPENER.search(text)
    while opener is not None:
        end = _span_end(text, opener.start())
        yield opener.start(), end
        if end is None:
            return
        opener = _OPENER.search(text, end)


def _span_end(text: str, start: int) -> int | None:
    """One past the bracket closing the one at `start`, or past the first mismatched closer."""
    expected: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
        elif char in _CLOSERS:
            expected.append(_CLOSERS[char])
        elif char in "}]" and (char != expected.pop() or not expected):
            return index + 1
        index += 1
    return None


def _string_end(text: str, start: int) -> int:
    """The index of the quote closing the string opened at `start` (the text's end if none does)."""
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            return index
        index += 1
    return len(text)


def _why_not(output: str, whole: str, fences: list[_Fence], spans: list[tuple[int, int | None]]) -> NoJson:
    fence = next((f for f in fences if f.body and (f.is_json or not f.tag)), None)
    if fence is not None:
        kind = "```json code fence" if fence.is_json else "code fence"
        where = f"in the {kind} at {_line_and_column(output, fence.start)}"
        return NoJson(f"{_parse_error(fence.body)} ({where})", fence.body)
    if not spans:
        return NoJson("the output holds no JSON object or array")
    start, end = max(spans, key=lambda span: (span[1] or len(output)) - span[0])
    candidate = output[start:end].strip()
    if candidate == whole:
        return NoJson(f"{_parse_error(candidate)} (in the whole output)", candidate)
    kind = "object" if candidate.startswith("{") else "array"
    where = f"in the {kind} at {_line_and_column(output, start)} of the output"
    return NoJson(f"{_parse_error(candidate)} ({where})", candidate)


def _line_and_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line} column {column}"
