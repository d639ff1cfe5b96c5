"""Resolved reviews and decisions to training examples: deterministic, complete, and pure."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from tests.label_sink.events import T0, decision, extraction, feedback, prediction, resolution
from workers.contracts import (
    DecisionOutcome,
    LabelSource,
    Lineage,
    ModelInfo,
    ResolutionStatus,
    TaskKind,
    TrainingExample,
    decode,
    encode,
)
from workers.label_sink.mapping import EXAMPLE_NAMESPACE, example_id, from_decision, from_resolution
from workers.label_sink.worker import handle_decision, handle_resolution
from workers.runtime.worker import Origin, Routed, WorkerSpec

ORIGIN = Origin("hitl.review.resolved", 4, 1234, T0 + timedelta(hours=2))


def routed(handler: object, event: object, origin: Origin = ORIGIN) -> list[Routed]:
    """The handler's outputs as the runtime routes them, to a topic named `examples`."""
    spec = WorkerSpec("label-sink", "in", (), handler, {TrainingExample: "examples"})  # type: ignore[arg-type]
    return list(spec.handle(event, origin).outputs)  # type: ignore[arg-type]


def routed_resolution(event: object, origin: Origin = ORIGIN) -> list[Routed]:
    return routed(handle_resolution, event, origin)


def test_the_example_id_is_uuid5_of_the_label_source_and_the_event_id() -> None:
    event_id = uuid.uuid4()
    assert example_id(LabelSource.HUMAN, event_id) == uuid.uuid5(EXAMPLE_NAMESPACE, f"human:{event_id}")
    assert example_id(LabelSource.AUTO, event_id) == uuid.uuid5(EXAMPLE_NAMESPACE, f"auto:{event_id}")


def test_a_moderation_label_becomes_an_example_with_its_lineage() -> None:
    source = prediction(7)
    [output] = routed_resolution(resolution(source))

    assert output.topic == "examples"
    assert output.key == str(example_id(LabelSource.HUMAN, source.event_id))
    assert output.event == TrainingExample(
        example_id=example_id(LabelSource.HUMAN, source.event_id),
        kind=TaskKind.MODERATION,
        input=json.dumps(
            {
                "item": {
                    "id": "comment-7",
                    "content_type": "text/plain",
                    "text": "comment number 7: you are all wonderful people",
                    "uri": None,
                    "metadata": {"lang": "en"},
                },
                "task": "moderation",
                "source": "comment-service",
            },
            separators=(",", ":"),
        ),
        model_output='{"scores":{"toxic":0.61,"ok":0.39}}',
        human_output='{"label":"toxic"}',
        label_source=LabelSource.HUMAN,
        reviewers=("ann", "bob"),
        agreement=1.0,
        model=ModelInfo(name="toxicity-bert", version="2.3.1"),
        lineage=Lineage(
            source_topic="hitl.review.resolved", partition=4, offset=1234, task_id=source.event_id
        ),
        occurred_at=T0,
        labelled_at=T0 + timedelta(hours=1),
        created_at=T0 + timedelta(hours=2),
    )
    assert decode(encode(output.event), None, TrainingExample) == output.event


def test_rag_and_extraction_documents() -> None:
    rag = routed_resolution(resolution(feedback(1)))[0].event
    assert isinstance(rag, TrainingExample)
    assert json.loads(rag.input) == {
        "question": "How do I reset my password? (1)",
        "contexts": [
            {"doc_id": "kb-12", "text": "To reset a password, open Settings > Security.", "score": 0.91},
            {"doc_id": "kb-40", "text": "Passwords expire every 90 days.", "score": 0.42},
        ],
    }
    assert json.loads(rag.model_output or "") == {"answer": "Open Settings, then Privacy."}
    assert json.loads(rag.human_output or "") == {
        "verdict": "incorrect",
        "fault": "generation",
        "corrected_answer": "Open Settings, then Security, then choose Reset password.",
        "note": "the context had it",
    }

    source = extraction(2)
    corrected = '{"total": 120.5, "currency": "EUR", "due": "2026-04-01"}'
    event = routed_resolution(resolution(source))[0].event
    assert isinstance(event, TrainingExample)
    assert json.loads(event.input) == {
        "document": {"id": "invoice-2", "text": "Invoice 2: total 120.50 EUR, due 2026-04-01"},
        "schema_name": "invoice",
        "schema_version": "1",
    }
    assert json.loads(event.model_output or "") == {"raw_output": source.raw_output}
    assert event.human_output == corrected, "the reviewers' JSON text, exactly"


def test_a_discarded_review_is_recorded_but_is_no_example() -> None:
    discarded = resolution(prediction(), status=ResolutionStatus.DISCARDED)
    assert routed_resolution(discarded) == []
    mapped = from_resolution(discarded, ORIGIN)
    assert mapped.example is None and mapped.discard == discarded


def test_the_same_message_always_maps_to_the_same_example() -> None:
    event = resolution(extraction())
    assert routed_resolution(event) == routed_resolution(event)
    assert from_resolution(event, ORIGIN) == from_resolution(event, ORIGIN)


def test_without_a_message_timestamp_created_at_is_the_label_time() -> None:
    event = resolution(prediction())
    [output] = routed_resolution(event, Origin("t", 0, 0, None))
    assert isinstance(output.event, TrainingExample)
    assert output.event.created_at == event.resolved_at


def test_an_automatic_decision_is_an_auto_example_apart_from_the_human_one() -> None:
    accepted = decision()
    [output] = routed(handle_decision, accepted, ORIGIN)
    example = output.event
    assert isinstance(example, TrainingExample)
    assert example.example_id == example_id(LabelSource.AUTO, accepted.event_id)
    assert example.example_id != example_id(LabelSource.HUMAN, accepted.event_id)
    assert example.label_source is LabelSource.AUTO
    assert example.reviewers == () and example.agreement is None and example.human_output is None
    assert example.lineage.task_id is None
    assert json.loads(example.model_output or "")["decision"] == {
        "label": "toxic",
        "outcome": "auto_accepted",
        "score": 0.93,
        "band": {"low": 0.4, "high": 0.8},
        "band_source": "task:moderation",
        "policy_version": "v1",
    }
    mapped = from_decision(accepted, ORIGIN)
    assert mapped.example is not None and mapped.example.label == "toxic"
    rejected = from_decision(decision(outcome=DecisionOutcome.AUTO_REJECTED), ORIGIN)
    assert rejected.example is not None and rejected.example.label is None
