"""Building blocks of the event models: the frozen record base classes and constrained field types.

Every constraint here exists because the Avro schema cannot hold the value otherwise (integer widths),
because equality must survive a round trip (finite floats, UTC datetimes), or because consumers rely
on it (probabilities in [0, 1], JSON text that parses).
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Discriminator, Field

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class Record(BaseModel):
    """A frozen model mirroring one Avro record of `schemas/`, field for field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    AVRO_NAME: ClassVar[str]


class Event(Record):
    """A record that is the whole value of a Kafka message and has its own `.avsc` file.

    `ID_FIELD` names the field that identifies it (the idempotency key, and its outputs' default
    key); `TIME_FIELD` the field that says when it happened.
    """

    ID_FIELD: ClassVar[str] = "event_id"
    TIME_FIELD: ClassVar[str] = "occurred_at"

    @property
    def key(self) -> str:
        return str(getattr(self, self.ID_FIELD))

    @property
    def event_time(self) -> datetime:
        value: datetime = getattr(self, self.TIME_FIELD)
        return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def require_json_text(value: str) -> str:
    try:
        json.loads(value)
    except ValueError as e:
        raise ValueError(f"not valid JSON text ({e})") from e
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC as Avro's timestamp-micros stores it."""

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
JsonText = Annotated[str, AfterValidator(require_json_text)]
"""A string that holds a JSON document (Avro carries it as a plain string)."""


def discriminate_by_field(tag_fields: Mapping[str, type[Record]]) -> Discriminator:
    """Tells the members of a record union apart by a required field that only one member has.

    Avro writes no tag into the data and the JSON form mirrors the Avro form, so the input
    itself must identify the member. `tag_fields` maps each distinguishing field to its record;
    members are tagged with their class name (use `Tag(cls.__name__)` in the union).
    """

    def tag_of(value: Any) -> str | None:
        if isinstance(value, Record):
            return type(value).__name__
        if isinstance(value, Mapping):
            for field_name, record_type in tag_fields.items():
                if field_name in value:
                    return record_type.__name__
        return None

    expected = " or ".join(f"{t.__name__} (has '{f}')" for f, t in tag_fields.items())
    return Discriminator(
        tag_of,
        custom_error_type="union_member_unknown",
        custom_error_message=f"cannot tell which record this is; expected {expected}",
    )
