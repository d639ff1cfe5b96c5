from __future__ import annotations

from pydantic import BaseModel

from workers.extraction_validator import extraction_schema


@extraction_schema("parcel", "1")
class Parcel(BaseModel):
    weight_grams: int
