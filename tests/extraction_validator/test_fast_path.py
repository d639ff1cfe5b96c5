"""The extraction-validator's fast path (the extraction read by msgspec from JSON, or by fastavro and
msgspec from Avro of the current schema, its raw output validated by the schema's Pydantic model as
on the reference path, the outputs written from plain structs)
gives every message what the reference path (Pydantic, `validate_extraction`, fastavro) gives it:
the same bytes of the valid extraction or of the correction task, and for every changed or broken
event the same outputs or the same dead-letter reason and message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.contracts.strategies import records
from tests.support.avro_changes import AVRO, avro_headers, changed_avro
from tests.support.fast_path import MAX_OUTPUT_BYTES, handled_both_ways, produced_or_dead_letter
from tests.support.json_changes import changed_json, json_values
from tests.support.messages import StoredMessage
from workers.contracts import EventCodec, Extraction, ReviewTask, ValidExtraction
from workers.contracts.plain import PlainExtraction
from workers.extraction_validator import ExtractionSchemas, validate_extraction
from workers.extraction_validator.validation import validate_plain
from workers.runtime.batch import BatchHandler, MessageResult
from workers.runtime.worker import FastPath, WorkerSpec

NOW = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)
JSON = [("content-type", b"application/json")]
REFERENCE = EventCodec(fast=False)
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "extractions.jsonl"
SAMPLE_LINES = [line for line in SAMPLES.read_text().splitlines() if line.strip()]
SCHEMAS = ExtractionSchemas.from_modules(["workers.extraction_validator.examples"])
SPEC = WorkerSpec(
    name="extraction-validator",
    input_topic="extractions",
    input_types=(Extraction,),
    handler=lambda event, _origin: [validate_extraction(event, SCHEMAS, now=NOW)],
    outputs={ValidExtraction: "extractions-valid", ReviewTask: "review-tasks"},
    fast_path=FastPath(PlainExtraction, lambda event: [validate_plain(event, SCHEMAS, now=NOW)]),
)


def both_paths(value: bytes, headers: list[tuple[str, bytes]] = JSON) -> tuple[MessageResult, MessageResult]:
    message: Any = StoredMessage(value, headers, key=b"k", topic="extractions", offset=3)
    return handled_both_ways(SPEC, message)


def took_fast_path(result: MessageResult) -> bool:
    return result.rejection is None and result.processed is None


outcome_of = produced_or_dead_letter


def test_every_bundled_sample_takes_the_fast_path_to_the_reference_bytes() -> None:
    handler = BatchHandler(SPEC, EventCodec(), MAX_OUTPUT_BYTES)
    topics = set()
    for line in SAMPLE_LINES:
        fast, reference = both_paths(line.encode())
        assert took_fast_path(fast), line[:80]
        assert outcome_of(fast) == outcome_of(reference)
        handler(StoredMessage(line.encode(), JSON))  # type: ignore[arg-type]
        topics.update(e.topic for e in fast.encoded)
    assert handler.fallbacks == 0
    assert topics == {"extractions-valid", "review-tasks"}  # valid ones and correction tasks


@st.composite
def changed_raw_outputs(draw: st.DrawFn) -> bytes:
    """A sample extraction whose raw output is changed the ways an LLM gets it wrong: cut off, wrapped
    in a fence or in prose, a value of the JSON replaced, or any text at all."""
    document = json.loads(draw(st.sampled_from(SAMPLE_LINES)))
    raw = document["raw_output"]
    change = draw(st.sampled_from(["cut", "fence", "prose", "value", "text", "schema"]))
    if change == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif change == "fence":
        raw = f"Here it is:\n```{draw(st.sampled_from(['json', 'JSON', '', 'python']))}\n{raw}\n```\nDone."
    elif change == "prose":
        raw = f"The result is {raw} [1] - hope this helps."
    elif change == "value":
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed:
            parsed[draw(st.sampled_from(sorted(parsed)))] = draw(json_values())
            raw = json.dumps(parsed, ensure_ascii=draw(st.booleans()))
    elif change == "text":
        raw = draw(st.text(alphabet=st.sampled_from('{}[]":,0123456789 abc\\\n`'), max_size=40))
    else:
        document["schema_name"], document["schema_version"] = draw(
            st.sampled_from([("invoice", "1"), ("resume", "1"), ("resume", "2"), ("unknown", "1")])
        )
    document["raw_output"] = raw
    return json.dumps(document).encode()


@settings(max_examples=400)
@given(value=changed_raw_outputs())
def test_a_changed_raw_output_gets_the_reference_outputs_or_dead_letter(value: bytes) -> None:
    fast, reference = both_paths(value)

    assert outcome_of(fast) == outcome_of(reference)
    assert took_fast_path(fast) == (reference.rejection is None)


FIELD_PATHS = [
    ("event_id",),
    ("occurred_at",),
    ("document",),
    ("document", "id"),
    ("document", "text"),
    ("schema_name",),
    ("schema_version",),
    ("raw_output",),
    ("model",),
    ("model", "name"),
    ("model", "version"),
]


@st.composite
def changed_extraction_json(draw: st.DrawFn) -> bytes:
    """A sample extraction's JSON with one thing changed (`changed_json`)."""
    document = json.loads(draw(st.sampled_from(SAMPLE_LINES)))
    return changed_json(draw, document, FIELD_PATHS, '"schema_version": "1", "schema_version": "2"')


@settings(max_examples=400)
@given(value=changed_extraction_json())
def test_a_changed_extraction_gets_the_reference_outputs_or_dead_letter_reason(value: bytes) -> None:
    fast, reference = both_paths(value)

    assert outcome_of(fast) == outcome_of(reference)


def test_every_bundled_sample_in_avro_takes_the_fast_path_to_the_reference_bytes() -> None:
    topics: set[str] = set()
    for line in SAMPLE_LINES:
        event = REFERENCE.decode(line.encode(), JSON, Extraction)
        fast, reference = both_paths(REFERENCE.encode(event), AVRO)
        assert took_fast_path(fast), line[:80]
        assert outcome_of(fast) == outcome_of(reference)
        topics.update(e.topic for e in fast.encoded)
    assert topics == {"extractions-valid", "review-tasks"}


# Extractions of the samples' schemas with their raw outputs changed, and of any schema at all.
extractions = st.one_of(
    changed_raw_outputs().map(lambda value: REFERENCE.decode(value, JSON, Extraction)),
    records(Extraction),
)


@settings(max_examples=200)
@given(event=extractions, headers=avro_headers)
def test_every_extraction_in_avro_gets_the_reference_outputs_or_dead_letter(
    event: Extraction, headers: list[tuple[str, bytes]]
) -> None:
    fast, reference = both_paths(REFERENCE.encode(event), headers)

    assert outcome_of(fast) == outcome_of(reference)
    assert took_fast_path(fast) == (reference.rejection is None)


@settings(max_examples=400)
@given(value=changed_avro(extractions), headers=avro_headers)
def test_a_changed_extraction_in_avro_gets_the_reference_outputs_or_dead_letter_reason(
    value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    fast, reference = both_paths(value, headers)

    assert outcome_of(fast) == outcome_of(reference)
