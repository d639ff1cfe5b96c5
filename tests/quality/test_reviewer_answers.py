"""Each reviewer's answer travels on the resolution (for kappa), in the form the majority compares,
and a resolution written before the field existed still decodes, with none."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

from tests.argilla_bridge.tasks import extraction_task, moderation_task, rag_task
from workers.contracts import ReviewerAnswer, ReviewResolution, decode, encode, schema_fingerprint, to_json
from workers.contracts.schema_files import packaged_schemas_dir
from workers.quality.recording import resolution_rows
from workers.review.answers import resolve
from workers.review.backend import Answer

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def answer(n: int, status: str = "submitted", **values: Any) -> Answer:
    return Answer(f"r{n}", f"user-{n}", status, values, T0 + timedelta(minutes=n))


def resolved(task: Any, *answers: Answer) -> ReviewResolution:
    resolution = resolve(task, answers, min_submitted=len(answers), check_correction=lambda _s, _t: None)
    assert isinstance(resolution, ReviewResolution)
    return resolution


def test_a_moderation_resolution_carries_every_reviewers_label() -> None:
    resolution = resolved(
        moderation_task(), answer(1, label="ok"), answer(2, label="toxic"), answer(3, label="ok")
    )
    assert resolution.answers == (
        ReviewerAnswer(reviewer="user-1", answer="ok"),
        ReviewerAnswer(reviewer="user-2", answer="toxic"),
        ReviewerAnswer(reviewer="user-3", answer="ok"),
    )
    rows = resolution_rows(resolution).rows
    assert [(row["reviewer"], row["answer"]) for row in rows["quality_review_answers"]] == [
        ("user-1", "ok"),
        ("user-2", "toxic"),
        ("user-3", "ok"),
    ]
    assert rows["quality_reviews"][0]["answer"] == "ok"


def test_rag_verdicts_and_canonical_corrections_are_what_is_compared() -> None:
    rag = resolved(
        rag_task(), answer(1, verdict="incorrect", fault="generation"), answer(2, verdict="correct")
    )
    assert [a.answer for a in rag.answers] == ["incorrect", "correct"]
    task = extraction_task()
    corrected = json.dumps({"b": 1, "a": 2})
    extraction = resolved(
        task, answer(1, corrected_json=corrected), answer(2, corrected_json='{"a":2,"b":1}')
    )
    assert [a.answer for a in extraction.answers] == ['{"a":2,"b":1}', '{"a":2,"b":1}']


def test_the_answers_survive_avro_and_json() -> None:
    resolution = resolved(moderation_task(), answer(1, label="ok"), answer(2, label="ok"))
    assert decode(encode(resolution), [], ReviewResolution) == resolution
    assert ReviewResolution.model_validate_json(to_json(resolution)) == resolution


def test_a_resolution_written_with_the_previous_schema_decodes_without_answers() -> None:
    resolution = resolved(moderation_task(), answer(1, label="ok"), answer(2, label="ok"))
    old_schema = json.loads((packaged_schemas_dir() / "history" / "review_resolution" / "2.avsc").read_text())
    datum = json.loads(to_json(resolution))
    del datum["answers"]
    datum |= {"task_id": resolution.task_id, "resolved_at": resolution.resolved_at}
    datum["source"] |= {"event_id": resolution.source.event_id, "occurred_at": resolution.source.occurred_at}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(old_schema), datum)
    message = b"\xc3\x01" + schema_fingerprint(old_schema) + body.getvalue()
    decoded = decode(message, [], ReviewResolution)
    assert decoded == resolution.model_copy(update={"answers": ()})
