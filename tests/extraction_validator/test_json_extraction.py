"""Finding the JSON in an LLM's output: each rule, and each way output fails to be JSON."""

from __future__ import annotations

import pytest

from workers.contracts import JsonLocation
from workers.extraction_validator import FoundJson, NoJson, find_json

OBJECT = '{"name": "Ada", "tags": ["a", "b"], "nested": {"n": 1}}'

WHOLE = JsonLocation.WHOLE_OUTPUT
FENCE = JsonLocation.CODE_FENCE
EMBEDDED = JsonLocation.EMBEDDED_IN_TEXT


@pytest.mark.parametrize(
    ("output", "text", "location"),
    [
        pytest.param(OBJECT, OBJECT, WHOLE, id="whole object"),
        pytest.param(f"\n\n  {OBJECT}\n", OBJECT, WHOLE, id="whole, surrounded by whitespace"),
        pytest.param(f"\ufeff{OBJECT}", OBJECT, WHOLE, id="whole, after a byte-order mark"),
        pytest.param('[{"a": 1}, {"a": 2}]', '[{"a": 1}, {"a": 2}]', WHOLE, id="whole array"),
        pytest.param("42", "42", WHOLE, id="whole scalar"),
        pytest.param(f"```json\n{OBJECT}\n```", OBJECT, FENCE, id="fence tagged json"),
        pytest.param(f"```JSON\n{OBJECT}\n```", OBJECT, FENCE, id="fence tagged JSON"),
        pytest.param(f"```\n{OBJECT}\n```", OBJECT, FENCE, id="fence without tag"),
        pytest.param(
            f"Here you go:\n```json\n{OBJECT}\n```\nAnything else?", OBJECT, FENCE, id="fence in prose"
        ),
        pytest.param(f"```json {OBJECT}```", OBJECT, FENCE, id="fence on one line"),
        pytest.param(
            f'```json\n{OBJECT}\n```\nor maybe\n```json\n{{"other": true}}\n```',
            OBJECT,
            FENCE,
            id="several fences: the first that parses",
        ),
        pytest.param(
            f'```json\n{{"name": "Ada",}}\n```\nCorrected:\n```json\n{OBJECT}\n```',
            OBJECT,
            FENCE,
            id="several fences: a broken one is passed over",
        ),
        pytest.param(
            f'```\n{{"untagged": 1}}\n```\n```json\n{OBJECT}\n```',
            OBJECT,
            FENCE,
            id="a json fence wins over an earlier untagged one",
        ),
        pytest.param(
            f"```python\nprint('hi')\n```\n```\n{OBJECT}\n```",
            OBJECT,
            FENCE,
            id="another language's fence does not parse and is passed over",
        ),
        pytest.param(f"Sure! The extracted data is {OBJECT}. Let me know.", OBJECT, EMBEDDED, id="in prose"),
        pytest.param(f"Result:\n{OBJECT}\n\nNotes: none", OBJECT, EMBEDDED, id="prose before and after"),
        pytest.param(
            f"As stated in [1] and [2], the data is:\n{OBJECT}",
            OBJECT,
            EMBEDDED,
            id="the longest span wins over citations",
        ),
        pytest.param(
            'Result: {"note": "use } and { freely", "quote": "say \\"}\\""} done',
            '{"note": "use } and { freely", "quote": "say \\"}\\""}',
            EMBEDDED,
            id="brackets and escaped quotes inside strings",
        ),
        pytest.param(
            'First {this is not json} then {"a": {"b": [1, {"c": 2}]}}',
            '{"a": {"b": [1, {"c": 2}]}}',
            EMBEDDED,
            id="a braced span that does not parse is skipped",
        ),
        pytest.param('{"a": 1} // a comment', '{"a": 1}', EMBEDDED, id="a comment after the object"),
        pytest.param(
            'Items: [{"a": 1}, {"a": 2}] and that is all',
            '[{"a": 1}, {"a": 2}]',
            EMBEDDED,
            id="embedded array",
        ),
        pytest.param(
            f'```json\n{{"a": 1,}}\n```\nSorry, fixed: {OBJECT}',
            OBJECT,
            EMBEDDED,
            id="no fence parses but prose holds an object",
        ),
    ],
)
def test_json_is_found(output: str, text: str, location: JsonLocation) -> None:
    assert find_json(output) == FoundJson(text, location)


@pytest.mark.parametrize(
    ("output", "problem", "candidate"),
    [
        pytest.param("", "the output is empty", None, id="empty"),
        pytest.param(" \n\t ", "the output is empty", None, id="whitespace"),
        pytest.param(
            "I could not find an invoice in this document.",
            "the output holds no JSON object or array",
            None,
            id="prose only",
        ),
        pytest.param(
            '{"name": "Ada", "tags": ["a"',
            "EOF while parsing a list at line 1 column 28 (in the whole output)",
            '{"name": "Ada", "tags": ["a"',
            id="truncated",
        ),
        pytest.param(
            'Here it is: {"name": "Ada", "nested": {"n": 1}, "tags": [',
            "EOF while parsing a list at line 1 column 45 (in the object at line 1 column 13 of the output)",
            '{"name": "Ada", "nested": {"n": 1}, "tags": [',
            id="truncated after prose: no inner fragment is taken",
        ),
        pytest.param(
            '{"name": "Ada", "tags": ["a", "b",],}',
            "trailing comma at line 1 column 35 (in the whole output)",
            '{"name": "Ada", "tags": ["a", "b",],}',
            id="trailing commas",
        ),
        pytest.param(
            "{'name': 'Ada'}",
            "key must be a string at line 1 column 2 (in the whole output)",
            "{'name': 'Ada'}",
            id="single quotes",
        ),
        pytest.param(
            '{"score": NaN}',
            "expected value at line 1 column 11 (in the whole output)",
            '{"score": NaN}',
            id="NaN",
        ),
        pytest.param(
            '```json\n{"name": "Ada",}\n```',
            "trailing comma at line 1 column 16 (in the ```json code fence at line 1 column 1)",
            '{"name": "Ada",}',
            id="json fence that does not parse",
        ),
        pytest.param(
            "Sure:\n```\n{\"name\": 'Ada'}\n```",
            "expected value at line 1 column 10 (in the code fence at line 2 column 1)",
            "{\"name\": 'Ada'}",
            id="untagged fence that does not parse",
        ),
        pytest.param(
            'The result is {"name": "Ada",} as requested',
            "trailing comma at line 1 column 16 (in the object at line 1 column 15 of the output)",
            '{"name": "Ada",}',
            id="object in prose that does not parse",
        ),
        pytest.param(
            'Brackets that do not match: {"a": [1, 2}',
            "expected `,` or `]` at line 1 column 12 (in the object at line 1 column 29 of the output)",
            '{"a": [1, 2}',
            id="mismatched brackets",
        ),
    ],
)
def test_output_without_json_says_why(output: str, problem: str, candidate: str | None) -> None:
    assert find_json(output) == NoJson(problem, candidate)


def test_a_long_output_of_brackets_is_scanned_quickly() -> None:
    output = "[x] " * 50_000 + "{" * 1_000

    assert isinstance(find_json(output), NoJson)
