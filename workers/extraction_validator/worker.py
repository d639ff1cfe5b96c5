"""The extraction-validator worker: `hitl.extractions` → `hitl.extractions.valid` or `hitl.review.tasks`.

Both outputs are keyed by the extraction's event id. An extraction naming an unregistered schema
is dead-lettered with reason `unknown_schema`. The schemas are those registered by the modules of
`settings.extraction_validator.schema_modules` (see `registry`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from workers.config import Settings, Topics
from workers.contracts import Event, Extraction, ValidExtraction
from workers.extraction_validator.registry import ExtractionSchemas
from workers.extraction_validator.validation import validate_extraction
from workers.logs import log
from workers.runtime.worker import Handler, Origin, Output, WorkerSpec

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
        handler=extraction_handler(schemas, topics),
        output_topics=(topics.extractions_valid, topics.review_tasks),
    )


def extraction_handler(schemas: ExtractionSchemas, topics: Topics) -> Handler:
    def handle(event: Event, _origin: Origin) -> Iterable[Output]:
        if not isinstance(event, Extraction):
            raise TypeError(f"{NAME} handles Extraction events, not {type(event).__name__}")
        result = validate_extraction(event, schemas, now=datetime.now(UTC))
        topic = topics.extractions_valid if isinstance(result, ValidExtraction) else topics.review_tasks
        return [Output(topic, str(event.event_id), result)]

    return handle
