"""A user's own extraction schema, registered the way the registry documents: decorated in a module
that the settings name. It registers one model under two versions."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.extraction_validator import extraction_schema


class Recipient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    postal_code: Annotated[str, Field(pattern=r"^[0-9]{5}$")]


@extraction_schema("shipping_label", "1")
@extraction_schema("shipping_label", "1.1")
class ShippingLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_number: Annotated[str, Field(min_length=8)]
    carrier: Literal["DHL", "UPS", "FedEx"]
    weight_kg: Annotated[Decimal, Field(gt=0, decimal_places=3)]
    recipient: Recipient
