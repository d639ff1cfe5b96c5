"""The events producers emit: predictions, RAG answer feedback and structured extractions."""

from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, Tag

from workers.contracts.base import Event, FiniteFloat, Probability, Record, UtcDatetime, discriminate_by_field


class ModelInfo(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.ModelInfo"

    name: str
    version: str


class Item(Record):
    """The input a model judged: inline text or a pointer to the content."""

    AVRO_NAME: ClassVar[str] = "io.hitl.events.Item"

    id: str
    content_type: str
    text: str | None = None
    uri: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class Prediction(Event):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.Prediction"

    event_id: UUID
    occurred_at: UtcDatetime
    source: str
    task: str
    model: ModelInfo
    item: Item
    scores: dict[str, Probability] = Field(min_length=1)
    trace_id: str | None = None
    ground_truth: str | None = None


class RetrievedContext(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.RetrievedContext"

    doc_id: str
    text: str
    score: FiniteFloat


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class Feedback(Event):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.Feedback"

    event_id: UUID
    occurred_at: UtcDatetime
    session_id: str
    question: str
    answer: str
    contexts: tuple[RetrievedContext, ...] = ()
    rating: Rating
    comment: str | None = None
    user_id: str | None = None
    model: ModelInfo
    prompt_version: str | None = None


class Document(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.Document"

    id: str
    text: str


class Extraction(Event):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.Extraction"

    event_id: UUID
    occurred_at: UtcDatetime
    document: Document
    schema_name: str
    schema_version: str
    raw_output: str
    model: ModelInfo


SourceEvent = Annotated[
    Annotated[Prediction, Tag("Prediction")]
    | Annotated[Feedback, Tag("Feedback")]
    | Annotated[Extraction, Tag("Extraction")],
    discriminate_by_field({"scores": Prediction, "rating": Feedback, "raw_output": Extraction}),
]
"""The event a review is about, as an Avro union; the member is recognised by `scores`,
`rating` or `raw_output`."""
