"""From a resolved review or an automatic decision, and the message it was read from, to a training
example: the event on `hitl.training.examples` and the rows the sink stores. Pure: no I/O, no clock.

Everything here is a function of the input message alone, so a replay yields the same example id,
the same event and the same rows:

- the example id is UUIDv5 of `EXAMPLE_NAMESPACE` and "<label source>:<source event id>", so the
  human and the automatic label of one prediction (an audited decision) are two examples;
- `created_at` is the Kafka timestamp of that message (when the label entered the pipeline), or
  the label's time when the message has none.

A discarded review yields no example; it is recorded as a discard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from workers.contracts import (
    Decision,
    DecisionOutcome,
    Extraction,
    ExtractionOutcome,
    Feedback,
    LabelOutcome,
    LabelSource,
    Lineage,
    ModelInfo,
    Prediction,
    RagOutcome,
    ResolutionStatus,
    ReviewResolution,
    TaskKind,
    TrainingExample,
)
from workers.contracts.plain import (
    PlainDecision,
    PlainLineage,
    PlainModelInfo,
    PlainPrediction,
    PlainTrainingExample,
)
from workers.runtime.worker import Origin

EXAMPLE_NAMESPACE = UUID("5b0c3f52-8a43-4d59-9a53-7e1f0d6c2a11")


def example_id(label_source: LabelSource, source_event_id: UUID | str) -> UUID:
    """`uuid.uuid5(EXAMPLE_NAMESPACE, f"{label_source}:{source_event_id}")`, computed directly; the
    id may be given as its canonical text (a plain event's)."""
    name = f"{label_source.value}:{source_event_id}".encode()
    return UUID(bytes=hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16], version=5)


_NAMESPACE_BYTES = EXAMPLE_NAMESPACE.bytes


@dataclass(frozen=True, slots=True)
class Example:
    """A training example's content; JSON documents are JSON text, as on the topic."""

    example_id: UUID
    kind: TaskKind
    source_event_id: UUID
    input: str
    model_output: str | None
    human_output: str | None
    # The class a moderation example teaches: the reviewers' label, or an auto-accepted label.
    label: str | None
    label_source: LabelSource
    reviewers: tuple[str, ...]
    agreement: float | None
    model: ModelInfo | PlainModelInfo
    origin: Origin
    task_id: UUID | None
    occurred_at: datetime
    labelled_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Correction:
    """An extraction's triple: source text, LLM output, reviewer-corrected JSON."""

    extraction: Extraction
    corrected_json: str


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one input message becomes: an example (with its correction or RAG review), or a discard."""

    origin: Origin
    example: Example | None
    correction: Correction | None = None
    rag_outcome: RagOutcome | None = None
    discard: ReviewResolution | None = None


def from_resolution(resolution: ReviewResolution, origin: Origin) -> Mapped:
    if resolution.status is ResolutionStatus.DISCARDED or resolution.outcome is None:
        return Mapped(origin, None, discard=resolution)
    source, outcome = resolution.source, resolution.outcome
    label: str | None = None
    correction: Correction | None = None
    rag_outcome: RagOutcome | None = None
    document: dict[str, Any]
    model_output: dict[str, Any]
    if isinstance(source, Prediction) and isinstance(outcome, LabelOutcome):
        document, model_output = _prediction_input(source), {"scores": source.scores}
        label = outcome.label
        human_output = _json({"label": outcome.label})
    elif isinstance(source, Feedback) and isinstance(outcome, RagOutcome):
        document, model_output = _feedback_input(source), {"answer": source.answer}
        human_output = _json(
            {
                "verdict": outcome.verdict.value,
                "fault": None if outcome.fault is None else outcome.fault.value,
                "corrected_answer": outcome.corrected_answer,
                "note": outcome.note,
            }
        )
        rag_outcome = outcome
    elif isinstance(source, Extraction) and isinstance(outcome, ExtractionOutcome):
        document, model_output = _extraction_input(source), {"raw_output": source.raw_output}
        # The reviewers' JSON text as they wrote it: key order and layout may matter to a trainer.
        human_output = outcome.corrected_json
        correction = Correction(source, outcome.corrected_json)
    else:  # The contract's validator makes this unreachable.
        raise TypeError(f"a {resolution.kind} resolution with a {type(source).__name__} source")
    example = Example(
        example_id=example_id(LabelSource.HUMAN, resolution.task_id),
        kind=resolution.kind,
        source_event_id=source.event_id,
        input=_json(document),
        model_output=_json(model_output),
        human_output=human_output,
        label=label,
        label_source=LabelSource.HUMAN,
        reviewers=resolution.reviewers,
        agreement=resolution.agreement,
        model=source.model,
        origin=origin,
        task_id=resolution.task_id,
        occurred_at=source.occurred_at,
        labelled_at=resolution.resolved_at,
        created_at=origin.timestamp or resolution.resolved_at,
    )
    return Mapped(origin, example, correction=correction, rag_outcome=rag_outcome)


def from_decision(decision: Decision | PlainDecision, origin: Origin) -> Mapped:
    """The same example from the model and from its plain mirror (the fast path's)."""
    source = decision.source
    accepted = decision.outcome is DecisionOutcome.AUTO_ACCEPTED
    model_output = {
        "scores": source.scores,
        "decision": {
            "label": decision.label,
            "outcome": decision.outcome.value,
            "score": decision.score,
            "band": {"low": decision.band.low, "high": decision.band.high},
            "band_source": decision.band_source,
            "policy_version": decision.policy_version,
        },
    }
    example = Example(
        example_id=example_id(LabelSource.AUTO, source.event_id),
        kind=TaskKind.MODERATION,
        source_event_id=source.event_id if isinstance(source.event_id, UUID) else UUID(source.event_id),
        input=_json(_prediction_input(source)),
        model_output=_json(model_output),
        human_output=None,
        # An automatic rejection says which label does not apply, not which one does.
        label=decision.label if accepted else None,
        label_source=LabelSource.AUTO,
        reviewers=(),
        agreement=None,
        model=source.model,
        origin=origin,
        task_id=None,
        occurred_at=source.occurred_at,
        labelled_at=decision.decided_at,
        created_at=origin.timestamp or decision.decided_at,
    )
    return Mapped(origin, example)


def training_example(example: Example) -> TrainingExample:
    return TrainingExample(
        example_id=example.example_id,
        kind=example.kind,
        input=example.input,
        model_output=example.model_output,
        human_output=example.human_output,
        label_source=example.label_source,
        reviewers=example.reviewers,
        agreement=example.agreement,
        model=example.model,
        lineage=Lineage(
            source_topic=example.origin.topic,
            partition=example.origin.partition,
            offset=example.origin.offset,
            task_id=example.task_id,
        ),
        occurred_at=example.occurred_at,
        labelled_at=example.labelled_at,
        created_at=example.created_at,
    )


def plain_training_example(example: Example) -> PlainTrainingExample:
    """`training_example` as the plain mirror the fast path writes: the same Avro. Its JSON texts
    are this module's, so the model's check that they parse is left out."""
    origin = example.origin
    return PlainTrainingExample(
        example.example_id,
        example.kind,
        example.input,
        example.model_output,
        example.human_output,
        example.label_source,
        example.reviewers,
        example.agreement,
        example.model,
        PlainLineage(origin.topic, origin.partition, origin.offset, example.task_id),
        example.occurred_at,
        example.labelled_at,
        example.created_at,
    )


# -- rows, by the column names of store.py's tables ----------------------------------------------


def example_row(example: Example) -> dict[str, Any]:
    origin = example.origin
    return {
        "example_id": example.example_id,
        "kind": example.kind.value,
        "label_source": example.label_source.value,
        "source_event_id": example.source_event_id,
        "label": example.label,
        "input": example.input,
        "model_output": example.model_output,
        "human_output": example.human_output,
        "reviewers": list(example.reviewers),
        "agreement": example.agreement,
        "model_name": example.model.name,
        "model_version": example.model.version,
        "source_topic": origin.topic,
        "source_partition": origin.partition,
        "source_offset": origin.offset,
        "task_id": example.task_id,
        "occurred_at": example.occurred_at,
        "labelled_at": example.labelled_at,
        "created_at": example.created_at,
    }


def correction_row(example: Example, correction: Correction) -> dict[str, Any]:
    extraction = correction.extraction
    return {
        "extraction_event_id": extraction.event_id,
        "example_id": example.example_id,
        "document_id": extraction.document.id,
        "source_text": extraction.document.text,
        "schema_name": extraction.schema_name,
        "schema_version": extraction.schema_version,
        "llm_output": extraction.raw_output,
        "corrected_output": correction.corrected_json,
        "reviewers": list(example.reviewers),
        "agreement": example.agreement,
        "model_name": example.model.name,
        "model_version": example.model.version,
        "occurred_at": example.occurred_at,
        "resolved_at": example.labelled_at,
    }


def rag_review_row(example: Example, outcome: RagOutcome) -> dict[str, Any]:
    return {
        "feedback_event_id": example.source_event_id,
        "example_id": example.example_id,
        "verdict": outcome.verdict.value,
        "fault": None if outcome.fault is None else outcome.fault.value,
        "corrected_answer": outcome.corrected_answer,
        "note": outcome.note,
        "reviewers": list(example.reviewers),
        "agreement": example.agreement,
        "resolved_at": example.labelled_at,
    }


def discard_row(resolution: ReviewResolution, origin: Origin) -> dict[str, Any]:
    return {
        "task_id": resolution.task_id,
        "kind": resolution.kind.value,
        "reviewers": list(resolution.reviewers),
        "agreement": resolution.agreement,
        "resolved_at": resolution.resolved_at,
        "source_topic": origin.topic,
        "source_partition": origin.partition,
        "source_offset": origin.offset,
    }


# -- JSON documents ------------------------------------------------------------------------------


def _prediction_input(prediction: Prediction | PlainPrediction) -> dict[str, Any]:
    item = prediction.item
    return {
        "item": {
            "id": item.id,
            "content_type": item.content_type,
            "text": item.text,
            "uri": item.uri,
            "metadata": item.metadata,
        },
        "task": prediction.task,
        "source": prediction.source,
    }


def _feedback_input(feedback: Feedback) -> dict[str, Any]:
    return {
        "question": feedback.question,
        "contexts": [
            {"doc_id": context.doc_id, "text": context.text, "score": context.score}
            for context in feedback.contexts
        ],
    }


def _extraction_input(extraction: Extraction) -> dict[str, Any]:
    return {
        "document": {"id": extraction.document.id, "text": extraction.document.text},
        "schema_name": extraction.schema_name,
        "schema_version": extraction.schema_version,
    }


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# json.dumps(document, ensure_ascii=False, separators=(",", ":")), without building an encoder per
# call: that setup costs more than encoding these small documents. The documents are trees built
# here, so the check for cycles is left out.
_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (
    _c_encoder(None, _not_serializable, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _c_encoder is not None
    else None
)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(document: Any) -> str:
    if _ENCODE is None:
        return _ENCODER.encode(document)
    return "".join(_ENCODE(document, 0))
