"""The review loop on each review tool: the same behaviour in Argilla and in Label Studio."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.argilla_bridge.conftest import publish_tasks, read_resolutions
from tests.argilla_bridge.tasks import extraction_task, moderation_task, rag_task
from tests.review_backends.conftest import MakeTool, ReviewTool, running_collector, wait_for
from tests.runtime.conftest import running
from tests.support.kafka import read_topic
from workers.config import load_settings
from workers.contracts import (
    ExtractionOutcome,
    LabelOutcome,
    RagFault,
    RagOutcome,
    RagVerdict,
    ResolutionStatus,
    ReviewTask,
)
from workers.label_sink.worker import label_sink
from workers.review.publisher import publisher

VALID_CORRECTION = '{"tracking_number": "JD0145", "weight_kg": 2.5}'


def _publish(tool: ReviewTool, *tasks: ReviewTask) -> list[str]:
    """Publishes the tasks with `hitl-workers run argilla-publisher`'s worker; their items' ids."""
    with running(publisher(tool.settings), tool.settings):
        publish_tasks(tool.settings, list(tasks))
        return [tool.item_of(task) for task in tasks]


def test_answers_become_resolutions_then_training_examples_and_rows(
    make_tool: MakeTool,
    make_topic: object,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    tool = make_tool()
    moderation, rag, extraction = moderation_task(1), rag_task(2), extraction_task(3)
    refs = _publish(tool, moderation, rag, extraction)
    reviewer = tool.reviewer()
    with running_collector(tool.settings):
        reviewer.answer(refs[0], {"label": "ok"})
        reviewer.answer(
            refs[1],
            {"verdict": "incorrect", "fault": "retrieval", "corrected_answer": "Open Settings > Security."},
        )
        reviewer.answer(refs[2], {"corrected_json": VALID_CORRECTION})
        resolutions = {r.task_id: r for r in read_resolutions(tool.settings, expect=3)}
        for ref in refs:
            wait_for(lambda ref=ref: tool.emitted(ref), "the item marked emitted")

    assert resolutions[moderation.task_id].outcome == LabelOutcome(label="ok")
    assert resolutions[rag.task_id].outcome == RagOutcome(
        verdict=RagVerdict.INCORRECT, fault=RagFault.RETRIEVAL, corrected_answer="Open Settings > Security."
    )
    assert resolutions[extraction.task_id].outcome == ExtractionOutcome(corrected_json=VALID_CORRECTION)
    for task in (moderation, rag, extraction):
        resolution = resolutions[task.task_id]
        assert resolution.status is ResolutionStatus.SUBMITTED
        assert resolution.reviewers == (reviewer.id,)
        assert resolution.agreement == 1.0
        assert resolution.source == task.source

    examples_topic = make_topic("examples", partitions=1)  # type: ignore[operator]
    sink_settings = load_settings(
        kafka_bootstrap=tool.settings.kafka_bootstrap,
        postgres_dsn=postgres_dsn,
        group_id_prefix=tool.settings.group_id_prefix + "-sink",
        topics={"review_resolved": tool.settings.topics.review_resolved, "training_examples": examples_topic},
        runtime={"retry_initial_seconds": 0.1, "retry_max_seconds": 1.0},
    )
    with running(label_sink(sink_settings, schema=pg_schema), sink_settings):
        examples = read_topic(sink_settings.kafka_bootstrap, examples_topic, expect=3)
    assert len(examples) == 3
    rows = pg_connection.execute(
        "SELECT kind, label_source, reviewers FROM training_examples ORDER BY kind"
    ).fetchall()
    assert rows == [
        ("extraction", "human", [reviewer.id]),
        ("moderation", "human", [reviewer.id]),
        ("rag_answer", "human", [reviewer.id]),
    ]
    (corrected,) = pg_connection.execute(
        "SELECT corrected_output FROM extraction_corrections"
    ).fetchone() or (None,)
    assert json.loads(corrected) == json.loads(VALID_CORRECTION)
    (verdict,) = pg_connection.execute("SELECT verdict FROM rag_reviews").fetchone() or (None,)
    assert verdict == "incorrect"


@pytest.mark.parametrize(
    ("answers", "label", "agreement"),
    [(["toxic", "toxic", "toxic"], "toxic", 1.0), (["ok", "toxic", "ok"], "ok", 2 / 3)],
    ids=["agreeing", "disagreeing"],
)
def test_distinct_reviewers_resolve_by_majority_once_enough_answered(
    make_tool: MakeTool, answers: list[str], label: str, agreement: float
) -> None:
    tool = make_tool(bridge={"min_submitted": {"moderation": 3, "rag_answer": 1, "extraction": 1}})
    (ref,) = _publish(tool, moderation_task(1))
    reviewers = [tool.reviewer() for _ in range(3)]
    with running_collector(tool.settings):
        for reviewer, answer in zip(reviewers[:2], answers, strict=False):
            reviewer.answer(ref, {"label": answer})
        assert read_resolutions(tool.settings, expect=0, timeout=4, settle=3) == []
        reviewers[2].answer(ref, {"label": answers[2]})
        (resolution,) = read_resolutions(tool.settings, expect=1)
    assert resolution.outcome == LabelOutcome(label=label)
    assert resolution.agreement == pytest.approx(agreement, abs=1e-6)
    assert resolution.reviewers == tuple(reviewer.id for reviewer in reviewers)


def test_a_task_its_reviewer_discards_resolves_as_discarded(make_tool: MakeTool) -> None:
    tool = make_tool()
    task = moderation_task(1)
    (ref,) = _publish(tool, task)
    reviewer = tool.reviewer()
    with running_collector(tool.settings):
        reviewer.discard(ref)
        (resolution,) = read_resolutions(tool.settings, expect=1)
    assert resolution.status is ResolutionStatus.DISCARDED
    assert resolution.outcome is None
    assert resolution.reviewers == (reviewer.id,)


def test_a_replayed_task_is_neither_duplicated_nor_reopened(make_tool: MakeTool) -> None:
    tool = make_tool()
    task, other = moderation_task(1), moderation_task(2)
    (ref,) = _publish(tool, task)
    with running_collector(tool.settings):
        tool.reviewer().answer(ref, {"label": "ok"})
        read_resolutions(tool.settings, expect=1)
        wait_for(lambda: tool.emitted(ref), "the item marked emitted")

    # The topic read again from the start by a publisher of another consumer group, with a new task after it.
    replay = load_settings(
        **{**tool.settings.model_dump(), "group_id_prefix": tool.settings.group_id_prefix + "-replay"}
    )
    with running(publisher(replay), replay):
        publish_tasks(replay, [other])
        tool.item_of(other)
    assert len(tool.items_of(task)) == 1
    assert tool.emitted(ref), "finished work is not reopened"
    assert tool.submitted_answers(ref) == 1
    with running_collector(tool.settings) as collector:
        collector.reconciler.run_once()
        assert len(read_resolutions(tool.settings, expect=1, timeout=10, settle=3)) == 1


def test_answers_given_while_the_collector_was_down_are_reconciled_at_its_start(make_tool: MakeTool) -> None:
    tool = make_tool()
    tasks = [moderation_task(index) for index in range(3)]
    refs = _publish(tool, *tasks)
    reviewer = tool.reviewer()
    for ref in refs:
        reviewer.answer(ref, {"label": "toxic"})
    assert read_resolutions(tool.settings, expect=0, timeout=3, settle=2) == []
    with running_collector(tool.settings):
        resolutions = read_resolutions(tool.settings, expect=3)
        for ref in refs:
            wait_for(lambda ref=ref: tool.emitted(ref), "the item marked emitted")
    assert {r.task_id for r in resolutions} == {task.task_id for task in tasks}
    assert all(r.outcome == LabelOutcome(label="toxic") for r in resolutions)


def test_hostile_answers_go_back_to_their_reviewers_and_good_ones_resolve(make_tool: MakeTool) -> None:
    tool = make_tool()
    tasks = [extraction_task(index) for index in range(3)]
    invalid, with_nul, valid = _publish(tool, *tasks)
    reviewer = tool.reviewer()
    with running_collector(tool.settings):
        reviewer.answer(invalid, {"corrected_json": '{"tracking_number": "JD0145", "weight_kg": "heavy"}'})
        reviewer.answer(with_nul, {"corrected_json": '{"tracking_number": "JD\\u0000145", "weight_kg": 2.5}'})
        reviewer.answer(valid, {"corrected_json": VALID_CORRECTION})
        (resolution,) = read_resolutions(tool.settings, expect=1, settle=3)
        assert resolution.task_id == tasks[2].task_id
        for ref in (invalid, with_nul):
            wait_for(lambda ref=ref: tool.feedback(ref), "the message to the reviewer")
            wait_for(lambda ref=ref: tool.submitted_answers(ref) == 0, "the answer sent back")
            assert not tool.emitted(ref)
        assert "weight_kg" in tool.feedback(invalid)
        assert "NUL" in tool.feedback(with_nul)

        # The reviewer fixes the answer, and it resolves.
        reviewer.answer(invalid, {"corrected_json": VALID_CORRECTION})
        resolutions = read_resolutions(tool.settings, expect=2)
    assert {r.task_id for r in resolutions} == {tasks[0].task_id, tasks[2].task_id}
