"""The extraction-validator worker: `hitl.extractions` → `hitl.extractions.valid` or `hitl.review.tasks`.

Both outputs are keyed by the extraction's event id. An extraction naming an unregistered schema
is dead-lettered with reason `unknown_schema`. The schemas are those registered by the modules of
`settings.extraction_validator.schema_modules` (see `registry`).

JSON extractions take the fast path (`validate_plain`: the event read by msgspec, the raw output
validated by the schema's Pydantic model as on the reference path, the outputs written without
building their models); Avro extractions take the reference path.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from workers.config import Settings
from workers.contracts import Extraction, ReviewTask, ValidExtraction
from workers.contracts.plain import PlainExtraction, PlainReviewTask, PlainValidExtraction
from workers.extraction_validator.registry import ExtractionSchemas
from workers.extraction_validator.validation import validate_extraction, validate_plain
from workers.logs import log
from workers.runtime.worker import FastPath, Handler, Origin, WorkerSpec

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
        fast_path=extraction_fast_path(schemas),
    )


def extraction_handler(schemas: ExtractionSchemas) -> Handler:
    def handle(extraction: Extraction, _origin: Origin) -> list[ValidExtraction | ReviewTask]:
        return [validate_extraction(extraction, schemas, now=datetime.now(UTC))]

    return handle


def extraction_fast_path(schemas: ExtractionSchemas) -> FastPath:
    def handle(extraction: PlainExtraction) -> list[PlainValidExtraction | PlainReviewTask]:
        return [validate_plain(extraction, schemas, now=datetime.now(UTC))]

    return FastPath(PlainExtraction, handle)
