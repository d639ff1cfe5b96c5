"""The bracket scan of `json_extraction` against a character-by-character oracle, on texts that
are mostly brackets, quotes and backslashes, and on real JSON documents in prose and fences."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.contracts import JsonLocation
from workers.extraction_validator import FoundJson, NoJson, find_json
from workers.extraction_validator.json_extraction import (
    _fences,
    _outermost_spans,
    _parse_error,
    _ParseErrors,
    _why_not,
)

Span = tuple[int, int | None]


def slow_outermost_spans(text: str) -> list[Span]:
    """The outermost spans, found one character at a time (the module's algorithm before regexes)."""
    spans: list[Span] = []
    index = 0
    while index < len(text):
        if text[index] in "{[":
            end = slow_span_end(text, index)
            spans.append((index, end))
            if end is None:
                break
            index = end
        else:
            index += 1
    return spans


def slow_span_end(text: str, start: int) -> int | None:
    expected: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char == '"':
            index = slow_string_end(text, index)
        elif char in "{[":
            expected.append("}" if char == "{" else "]")
        elif char in "}]" and (char != expected.pop() or not expected):
            return index + 1
        index += 1
    return None


def slow_string_end(text: str, start: int) -> int:
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index
        else:
            index += 1
    return len(text)


def slow_find_json(output: str) -> FoundJson | NoJson:
    """`find_json` as it was: the slow scan, and every text parsed afresh each time it is met."""
    whole = output.strip().lstrip("\ufeff").strip()
    if not whole:
        return NoJson("the output is empty")
    if _parse_error(whole) is None:
        return FoundJson(whole, JsonLocation.WHOLE_OUTPUT)
    fences = _fences(output)
    for fence in fences:
        if fence.body and _parse_error(fence.body) is None:
            return FoundJson(fence.body, JsonLocation.CODE_FENCE)
    spans = slow_outermost_spans(output)
    parsing = [
        output[start:end]
        for start, end in spans
        if end is not None and _parse_error(output[start:end]) is None
    ]
    if parsing:
        return FoundJson(max(parsing, key=len), JsonLocation.EMBEDDED_IN_TEXT)
    return _why_not(output, whole, fences, spans, _ParseErrors())


# Mostly what the scan looks at, and enough else for spans like [1] or {"a": 1} to parse.
bracket_soup = st.text(st.sampled_from('{}[]"\\' * 4 + "ab1 :,\n`é"), max_size=60)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.sampled_from('ab {}[]"\\\n/é'), max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text('ab{}[]"\\', max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def json_documents(draw: st.DrawFn) -> str:
    """A JSON document as an LLM might write it: compact or indented, sometimes cut off."""
    document = json.dumps(
        draw(json_values),
        indent=draw(st.sampled_from([None, 2])),
        ensure_ascii=draw(st.booleans()),
    )
    if draw(st.booleans()):
        return document
    return document[: draw(st.integers(min_value=0, max_value=len(document)))]


def fenced(document: str, tag: str) -> str:
    return f"```{tag}\n{document}\n```"


json_pieces = json_documents() | st.builds(fenced, json_documents(), st.sampled_from(["json", "", "python"]))
prose = st.sampled_from(["Here is the JSON:", "As stated in [1] and [2],", 'the "quoted" word', "{", "]"])
prose_and_json = st.builds(
    str.join,
    st.sampled_from(["", " ", "\n"]),
    st.lists(json_pieces | prose | bracket_soup, min_size=1, max_size=5),
)
outputs = bracket_soup | prose_and_json


@settings(max_examples=500)
@given(text=outputs)
def test_spans_are_those_of_the_character_scan(text: str) -> None:
    assert list(_outermost_spans(text)) == slow_outermost_spans(text)


@settings(max_examples=500)
@given(output=outputs)
def test_find_json_is_what_it_was_with_the_character_scan(output: str) -> None:
    assert find_json(output) == slow_find_json(output)


@pytest.mark.parametrize(
    "output",
    [
        pytest.param('{"a": "\\', id="backslash at the end, in a string"),
        pytest.param('{"a": "b}', id="string never closed"),
        pytest.param('"{"} {"}" [1]', id="quotes outside spans open no string"),
        pytest.param("{] [1]", id="mismatched closer"),
        pytest.param('[{"a": "\\"]"}] {', id="escaped quote, then a bracket never closed"),
        pytest.param('x {"a": "\\\\"} y', id="escaped backslash before the closing quote"),
        pytest.param('{"a":\n"\\\n"}', id="backslash before a newline"),
    ],
)
def test_edge_cases_are_scanned_as_by_the_character_scan(output: str) -> None:
    assert list(_outermost_spans(output)) == slow_outermost_spans(output)
    assert find_json(output) == slow_find_json(output)
