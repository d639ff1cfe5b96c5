"""Extractions whose output passed the Pydantic model registered for their schema."""

from enum import StrEnum
from typing import ClassVar, Self
from uuid import UUID

from pydantic import model_validator

from workers.contracts.base import Event, JsonText, UtcDatetime
from workers.contracts.sources import Extraction


class JsonLocation(StrEnum):
    """Where in the model's raw output the JSON was found."""

    WHOLE_OUTPUT = "whole_output"
    CODE_FENCE = "code_fence"
    EMBEDDED_IN_TEXT = "embedded_in_text"


class ValidExtraction(Event):
    """A validated extraction: `validated_json` is the model's canonical JSON of the typed object."""

    AVRO_NAME: ClassVar[str] = "io.hitl.events.ValidExtraction"

    event_id: UUID
    occurred_at: UtcDatetime
    validated_at: UtcDatetime
    schema_name: str
    schema_version: str
    validated_json: JsonText
    extracted_from: JsonLocation
    source: Extraction

    @model_validator(mode="after")
    def _about_its_source(self) -> Self:
        source = self.source
        if self.event_id != source.event_id:
            raise ValueError(f"event_id {self.event_id} differs from the source's event_id {source.event_id}")
        if self.occurred_at != source.occurred_at:
            raise ValueError(
                f"occurred_at {self.occurred_at} differs from the source's occurred_at {source.occurred_at}"
            )
        if (self.schema_name, self.schema_version) != (source.schema_name, source.schema_version):
            raise ValueError(
                f"schema {self.schema_name} {self.schema_version} differs from the source's "
                f"{source.schema_name} {source.schema_version}"
            )
        return self
