"""The extraction validator's decision, a pure function of the event, the schemas and the time.

- The schema (name and version) is not registered: `UnknownSchema`, a dead letter.
- The output holds JSON (see `json_extraction`) that the schema's model accepts: a `ValidExtraction`
  carrying the model's canonical JSON, `model_dump_json()`. JSON taken from a code fence or from
  surrounding prose flows on as valid too; `extracted_from` records where it was found.
- Anything else is a correction task for a human (`ReviewTask`, kind `extraction`, reason
  `schema_invalid`). Its source is the extraction, raw output included. Its suggestion lists every
  problem as a `ValidationIssue`: "not JSON" when nothing parsed, else a note on where the JSON
  was found (when not the whole output; the corrected output should be the JSON alone) followed
  by each validation error, at its field path (`line_items[2].amount`; empty for the whole object).
  The suggested `corrected_json` is the JSON text as found, or, when nothing parsed, the text most
  like the intended JSON, for the reviewer to start from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ValidationError

from workers.contracts import (
    Extraction,
    JsonLocation,
    ReviewReason,
    ReviewTask,
    Suggestion,
    TaskKind,
    ValidationIssue,
    ValidExtraction,
)
from workers.contracts.plain import (
    PlainExtraction,
    PlainReviewTask,
    PlainSuggestion,
    PlainValidationIssue,
    PlainValidExtraction,
)
from workers.extraction_validator.json_extraction import FoundJson, NoJson, find_json
from workers.extraction_validator.registry import ExtractionSchemas
from workers.validation_errors import problems

CORRECTION_PRIORITY = 0
MAX_ISSUES = 200
"""Validation errors listed in one task, at most; a last issue counts the ones left out."""

NOT_JSON = "not JSON"
WHOLE_OBJECT = ""
LOCATION_NOTES = {
    JsonLocation.CODE_FENCE: "JSON was extracted from a code fence; the output should be the JSON alone",
    JsonLocation.EMBEDDED_IN_TEXT: (
        "JSON was extracted from surrounding prose; the output should be the JSON alone"
    ),
}


class Valid(NamedTuple):
    """Output that the schema's model accepts: the model's canonical JSON, and where it was found."""

    validated_json: str
    location: JsonLocation


class Invalid(NamedTuple):
    """Output for a reviewer to correct: every problem as (path, message), and the JSON to start from."""

    issues: list[tuple[str, str]]
    suggested_json: str | None


def check_output(raw_output: str, model: type[BaseModel]) -> Valid | Invalid:
    """The verdict of the module docstring on an extraction's raw output."""
    found = find_json(raw_output)
    if isinstance(found, NoJson):
        return Invalid([(WHOLE_OBJECT, f"{NOT_JSON}: {found.problem}")], found.candidate)
    try:
        validated = model.model_validate_json(found.text)
    except ValidationError as error:
        return Invalid([*_location_note(found), *_issues(error)], found.text)
    return Valid(validated.model_dump_json(), found.location)


def validate_extraction(
    extraction: Extraction, schemas: ExtractionSchemas, *, now: datetime
) -> ValidExtraction | ReviewTask:
    """Validates the extraction's raw output; raises UnknownSchema for an unregistered schema."""
    model = schemas.model_for(extraction.schema_name, extraction.schema_version)
    checked = check_output(extraction.raw_output, model)
    if isinstance(checked, Invalid):
        issues = [ValidationIssue(path=path, message=message) for path, message in checked.issues]
        return correction_task(extraction, issues, checked.suggested_json, now=now)
    return ValidExtraction(
        event_id=extraction.event_id,
        occurred_at=extraction.occurred_at,
        validated_at=now,
        schema_name=extraction.schema_name,
        schema_version=extraction.schema_version,
        validated_json=checked.validated_json,
        extracted_from=checked.location,
        source=extraction,
    )


def validate_plain(
    extraction: PlainExtraction, schemas: ExtractionSchemas, *, now: datetime
) -> PlainValidExtraction | PlainReviewTask:
    """`validate_extraction` on a plain extraction, making the plain mirror of the same output."""
    model = schemas.model_for(extraction.schema_name, extraction.schema_version)
    checked = check_output(extraction.raw_output, model)
    if isinstance(checked, Invalid):
        issues = tuple(PlainValidationIssue(path, message) for path, message in checked.issues)
        agent = f"{extraction.model.name}@{extraction.model.version}"
        suggestion = PlainSuggestion(
            corrected_json=checked.suggested_json, validation_errors=issues, agent=agent
        )
        return PlainReviewTask(
            extraction.event_id,
            TaskKind.EXTRACTION,
            ReviewReason.SCHEMA_INVALID,
            CORRECTION_PRIORITY,
            extraction,
            suggestion,
            now,
        )
    return PlainValidExtraction(
        extraction.event_id,
        extraction.occurred_at,
        now,
        extraction.schema_name,
        extraction.schema_version,
        checked.validated_json,
        checked.location,
        extraction,
    )


def correction_task(
    extraction: Extraction, issues: Sequence[ValidationIssue], suggested_json: str | None, *, now: datetime
) -> ReviewTask:
    model = extraction.model
    return ReviewTask(
        task_id=extraction.event_id,
        kind=TaskKind.EXTRACTION,
        reason=ReviewReason.SCHEMA_INVALID,
        priority=CORRECTION_PRIORITY,
        source=extraction,
        suggestion=Suggestion(
            corrected_json=suggested_json,
            validation_errors=tuple(issues),
            agent=f"{model.name}@{model.version}",
        ),
        created_at=now,
    )


def _location_note(found: FoundJson) -> list[tuple[str, str]]:
    note = LOCATION_NOTES.get(found.location)
    return [] if note is None else [(WHOLE_OBJECT, note)]


def _issues(error: ValidationError) -> list[tuple[str, str]]:
    shown, left_out = problems(error, MAX_ISSUES)
    issues = [(problem.path, problem.message) for problem in shown]
    if left_out:
        issues.append((WHOLE_OBJECT, f"and {left_out} more validation errors"))
    return issues
