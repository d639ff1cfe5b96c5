"""A reviewer's corrected JSON, checked against the extraction's registered Pydantic model.

The schemas are those the extraction-validator registers (the same `schema_modules` setting), so a
correction is held to exactly the rule the LLM's output failed. A schema no configured module
registers cannot be checked beyond the JSON itself: such a correction must be a JSON object.

Before the schema, the correction must be JSON the training store keeps as it is: PostgreSQL's
jsonb refuses NaN and Infinity (which Python's `json` accepts), NUL characters (`\\u0000`) and lone
surrogates, and a number beyond a double would come back as infinity; nesting deeper than
`MAX_DEPTH` is refused too (Python's parser and the stores that follow have a recursion limit).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError

from workers.contracts import Extraction
from workers.extraction_validator.registry import ExtractionSchemas, UnknownSchema
from workers.review.answers import CorrectionCheck, unstorable_text_problem
from workers.validation_errors import describe

MAX_REPORTED_ERRORS = 10
MAX_DEPTH = 64


def correction_check(schemas: ExtractionSchemas) -> CorrectionCheck:
    def check(source: Extraction, text: str) -> str | None:
        problem = unstorable_text_problem(text)
        if problem is not None:
            return f"not storable: {problem}"
        try:
            document = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            return f"not accepted: nested deeper than {MAX_DEPTH} levels"
        except ValueError as error:
            return f"not valid JSON: {error}"
        problem = _document_problem(document)
        if problem is not None:
            return f"not storable: {problem}"
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
    problems = describe(error, limit=MAX_REPORTED_ERRORS, root="(root)", quote="`")
    return f"schema {source.schema_name} {source.schema_version}: {problems}"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _document_problem(document: Any) -> str | None:
    """What in the parsed document the store would refuse or change, walked without recursion."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, float) and not math.isfinite(value):
            return "a number is too large to be kept as a number"
        if isinstance(value, str):
            problem = unstorable_text_problem(value)
            if problem is not None:
                return f"a string: {problem}"
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = unstorable_text_problem(key)
                if problem is not None:
                    return f"a key: {problem}"
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return None
