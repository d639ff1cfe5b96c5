"""What the pipeline produces without a human in the middle, and what trainers consume."""

from enum import StrEnum
from typing import Annotated, ClassVar, Self
from uuid import UUID

from pydantic import Field, model_validator

from workers.contracts.base import INT32_MAX, INT64_MAX, Event, JsonText, Probability, Record, UtcDatetime
from workers.contracts.review import TaskKind
from workers.contracts.sources import ModelInfo, Prediction


class DecisionOutcome(StrEnum):
    AUTO_ACCEPTED = "auto_accepted"
    AUTO_REJECTED = "auto_rejected"


class Band(Record):
    """The grey band of a label: scores strictly inside it go to human review."""

    AVRO_NAME: ClassVar[str] = "io.hitl.events.Band"

    low: Probability
    high: Probability

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise ValueError(f"band low {self.low} is above high {self.high}")
        return self


class Decision(Event):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.Decision"
    TIME_FIELD: ClassVar[str] = "decided_at"

    event_id: UUID
    label: str
    outcome: DecisionOutcome
    score: Probability
    band: Band
    band_source: str
    policy_version: str
    decided_at: UtcDatetime
    source: Prediction

    @model_validator(mode="after")
    def _about_its_source(self) -> Self:
        if self.event_id != self.source.event_id:
            raise ValueError(
                f"event_id {self.event_id} differs from the source's event_id {self.source.event_id}"
            )
        return self


class LabelSource(StrEnum):
    HUMAN = "human"
    AUTO = "auto"


class Lineage(Record):
    """The Kafka message a training example was built from."""

    AVRO_NAME: ClassVar[str] = "io.hitl.events.Lineage"

    source_topic: str
    partition: Annotated[int, Field(ge=0, le=INT32_MAX)]
    offset: Annotated[int, Field(ge=0, le=INT64_MAX)]
    task_id: UUID | None = None


class TrainingExample(Event):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.TrainingExample"
    ID_FIELD: ClassVar[str] = "example_id"

    example_id: UUID
    kind: TaskKind
    input: JsonText
    model_output: JsonText | None = None
    human_output: JsonText | None = None
    label_source: LabelSource
    reviewers: tuple[str, ...] = ()
    agreement: Probability | None = None
    model: ModelInfo
    lineage: Lineage
    occurred_at: UtcDatetime
    labelled_at: UtcDatetime
    created_at: UtcDatetime
