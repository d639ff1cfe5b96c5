"""A module registering a schema name and version that the shipped examples already register."""

from __future__ import annotations

from pydantic import BaseModel

from workers.extraction_validator import extraction_schema


@extraction_schema("invoice", "1")
class OtherInvoice(BaseModel):
    number: str
