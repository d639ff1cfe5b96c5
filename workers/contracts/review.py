"""Review tasks sent to human reviewers, and the reviewers' resolutions."""

from enum import StrEnum
from typing import Annotated, ClassVar, Self
from uuid import UUID

from pydantic import Field, Tag, model_validator

from workers.contracts.base import (
    INT32_MAX,
    Event,
    Int32,
    JsonText,
    Probability,
    Record,
    UtcDatetime,
    discriminate_by_field,
)
from workers.contracts.sources import Extraction, Feedback, Prediction, SourceEvent


class TaskKind(StrEnum):
    MODERATION = "moderation"
    RAG_ANSWER = "rag_answer"
    EXTRACTION = "extraction"


SOURCE_TYPE_BY_KIND: dict[TaskKind, type[Prediction | Feedback | Extraction]] = {
    TaskKind.MODERATION: Prediction,
    TaskKind.RAG_ANSWER: Feedback,
    TaskKind.EXTRACTION: Extraction,
}


def _check_source(kind: TaskKind, task_id: UUID, source: Prediction | Feedback | Extraction) -> None:
    expected_type = SOURCE_TYPE_BY_KIND[kind]
    if not isinstance(source, expected_type):
        raise ValueError(
            f"a {kind} task needs a {expected_type.__name__} source, not {type(source).__name__}"
        )
    if task_id != source.event_id:
        raise ValueError(f"task_id {task_id} differs from the source's event_id {source.event_id}")


class ReviewReason(StrEnum):
    GREY_BAND = "grey_band"
    AUDIT_SAMPLE = "audit_sample"
    NEGATIVE_FEEDBACK = "negative_feedback"
    POSITIVE_SAMPLE = "positive_sample"
    SCHEMA_INVALID = "schema_invalid"


class ValidationIssue(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.ValidationIssue"

    path: str
    message: str


class Suggestion(Record):
    """The pipeline's pre-filled answer; `corrected_json` may be the model's invalid output as is."""

    AVRO_NAME: ClassVar[str] = "io.hitl.events.Suggestion"

    label: str | None = None
    score: Probability | None = None
    corrected_json: str | None = None
    validation_errors: tuple[ValidationIssue, ...] = ()
    agent: str | None = None


class ReviewTask(Event):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.ReviewTask"
    ID_FIELD: ClassVar[str] = "task_id"
    TIME_FIELD: ClassVar[str] = "created_at"

    task_id: UUID
    kind: TaskKind
    reason: ReviewReason
    priority: Int32
    source: SourceEvent
    suggestion: Suggestion
    created_at: UtcDatetime

    @model_validator(mode="after")
    def _source_matches_task(self) -> Self:
        _check_source(self.kind, self.task_id, self.source)
        return self


class LabelOutcome(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.LabelOutcome"

    label: str


class RagVerdict(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    PARTIALLY_CORRECT = "partially_correct"


class RagFault(StrEnum):
    RETRIEVAL = "retrieval"
    GENERATION = "generation"
    BOTH = "both"
    OTHER = "other"
    NONE = "none"


class RagOutcome(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.RagOutcome"

    verdict: RagVerdict
    fault: RagFault | None = None
    corrected_answer: str | None = None
    note: str | None = None


class ExtractionOutcome(Record):
    AVRO_NAME: ClassVar[str] = "io.hitl.events.ExtractionOutcome"

    corrected_json: JsonText


Outcome = Annotated[
    Annotated[LabelOutcome, Tag("LabelOutcome")]
    | Annotated[RagOutcome, Tag("RagOutcome")]
    | Annotated[ExtractionOutcome, Tag("ExtractionOutcome")],
    discriminate_by_field(
        {"label": LabelOutcome, "verdict": RagOutcome, "corrected_json": ExtractionOutcome}
    ),
]
"""The reviewers' answer, as an Avro union; the member is recognised by `label`, `verdict`
or `corrected_json`."""

OUTCOME_TYPE_BY_KIND: dict[TaskKind, type[LabelOutcome | RagOutcome | ExtractionOutcome]] = {
    TaskKind.MODERATION: LabelOutcome,
    TaskKind.RAG_ANSWER: RagOutcome,
    TaskKind.EXTRACTION: ExtractionOutcome,
}


class ResolutionStatus(StrEnum):
    SUBMITTED = "submitted"
    DISCARDED = "discarded"


class ReviewerAnswer(Record):
    """One reviewer's counted answer, in the form the majority compares (null for a discard)."""

    AVRO_NAME: ClassVar[str] = "io.hitl.events.ReviewerAnswer"

    reviewer: str
    answer: str | None = None


class ReviewResolution(Event):
    """A resolved review: `outcome` is set when submitted and null when discarded.

    An edit of the answers after emission yields the next `revision`, under the same task id.
    """

    AVRO_NAME: ClassVar[str] = "io.hitl.events.ReviewResolution"
    ID_FIELD: ClassVar[str] = "task_id"
    TIME_FIELD: ClassVar[str] = "resolved_at"

    task_id: UUID
    kind: TaskKind
    outcome: Outcome | None = None
    status: ResolutionStatus
    reviewers: tuple[str, ...]
    agreement: Probability
    resolved_at: UtcDatetime
    source: SourceEvent
    revision: Annotated[int, Field(ge=1, le=INT32_MAX)] = 1
    answers: tuple[ReviewerAnswer, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_source(self.kind, self.task_id, self.source)
        if self.status is ResolutionStatus.DISCARDED and self.outcome is not None:
            raise ValueError("a discarded resolution has no outcome")
        if self.status is ResolutionStatus.SUBMITTED:
            expected_type = OUTCOME_TYPE_BY_KIND[self.kind]
            if not isinstance(self.outcome, expected_type):
                raise ValueError(
                    f"a submitted {self.kind} resolution needs a {expected_type.__name__} outcome"
                )
        return self
