"""The worker on the real broker: every extraction lands exactly once, where its output sends it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import TopicFactory, unique_name
from tests.extraction_validator.samples import dumps, extraction, invoice, resume
from tests.runtime.conftest import running
from tests.support.kafka import Message, Received, produce, read_topic
from workers.config import Settings, load_settings
from workers.contracts import (
    JSON_CONTENT_TYPE,
    Extraction,
    JsonLocation,
    ReviewReason,
    ReviewTask,
    TaskKind,
    ValidExtraction,
    decode,
    encode,
    to_json,
)
from workers.extraction_validator import ExtractionSchemas
from workers.extraction_validator.worker import extraction_validator
from workers.runtime.dead_letters import read_dead_letter_headers
from workers.runtime.topics import dead_letter_topic_config

pytestmark = pytest.mark.kafka

EXAMPLES = "workers.extraction_validator.examples"
USER_MODULE = "tests.extraction_validator.user_schemas"
EXTRACTIONS_PER_CASE = 25
SCHEMAS = ExtractionSchemas.from_modules([EXAMPLES, USER_MODULE])


@dataclass(frozen=True)
class Topics:
    extractions: str
    dead_letters: str
    valid: str
    review_tasks: str


@dataclass(frozen=True)
class Case:
    """One kind of extraction and what must become of it."""

    schema_name: str
    raw_output: str
    schema_version: str = "1"
    location: JsonLocation | None = None
    valid_json: str | None = None
    issues: list[tuple[str, str]] = field(default_factory=list)
    suggested: str | None = None
    dead_letter_reason: str | None = None

    @property
    def outcome(self) -> str:
        if self.dead_letter_reason is not None:
            return "dead letter"
        return "valid" if self.location is not None else "review"


def _invoice_with_bad_third_line() -> dict[str, Any]:
    document = invoice()
    document["line_items"][2]["amount"] = "120.15"
    return document


def _resume_without_name() -> dict[str, Any]:
    document = resume()
    del document["full_name"]
    return document


INVOICE, RESUME = dumps(invoice()), dumps(resume())
WHOLE, FENCE, EMBEDDED = JsonLocation.WHOLE_OUTPUT, JsonLocation.CODE_FENCE, JsonLocation.EMBEDDED_IN_TEXT
FENCE_NOTE = ("", "JSON was extracted from a code fence; the output should be the JSON alone")
LABEL = '{"tracking_number": "JD014600003SE", "carrier": "UPS", "weight_kg": 0.5, ' + (
    '"recipient": {"name": "Ada", "postal_code": "20457"}}'
)

CASES: dict[str, Case] = {
    "valid invoice": Case("invoice", INVOICE, location=WHOLE, valid_json=INVOICE),
    "valid resume": Case("resume", RESUME, location=WHOLE, valid_json=RESUME),
    "fenced invoice": Case(
        "invoice",
        f"Here it is:\n```json\n{INVOICE}\n```",
        location=FENCE,
        valid_json=INVOICE,
    ),
    "resume in prose": Case(
        "resume",
        f"The candidate: {RESUME} (extracted)",
        location=EMBEDDED,
        valid_json=RESUME,
    ),
    "user's schema": Case("shipping_label", LABEL, schema_version="1.1", location=WHOLE, valid_json=LABEL),
    "invoice with a bad line": Case(
        "invoice",
        dumps(_invoice_with_bad_third_line()),
        issues=[("line_items[2].amount", "Input should be an object")],
        suggested=dumps(_invoice_with_bad_third_line()),
    ),
    "fenced resume without name": Case(
        "resume",
        f"```json\n{dumps(_resume_without_name())}\n```",
        issues=[FENCE_NOTE, ("full_name", "Field required")],
        suggested=dumps(_resume_without_name()),
    ),
    "array instead of object": Case(
        "invoice",
        json.dumps([invoice()]),
        issues=[("", "Input should be an object")],
        suggested=json.dumps([invoice()]),
    ),
    "prose only": Case(
        "resume",
        "I could not read the document.",
        issues=[("", "not JSON: the output holds no JSON object or array")],
    ),
    "trailing comma": Case(
        "invoice",
        '{"invoice_number": "A-1",}',
        issues=[("", "not JSON: trailing comma at line 1 column 26 (in the whole output)")],
        suggested='{"invoice_number": "A-1",}',
    ),
    "unknown schema": Case("receipt", INVOICE, dead_letter_reason="unknown_schema"),
    "unknown version": Case("invoice", INVOICE, schema_version="7", dead_letter_reason="unknown_schema"),
}


@pytest.fixture
def topics(make_topic: TopicFactory) -> Topics:
    extractions = make_topic("extractions", partitions=3)
    dead_letters = make_topic(name=extractions + ".dlq", partitions=1, config=dead_letter_topic_config())
    valid, review_tasks = make_topic("valid", partitions=3), make_topic("tasks", partitions=3)
    return Topics(extractions, dead_letters, valid, review_tasks)


@pytest.fixture
def settings(kafka_bootstrap: str, topics: Topics) -> Settings:
    return load_settings(
        kafka_bootstrap=kafka_bootstrap,
        group_id_prefix=unique_name("test"),
        topics={
            "extractions": topics.extractions,
            "extractions_valid": topics.valid,
            "review_tasks": topics.review_tasks,
        },
        extraction_validator={"schema_modules": [EXAMPLES, USER_MODULE]},
    )


def message_of(event: Extraction, index: int) -> Message:
    """Every third extraction is sent as JSON, the form LLM applications emit; the rest as Avro."""
    key = str(event.event_id).encode()
    if index % 3 == 0:
        return key, to_json(event), [("content-type", JSON_CONTENT_TYPE.encode())]
    return key, encode(event), []


def by_key(messages: list[Received]) -> dict[str, Received]:
    keys = [message.key.decode() for message in messages if message.key is not None]
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    assert not duplicates, f"keys produced more than once: {duplicates[:5]}"
    return {message.key.decode(): message for message in messages if message.key is not None}


def test_extractions_are_routed_to_valid_review_or_dead_letters(
    kafka_bootstrap: str, topics: Topics, settings: Settings
) -> None:
    sent: dict[str, tuple[Case, Extraction, bytes | None]] = {}
    messages: list[Message] = []
    for index in range(EXTRACTIONS_PER_CASE):
        for case in CASES.values():
            event = extraction(case.schema_name, case.raw_output, case.schema_version, index=index)
            message = message_of(event, len(messages))
            messages.append(message)
            sent[str(event.event_id)] = (case, event, message[1])
    messages.append((b"not-an-extraction", json.dumps({"hello": "world"}).encode(), []))
    produce(kafka_bootstrap, topics.extractions, messages)
    expected: dict[str, set[str]] = {"valid": set(), "review": set(), "dead letter": set()}
    for key, (case, _, _) in sent.items():
        expected[case.outcome].add(key)

    with running(extraction_validator(settings), settings):
        valid = by_key(read_topic(kafka_bootstrap, topics.valid, expect=len(expected["valid"])))
        tasks = by_key(read_topic(kafka_bootstrap, topics.review_tasks, expect=len(expected["review"])))
        dead = by_key(
            read_topic(kafka_bootstrap, topics.dead_letters, expect=len(expected["dead letter"]) + 1)
        )

    assert len(messages) == 301
    assert (len(valid), len(tasks), len(dead)) == (125, 125, 51)
    assert set(valid) == expected["valid"]
    assert set(tasks) == expected["review"]
    assert set(dead) == expected["dead letter"] | {"not-an-extraction"}
    for key, output in valid.items():
        assert_valid(output, *sent[key][:2])
    for key, output in tasks.items():
        assert_correction_task(output, *sent[key][:2])
    for key, letter in dead.items():
        if key == "not-an-extraction":
            assert read_dead_letter_headers(list(letter.headers.items()))["reason"] == "schema_mismatch"
        else:
            assert_dead_letter(letter, *sent[key])


def assert_valid(message: Received, case: Case, event: Extraction) -> None:
    validated = decode(message.value, list(message.headers.items()), ValidExtraction)
    assert validated.event_id == event.event_id and validated.source == event
    assert validated.extracted_from is case.location
    assert (validated.schema_name, validated.schema_version) == (case.schema_name, case.schema_version)
    assert validated.occurred_at == event.occurred_at
    assert validated.validated_at >= event.occurred_at
    model = SCHEMAS.model_for(case.schema_name, case.schema_version)
    assert validated.validated_json == model.model_validate_json(case.valid_json or "").model_dump_json()


def assert_correction_task(message: Received, case: Case, event: Extraction) -> None:
    task = decode(message.value, list(message.headers.items()), ReviewTask)
    assert (task.task_id, task.kind, task.reason) == (
        event.event_id,
        TaskKind.EXTRACTION,
        ReviewReason.SCHEMA_INVALID,
    )
    assert task.source == event, "the task carries the extraction, raw output included"
    assert [(issue.path, issue.message) for issue in task.suggestion.validation_errors] == case.issues
    assert task.suggestion.corrected_json == case.suggested
    assert task.suggestion.agent == f"{event.model.name}@{event.model.version}"


def assert_dead_letter(message: Received, case: Case, event: Extraction, value: bytes | None) -> None:
    failure = read_dead_letter_headers(list(message.headers.items()))
    assert failure["reason"] == case.dead_letter_reason
    assert failure["worker"] == "extraction-validator"
    assert f"'{event.schema_name}'" in failure["error.message"]
    assert message.value == value, "the dead letter keeps the original value"
