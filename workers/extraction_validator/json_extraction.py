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
# Everything up to the next bracket, strings skipped whole (escapes included): `bracket` is that
# bracket, or the quote of a string never closed, or empty at the end of the text. It matches at
# every position, so `finditer` walks the text without gaps.
_TO_NEXT_BRACKET = re.compile(
    r"""
    (?: [^"{}\[\]]++              # neither a quote nor a bracket
      | "(?:[^"\\]++|\\.)*+"      # a whole string
    )*+
    (?P<bracket>[{}\[\]"]?)
    """,
    re.DOTALL | re.VERBOSE,
)


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
    whole_error = _parse_error(whole)
    if whole_error is None:
        return FoundJson(whole, JsonLocation.WHOLE_OUTPUT)
    fences = _fences(output)
    failed = [(whole, whole_error)]
    for fence in fences:
        if not fence.body:
            continue
        error = _parse_error(fence.body)
        if error is None:
            return FoundJson(fence.body, JsonLocation.CODE_FENCE)
        failed.append((fence.body, error))
    # Only the rules below meet a text again: an output found above pays no hashing for the memo.
    parse_errors = _ParseErrors(failed)
    spans = list(_outermost_spans(output))
    embedded = _longest_parsing(output, spans, parse_errors)
    if embedded is not None:
        return FoundJson(embedded, JsonLocation.EMBEDDED_IN_TEXT)
    return _why_not(output, whole, fences, spans, parse_errors)


def _longest_parsing(
    output: str, spans: list[tuple[int, int | None]], parse_errors: _ParseErrors
) -> str | None:
    """The longest closed span that parses, the first of equal length; tried longest first."""
    closed = [output[start:end] for start, end in spans if end is not None]
    # A stable sort, also with `reverse`: spans of equal length stay in the order of the text.
    for text in sorted(closed, key=len, reverse=True):
        if parse_errors[text] is None:
            return text
    return None


class _ParseErrors(dict[str, str | None]):
    """The parser's message for each text, None if it parses; each text is parsed once.

    The rules meet the same text more than once: a fence's body is often also a span, the whole
    output its only span, and `_why_not` reports an error met before.
    """

    def __missing__(self, text: str) -> str | None:
        error = self[text] = _parse_error(text)
        return error


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
    expected = [_CLOSERS[text[start]]]
    for match in _TO_NEXT_BRACKET.finditer(text, start + 1):
        bracket = match["bracket"]
        if bracket in _CLOSERS:
            expected.append(_CLOSERS[bracket])
        elif bracket == '"':  # a string never closed runs to the end of the text
            return None
        elif bracket and (bracket != expected.pop() or not expected):
            return match.end()
    return None


def _why_not(
    output: str,
    whole: str,
    fences: list[_Fence],
    spans: list[tuple[int, int | None]],
    parse_errors: _ParseErrors,
) -> NoJson:
    fence = next((f for f in fences if f.body and (f.is_json or not f.tag)), None)
    if fence is not None:
        kind = "```json code fence" if fence.is_json else "code fence"
        where = f"in the {kind} at {_line_and_column(output, fence.start)}"
        return NoJson(f"{parse_errors[fence.body]} ({where})", fence.body)
    if not spans:
        return NoJson("the output holds no JSON object or array")
    start, end = max(spans, key=lambda span: (span[1] or len(output)) - span[0])
    candidate = output[start:end].strip()
    if candidate == whole:
        return NoJson(f"{parse_errors[candidate]} (in the whole output)", candidate)
    kind = "object" if candidate.startswith("{") else "array"
    where = f"in the {kind} at {_line_and_column(output, start)} of the output"
    return NoJson(f"{parse_errors[candidate]} ({where})", candidate)


def _line_and_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line} column {column}"
