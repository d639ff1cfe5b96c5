"""The extraction-validator worker: `hitl.extractions` → `hitl.extractions.valid` or `hitl.review.tasks`.

Both outputs are keyed by the extraction's event id. An extraction naming an unregistered schema
is dead-lettered with reason `unknown_schema`. The schemas are those registered by the modules of
`settings.extraction_validator.schema_modules` (see `registry`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from workers.config import Settings
from workers.contracts import Extraction, ReviewTask, ValidExtraction
from workers.extraction_validator.registry import ExtractionSchemas
from workers.extraction_validator.validation import validate_extraction
from workers.logs import log
from workers.runtime.worker import Handler, Origin, WorkerSpec

NAME = "extraction-validator"

logger = logging.getLogger("hitl.extraction_validator")


def extraction_validator(settings: Settings) -> WorkerSpec:
    schemas = ExtractionSchemas.from_modules(settings.extraction_validator.schema_modules)
    log(
        logger,
        "schemas_loaded",
        worker=NAME,
        schemas=[f"{schema.name} {schema.version}" for schema in schemas],
    )
    topics = settings.topics
    return WorkerSpec(
        name=NAME,
        input_topic=topics.extractions,
        input_types=(Extraction,),
        handler=extraction_handler(schemas),
        outputs={ValidExtraction: topics.extractions_valid, ReviewTask: topics.review_tasks},
    )


def extraction_handler(schemas: ExtractionSchemas) -> Handler:
    def handle(extraction: Extraction, _origin: Origin) -> list[ValidExtraction | ReviewTask]:
        return [validate_extraction(extraction, schemas, now=datetime.now(UTC))]

    return handle
