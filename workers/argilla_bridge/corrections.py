"""A reviewer's corrected JSON, checked against the extraction's registered Pydantic model.

The schemas are those the extraction-validator registers (the same `schema_modules` setting), so a
correction is held to exactly the rule the LLM's output failed. A schema no configured module
registers cannot be checked beyond the JSON itself: such a correction must be a JSON object.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from workers.argilla_bridge.resolution import CorrectionCheck
from workers.contracts import Extraction
from workers.extraction_validator.registry import ExtractionSchemas, UnknownSchema

MAX_REPORTED_ERRORS = 10


def correction_check(schemas: ExtractionSchemas) -> CorrectionCheck:
    def check(source: Extraction, text: str) -> str | None:
        try:
            document = json.loads(text)
        except ValueError as error:
            return f"not valid JSON: {error}"
        try:
            model = schemas.model_for(source.schema_name, source.schema_version)
        except UnknownSchema:
            return None if isinstance(document, dict) else "the correction must be a JSON object"
        try:
            model.model_validate_json(text)
        except ValidationError as error:
            return _describe(source, error)
        return None

    return check


def _describe(source: Extraction, error: ValidationError) -> str:
    problems = [
        f"`{'.'.join(str(part) for part in problem['loc']) or '(root)'}`: {problem['msg']}"
        for problem in error.errors()[:MAX_REPORTED_ERRORS]
    ]
    more = error.error_count() - len(problems)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"schema {source.schema_name} {source.schema_version}: " + "; ".join(problems) + suffix
