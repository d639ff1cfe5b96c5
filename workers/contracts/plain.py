"""Plain mirrors of event models for the fast path: msgspec Structs with the models' field names.

The codec decodes JSON into them with msgspec, which validates as it parses (about 2 µs a
prediction, against 8 µs for Pydantic), and writes them as Avro with the writer it uses for the
models (`avro_writer`), which reads attributes by name. They carry the models' constraints that
JSON can break (probabilities in [0, 1], at least one score, aware datetimes, no unknown fields);
msgspec is stricter than Pydantic's lax mode everywhere else (no numbers in strings, no booleans
as numbers, no UUIDs in braces), so a value msgspec accepts is one Pydantic accepts with the same
content, and one it refuses goes to Pydantic, which decides and says why. The one place msgspec
is laxer, fractions of a second beyond microseconds (rounded by msgspec, cut by Pydantic), the
codec keeps from it (`EventCodec.decode_plain`), and years 1 and 9999, where moving a time to UTC
can fail, are left to Pydantic too. `tests/contracts/test_fast_path.py` checks all
of this against the models.

Structs are frozen, like the models, since the Avro writer splices an embedded event by identity,
and untracked by the garbage collector (`gc=False`): they hold no cycles.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, ClassVar, Literal, Protocol
from uuid import UUID

import msgspec

from workers.contracts.base import Event
from workers.contracts.outputs import Decision, DecisionOutcome, LabelSource, TrainingExample
from workers.contracts.review import ReviewTask, TaskKind
from workers.contracts.sources import Extraction, Feedback, ModelInfo, Prediction
from workers.contracts.validated import JsonLocation, ValidExtraction

PlainProbability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
UuidText = Annotated[
    str, msgspec.Meta(pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
"""A UUID in its canonical text, the form `str(uuid)` gives and Avro writes; any other form of a
UUID (upper case, no hyphens, braces) goes to Pydantic, which reads it into the same UUID."""
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
FiniteFloat = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A float that is neither infinite nor NaN (which no comparison holds for)."""


class PlainEvent(Protocol):
    """A plain mirror of a whole event: `EVENT_TYPE` is the model it mirrors."""

    EVENT_TYPE: ClassVar[type[Event]]


class PlainInput(PlainEvent, Protocol):
    """A plain mirror of an input event, with its key and its time, as the model's `key` and
    `event_time`."""

    @property
    def key(self) -> str: ...

    @property
    def event_time(self) -> datetime: ...


class PlainModelInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    name: str
    version: str


class PlainItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    id: str
    content_type: str
    text: str | None = None
    uri: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class _PlainSourceEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """What the plain mirrors of input events share: their id (the key) and their time."""

    event_id: UuidText
    occurred_at: AwareDatetime

    def __post_init__(self) -> None:
        # Pydantic moves the time to UTC, which fails at the ends of the calendar; it says why.
        if not 1 < self.occurred_at.year < 9999:
            raise ValueError("a year at the end of the calendar")

    @property
    def key(self) -> str:
        return self.event_id

    @property
    def event_time(self) -> datetime:
        return self.occurred_at


class PlainPrediction(_PlainSourceEvent, frozen=True, forbid_unknown_fields=True, gc=False):
    EVENT_TYPE: ClassVar[type[Event]] = Prediction
    AVRO_NAME: ClassVar[str] = Prediction.AVRO_NAME

    source: str
    task: str
    model: PlainModelInfo
    item: PlainItem
    scores: Annotated[dict[str, PlainProbability], msgspec.Meta(min_length=1)]
    trace_id: str | None = None
    ground_truth: str | None = None


class PlainRetrievedContext(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    doc_id: str
    text: str
    score: FiniteFloat
    """Finite, as the model's: JSON has no NaN nor infinity, but Avro has."""


class PlainFeedback(_PlainSourceEvent, frozen=True, forbid_unknown_fields=True, gc=False):
    EVENT_TYPE: ClassVar[type[Event]] = Feedback
    AVRO_NAME: ClassVar[str] = Feedback.AVRO_NAME

    session_id: str
    question: str
    answer: str
    rating: Literal["up", "down"]
    model: PlainModelInfo
    contexts: tuple[PlainRetrievedContext, ...] = ()
    comment: str | None = None
    user_id: str | None = None
    prompt_version: str | None = None


class PlainDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    id: str
    text: str


class PlainExtraction(_PlainSourceEvent, frozen=True, forbid_unknown_fields=True, gc=False):
    EVENT_TYPE: ClassVar[type[Event]] = Extraction
    AVRO_NAME: ClassVar[str] = Extraction.AVRO_NAME

    document: PlainDocument
    schema_name: str
    schema_version: str
    raw_output: str
    model: PlainModelInfo


class PlainValidExtraction(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    EVENT_TYPE: ClassVar[type[Event]] = ValidExtraction

    event_id: str
    occurred_at: datetime
    validated_at: datetime
    schema_name: str
    schema_version: str
    validated_json: str
    extracted_from: JsonLocation
    source: PlainExtraction


class PlainBand(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    low: PlainProbability
    high: PlainProbability

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"band low {self.low} is above high {self.high}")


class PlainDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """The band-router's output, and the label-sink's input: with the model's constraints."""

    EVENT_TYPE: ClassVar[type[Event]] = Decision

    event_id: UuidText
    label: str
    outcome: DecisionOutcome
    score: PlainProbability
    band: PlainBand
    band_source: str
    policy_version: str
    decided_at: AwareDatetime
    source: PlainPrediction

    def __post_init__(self) -> None:
        if self.event_id != self.source.event_id:
            raise ValueError(f"event_id {self.event_id} differs from the source's {self.source.event_id}")

    @property
    def key(self) -> str:
        return self.event_id

    @property
    def event_time(self) -> datetime:
        return self.decided_at


class PlainValidationIssue(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    path: str
    message: str


class PlainSuggestion(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    label: str | None = None
    score: float | None = None
    corrected_json: str | None = None
    validation_errors: tuple[PlainValidationIssue, ...] = ()
    agent: str | None = None


class PlainReviewTask(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    EVENT_TYPE: ClassVar[type[Event]] = ReviewTask

    task_id: str
    kind: str
    reason: str
    priority: int
    source: PlainPrediction | PlainFeedback | PlainExtraction
    suggestion: PlainSuggestion
    created_at: datetime


class PlainLineage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    source_topic: str
    partition: int
    offset: int
    task_id: UUID | None = None


class PlainTrainingExample(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    EVENT_TYPE: ClassVar[type[Event]] = TrainingExample

    example_id: UUID
    kind: TaskKind
    input: str
    model_output: str | None
    human_output: str | None
    label_source: LabelSource
    reviewers: tuple[str, ...]
    agreement: float | None
    model: PlainModelInfo | ModelInfo
    lineage: PlainLineage
    occurred_at: datetime
    labelled_at: datetime
    created_at: datetime
