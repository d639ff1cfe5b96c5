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

from pydantic import ValidationError

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


def validate_extraction(
    extraction: Extraction, schemas: ExtractionSchemas, *, now: datetime
) -> ValidExtraction | ReviewTask:
    """Validates the extraction's raw output; raises UnknownSchema for an unregistered schema."""
    model = schemas.model_for(extraction.schema_name, extraction.schema_version)
    found = find_json(extraction.raw_output)
    if isinstance(found, NoJson):
        issue = ValidationIssue(path=WHOLE_OBJECT, message=f"{NOT_JSON}: {found.problem}")
        return correction_task(extraction, [issue], found.candidate, now=now)
    try:
        validated = model.model_validate_json(found.text)
    except ValidationError as error:
        issues = [*_location_note(found), *_issues(error)]
        return correction_task(extraction, issues, found.text, now=now)
    return ValidExtraction(
        event_id=extraction.event_id,
        occurred_at=extraction.occurred_at,
        validated_at=now,
        schema_name=extraction.schema_name,
        schema_version=extraction.schema_version,
        validated_json=validated.model_dump_json(),
        extracted_from=found.location,
        source=extraction,
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


def _location_note(found: FoundJson) -> list[ValidationIssue]:
    note = LOCATION_NOTES.get(found.location)
    return [] if note is None else [ValidationIssue(path=WHOLE_OBJECT, message=note)]


def _issues(error: ValidationError) -> list[ValidationIssue]:
    shown, left_out = problems(error, MAX_ISSUES)
    issues = [ValidationIssue(path=problem.path, message=problem.message) for problem in shown]
    if left_out:
        issues.append(ValidationIssue(path=WHOLE_OBJECT, message=f"and {left_out} more validation errors"))
    return issues
