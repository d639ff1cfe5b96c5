"""The extraction validator: LLM output checked against a registered Pydantic model.

Valid output flows on as a `ValidExtraction`; anything else becomes a correction task for a
reviewer. `registry` says how to register schemas of your own, `json_extraction` how the JSON is
found in the output, `validation` what is decided, and `worker` wires it to the runtime.
"""

from workers.extraction_validator.json_extraction import FoundJson, NoJson, find_json
from workers.extraction_validator.registry import (
    UNKNOWN_SCHEMA,
    ExtractionSchema,
    ExtractionSchemas,
    UnknownSchema,
    extraction_schema,
)
from workers.extraction_validator.validation import validate_extraction
from workers.validation_errors import field_path

__all__ = [
    "UNKNOWN_SCHEMA",
    "ExtractionSchema",
    "ExtractionSchemas",
    "FoundJson",
    "NoJson",
    "UnknownSchema",
    "extraction_schema",
    "field_path",
    "find_json",
    "validate_extraction",
]
