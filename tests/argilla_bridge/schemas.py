"""An extraction schema of the tests' own, registered on import."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workers.extraction_validator.registry import extraction_schema


@extraction_schema("parcel_label", "1")
class ParcelLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_number: str = Field(min_length=4)
    weight_kg: float = Field(gt=0)
