"""The validator's decision for each kind of output: valid and flowing on, a correction task, or unknown."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tests.extraction_validator.samples import RESUME, dumps, extraction, invoice, resume
from workers.contracts import (
    Extraction,
    JsonLocation,
    ReviewReason,
    ReviewTask,
    TaskKind,
    ValidExtraction,
)
from workers.extraction_validator import ExtractionSchemas, UnknownSchema, field_path, validate_extraction
from workers.extraction_validator.examples import Invoice, Resume

MODELS: dict[str, type[BaseModel]] = {"invoice": Invoice, "resume": Resume}
NOW = datetime(2025, 3, 2, 9, 0, 0, tzinfo=UTC)
FENCE_NOTE = ("", "JSON was extracted from a code fence; the output should be the JSON alone")
PROSE_NOTE = ("", "JSON was extracted from surrounding prose; the output should be the JSON alone")


@pytest.fixture(scope="module")
def schemas() -> ExtractionSchemas:
    return ExtractionSchemas.from_modules(["workers.extraction_validator.examples"])


def validate(schemas: ExtractionSchemas, event: Extraction) -> ValidExtraction | ReviewTask:
    return validate_extraction(event, schemas, now=NOW)


def issues_of(task: ValidExtraction | ReviewTask) -> list[tuple[str, str]]:
    assert isinstance(task, ReviewTask), f"expected a correction task, got {task!r}"
    return [(issue.path, issue.message) for issue in task.suggestion.validation_errors]


def edited(document: dict[str, Any], edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    edit(document)
    return document


def fenced(text: str) -> str:
    return f"Here is the extracted data:\n```json\n{text}\n```\nLet me know if you need anything else."


def in_prose(text: str) -> str:
    return f"Sure. Based on the document, the result is {text} - hope this helps."


# -- valid output flows on -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema_name", "document", "wrap", "location"),
    [
        pytest.param("invoice", invoice(), str, JsonLocation.WHOLE_OUTPUT, id="invoice, whole"),
        pytest.param("invoice", invoice(), fenced, JsonLocation.CODE_FENCE, id="invoice, fenced"),
        pytest.param("invoice", invoice(), in_prose, JsonLocation.EMBEDDED_IN_TEXT, id="invoice, in prose"),
        pytest.param("resume", resume(), str, JsonLocation.WHOLE_OUTPUT, id="resume, whole"),
        pytest.param("resume", resume(), fenced, JsonLocation.CODE_FENCE, id="resume, fenced"),
        pytest.param(
            "resume",
            {"full_name": "Grace Hopper", "contact": {}},
            in_prose,
            JsonLocation.EMBEDDED_IN_TEXT,
            id="resume, only required fields, in prose",
        ),
        pytest.param(
            "invoice",
            invoice(due_date=None, tax=None, total={"amount": "1470.12", "currency": "EUR"}),
            str,
            JsonLocation.WHOLE_OUTPUT,
            id="invoice without tax and due date",
        ),
    ],
)
def test_valid_output_flows_on_with_its_canonical_json(
    schemas: ExtractionSchemas,
    schema_name: str,
    document: dict[str, Any],
    wrap: Callable[[str], str],
    location: JsonLocation,
) -> None:
    event = extraction(schema_name, wrap(dumps(document)))

    result = validate(schemas, event)

    model = MODELS[schema_name]
    assert result == ValidExtraction(
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        validated_at=NOW,
        schema_name=schema_name,
        schema_version="1",
        validated_json=model.model_validate(document).model_dump_json(),
        extracted_from=location,
        source=event,
    )


def test_the_canonical_json_normalises_values_and_fills_defaults(schemas: ExtractionSchemas) -> None:
    resume_result = validate(
        schemas, extraction("resume", dumps({"full_name": " Grace Hopper ", "contact": {}}))
    )
    invoice_result = validate(schemas, extraction("invoice", dumps(invoice())))

    assert isinstance(resume_result, ValidExtraction) and isinstance(invoice_result, ValidExtraction)
    assert json.loads(resume_result.validated_json) == {
        "full_name": "Grace Hopper",
        "contact": {"email": None, "phone": None, "city": None, "country": None},
        "summary": None,
        "experience": [],
        "education": [],
        "skills": [],
        "languages": [],
        "desired_salary": None,
    }
    second_line = json.loads(invoice_result.validated_json)["line_items"][1]
    assert second_line["quantity"] == "3", "decimals are exact strings"
    assert second_line["unit_price"] == {"amount": "49.99", "currency": "EUR"}


# -- output that is not JSON -----------------------------------------------------------------------

TRUNCATED = dumps(invoice())[:200]


@pytest.mark.parametrize(
    ("raw_output", "message", "suggested"),
    [
        pytest.param("", "not JSON: the output is empty", None, id="empty string"),
        pytest.param(
            "I'm sorry, the document does not look like an invoice.",
            "not JSON: the output holds no JSON object or array",
            None,
            id="prose only",
        ),
        pytest.param(
            TRUNCATED,
            "not JSON: EOF while parsing a value at line 8 column 34 (in the whole output)",
            TRUNCATED,
            id="truncated JSON",
        ),
        pytest.param(
            '{"invoice_number": "INV-1", "line_items": [{"description": "x",},],}',
            "not JSON: trailing comma at line 1 column 64 (in the whole output)",
            '{"invoice_number": "INV-1", "line_items": [{"description": "x",},],}',
            id="trailing commas",
        ),
        pytest.param(
            "{'invoice_number': 'INV-1'}",
            "not JSON: key must be a string at line 1 column 2 (in the whole output)",
            "{'invoice_number': 'INV-1'}",
            id="single quotes",
        ),
        pytest.param(
            fenced('{"invoice_number": "INV-1",'),
            "not JSON: EOF while parsing a value at line 1 column 27 "
            "(in the ```json code fence at line 2 column 1)",
            '{"invoice_number": "INV-1",',
            id="fence holding broken JSON",
        ),
    ],
)
def test_output_that_is_not_json_becomes_a_correction_task(
    schemas: ExtractionSchemas, raw_output: str, message: str, suggested: str | None
) -> None:
    event = extraction("invoice", raw_output)

    task = validate(schemas, event)

    assert isinstance(task, ReviewTask)
    assert issues_of(task) == [("", message)]
    assert task.suggestion.corrected_json == suggested
    assert task.source == event and task.source.raw_output == raw_output
    assert (task.task_id, task.kind, task.reason) == (
        event.event_id,
        TaskKind.EXTRACTION,
        ReviewReason.SCHEMA_INVALID,
    )
    assert task.suggestion.agent == "extractor-llm@2025-02"
    assert task.created_at == NOW


# -- JSON that fails the model ---------------------------------------------------------------------


def _del(*keys: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for key in keys:
            del document[key]

    return edit


def _line(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["line_items"][index].update(changes)

    return edit


def _drop_from_lines(fields: dict[int, str]) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for index, field in fields.items():
            del document["line_items"][index][field]

    return edit


INVALID = [
    pytest.param(
        "invoice",
        edited(invoice(), _del("invoice_number", "seller")),
        [("invoice_number", "Field required"), ("seller", "Field required")],
        id="missing required fields",
    ),
    pytest.param(
        "invoice",
        edited(invoice(), lambda d: d["buyer"].pop("name")),
        [("buyer.name", "Field required")],
        id="missing nested field",
    ),
    pytest.param(
        "invoice",
        invoice(issue_date="01/03/2025", invoice_number=42),
        [
            ("invoice_number", "Input should be a valid string"),
            ("issue_date", "Input should be a valid date or datetime, invalid character in year"),
        ],
        id="wrong types",
    ),
    pytest.param(
        "invoice",
        edited(invoice(), _line(2, amount="120.15")),
        [("line_items[2].amount", "Input should be an object")],
        id="list item field of the wrong type",
    ),
    pytest.param(
        "invoice",
        edited(invoice(), _line(2, amount={"amount": "-120.15", "currency": "EUR"}, quantity="many")),
        [
            ("line_items[2].quantity", "Input should be a valid decimal"),
            ("line_items[2].amount.amount", "Input should be greater than or equal to 0"),
        ],
        id="several errors in one list item",
    ),
    pytest.param(
        "invoice",
        edited(invoice(), _drop_from_lines({0: "description", 1: "unit_price"})),
        [("line_items[0].description", "Field required"), ("line_items[1].unit_price", "Field required")],
        id="errors in several list items",
    ),
    pytest.param(
        "invoice",
        edited(invoice(), _line(1, amount={"amount": "150.00", "currency": "EUR"})),
        [
            (
                "line_items[1]",
                "Value error, amount 150.00 is not quantity times unit price (3 * 49.99 = 149.97)",
            )
        ],
        id="line amount that is not quantity times price",
    ),
    pytest.param(
        "invoice",
        invoice(total={"amount": "1749.445", "currency": "euro"}),
        [
            ("total.amount", "Decimal input should have no more than 2 decimal places"),
            ("total.currency", "String should match pattern '^[A-Z]{3}$'"),
        ],
        id="money with too many decimals and no ISO currency",
    ),
    pytest.param(
        "invoice",
        invoice(subtotal={"amount": "1470.00", "currency": "EUR"}),
        [("", "Value error, subtotal 1470.00 is not the sum of the line amounts (1470.12)")],
        id="totals that do not add up",
    ),
    pytest.param(
        "invoice",
        invoice(line_items=[], currency="EUR"),
        [
            ("line_items", "List should have at least 1 item after validation, not 0"),
            ("currency", "Extra inputs are not permitted"),
        ],
        id="empty list and an invented field",
    ),
    pytest.param(
        "invoice",
        [invoice()],
        [("", "Input should be an object")],
        id="JSON array instead of object",
    ),
    pytest.param("invoice", "INV-1", [("", "Input should be an object")], id="JSON string instead of object"),
    pytest.param(
        "resume",
        resume(
            contact={"email": "ada at example.org"},
            experience=[
                {"employer": "X", "title": "Y", "start_date": "2020-01-01", "end_date": "2019-12-31"}
            ],
            languages=[RESUME["languages"][0], {"language": "German", "level": "fluent"}],
        ),
        [
            ("contact.email", "String should match pattern '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'"),
            ("experience[0]", "Value error, end date 2019-12-31 is before the start date 2020-01-01"),
            ("languages[1].level", "Input should be 'A1', 'A2', 'B1', 'B2', 'C1', 'C2' or 'native'"),
        ],
        id="resume with nested errors",
    ),
    pytest.param(
        "resume",
        resume(experience=[{"employer": "X", "title": "Y", "start_date": "March 2020"}], skills="Python"),
        [
            (
                "experience[0].start_date",
                "Input should be a valid date or datetime, invalid character in year",
            ),
            ("skills", "Input should be a valid array"),
        ],
        id="resume with wrong types",
    ),
]


@pytest.mark.parametrize(("schema_name", "document", "expected"), INVALID)
def test_json_failing_the_model_becomes_a_correction_task_with_every_error(
    schemas: ExtractionSchemas, schema_name: str, document: Any, expected: list[tuple[str, str]]
) -> None:
    raw_output = dumps(document)
    event = extraction(schema_name, raw_output)

    task = validate(schemas, event)

    assert issues_of(task) == expected
    assert isinstance(task, ReviewTask)
    assert task.suggestion.corrected_json == raw_output
    assert task.source == event


@pytest.mark.parametrize(
    ("wrap", "note"),
    [pytest.param(fenced, FENCE_NOTE, id="fenced"), pytest.param(in_prose, PROSE_NOTE, id="in prose")],
)
def test_invalid_json_found_inside_text_is_noted_in_the_task(
    schemas: ExtractionSchemas, wrap: Callable[[str], str], note: tuple[str, str]
) -> None:
    document = dumps(edited(invoice(), _del("total")))

    task = validate(schemas, extraction("invoice", wrap(document)))

    assert issues_of(task) == [note, ("total", "Field required")]
    assert isinstance(task, ReviewTask)
    assert task.suggestion.corrected_json == document, "the suggestion is the JSON alone"


def test_the_number_of_issues_listed_is_capped(schemas: ExtractionSchemas) -> None:
    lines = [{"description": ""} for _ in range(300)]

    issues = issues_of(validate(schemas, extraction("invoice", dumps(invoice(line_items=lines)))))

    assert len(issues) == 201
    assert issues[-1] == ("", "and 1000 more validation errors")


# -- unknown schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema_name", "schema_version", "message"),
    [
        ("receipt", "1", "no extraction schema 'receipt' is registered; registered: invoice, resume"),
        ("invoice", "2", "extraction schema 'invoice' has no version '2'; registered: 1"),
        ("Invoice", "1", "no extraction schema 'Invoice' is registered; registered: invoice, resume"),
    ],
)
def test_an_unknown_schema_or_version_is_rejected(
    schemas: ExtractionSchemas, schema_name: str, schema_version: str, message: str
) -> None:
    with pytest.raises(UnknownSchema) as rejected:
        validate(schemas, extraction(schema_name, dumps(invoice()), schema_version=schema_version))

    assert rejected.value.reason == "unknown_schema"
    assert str(rejected.value) == message


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ((), ""),
        (("total",), "total"),
        (("line_items", 2, "amount"), "line_items[2].amount"),
        ((0, "a"), "[0].a"),
    ],
)
def test_field_paths(location: tuple[int | str, ...], path: str) -> None:
    assert field_path(location) == path
