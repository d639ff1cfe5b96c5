"""The quality recorders on the real broker and PostgreSQL, then `hitl-workers report` and
`hitl-workers calibrate` end to end against the tables they wrote, in a schema of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TopicFactory, unique_name
from tests.label_sink.test_worker import wait_until
from tests.quality.conftest import count_rows, overconfident_history, truthful
from tests.runtime.conftest import running
from tests.support.kafka import produce
from tests.support.services import REPO_DIR
from workers.band_router.policy import parse_policy
from workers.band_router.routing import route
from workers.config import Settings, Topics, load_settings
from workers.contracts import Decision, LabelOutcome, ReviewResolution, ReviewTask, encode
from workers.quality.demo import simulated_resolution
from workers.quality.recorder import quality_decisions, quality_reviews, quality_tasks
from workers.runtime.topics import dead_letter_topic_config

TASK = "comments"
POLICY = f"""version = "pipeline-test"

[tasks.{TASK}]
low = 0.4
high = 0.8
audit_rate = 0.5
"""
TOPIC_FIELDS = ("predictions", "feedback", "extractions", "decisions", "review_tasks", "review_resolved")


@pytest.fixture
def topics(make_topic: TopicFactory) -> dict[str, str]:
    names = {field: make_topic(field.replace("_", "-"), partitions=2) for field in TOPIC_FIELDS}
    for name in names.values():
        make_topic(name=name + ".dlq", partitions=1, config=dead_letter_topic_config())
    return names


def events() -> tuple[list[Decision], list[ReviewTask], list[ReviewResolution]]:
    predictions = overconfident_history(TASK, 600, seed=11, hours=10)
    policy = parse_policy(POLICY.encode())
    end = max(p.occurred_at for p in predictions)
    decisions, tasks, resolutions = [], [], []
    for prediction in predictions:
        for output in route(prediction, policy, prediction.occurred_at + timedelta(seconds=1)):
            if isinstance(output, Decision):
                decisions.append(output)
            else:
                assert isinstance(output, ReviewTask)
                tasks.append(output)
                resolution = simulated_resolution(output, end, truthful)
                if resolution is not None:
                    resolutions.append(resolution)
    return decisions, tasks, resolutions


def produce_all(
    bootstrap: str, topic: str, items: list[Decision] | list[ReviewTask] | list[ReviewResolution]
) -> None:
    produce(bootstrap, topic, ((item.key.encode(), encode(item), []) for item in items))


@pytest.mark.postgres
def test_recorders_report_and_calibrate_end_to_end(
    kafka_bootstrap: str,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
    topics: dict[str, str],
    tmp_path: Path,
) -> None:
    decisions, tasks, resolutions = events()
    produce_all(kafka_bootstrap, topics["decisions"], decisions)
    produce_all(kafka_bootstrap, topics["review_tasks"], tasks)
    produce_all(kafka_bootstrap, topics["review_resolved"], resolutions)
    produce(kafka_bootstrap, topics["decisions"], [(b"bad", b"\x00 not an event", [])])
    settings = recorder_settings(kafka_bootstrap, postgres_dsn, topics)

    def recorded() -> bool:
        return (
            count_rows(pg_connection, "quality_decisions") == len(decisions)
            and count_rows(pg_connection, "quality_review_tasks") == len(tasks)
            and count_rows(pg_connection, "quality_reviews") == len(resolutions)
        )

    specs = (quality_decisions, quality_tasks, quality_reviews)
    with (
        running(specs[0](settings, schema=pg_schema), settings),
        running(specs[1](settings, schema=pg_schema), settings),
        running(specs[2](settings, schema=pg_schema), settings),
    ):
        wait_until(recorded, "the recorders to write every event", timeout=120)
    answers = count_rows(pg_connection, "quality_review_answers")
    assert answers == sum(len(r.answers) for r in resolutions)

    # A replay under a new consumer group changes no row.
    before = pg_connection.execute(
        "SELECT md5(string_agg(t::text, ',' ORDER BY task_id)) FROM quality_reviews t"
    ).fetchone()
    again = recorder_settings(kafka_bootstrap, postgres_dsn, topics)
    with running(quality_reviews(again, schema=pg_schema), again) as replay:
        wait_until(
            lambda: (
                (
                    replay.metrics.registry.get_sample_value(
                        "hitl_events_consumed_total",
                        {"worker": "quality-reviews", "topic": topics["review_resolved"]},
                    )
                    or 0
                )
                >= len(resolutions)
            ),
            "the replay",
        )
    after = pg_connection.execute(
        "SELECT md5(string_agg(t::text, ',' ORDER BY task_id)) FROM quality_reviews t"
    ).fetchone()
    assert before == after

    environment = cli_environment(kafka_bootstrap, postgres_dsn, topics)
    until = (max(d.decided_at for d in decisions) + timedelta(minutes=1)).isoformat()
    report_plot = tmp_path / "report.png"
    policy_file = tmp_path / "bands.toml"
    policy_file.write_text(POLICY)
    shown = cli(
        environment,
        "report",
        "--schema",
        pg_schema,
        "--format",
        "json",
        "--until",
        until,
        "--plot",
        str(report_plot),
        "--policy",
        str(policy_file),
    )
    report = json.loads(shown.stdout)

    accepted = [d for d in decisions if d.outcome.value == "auto_accepted"]
    audited = {t.task_id for t in tasks if t.reason.value == "audit_sample"}
    labels = {r.task_id: r.outcome.label for r in resolutions if isinstance(r.outcome, LabelOutcome)}
    for group in report["auto_errors"]:
        mine = [d for d in accepted if d.label == group["label"]]
        reviewed = [d for d in mine if d.event_id in audited and d.event_id in labels]
        assert group["decisions"] == len(mine)
        assert group["reviewed_audits"] == len(reviewed)
        assert group["errors"] == sum(labels[d.event_id] != d.label for d in reviewed)
    open_tasks = len(tasks) - len(resolutions)
    assert open_tasks > 0, "the latest tasks are still waiting when the history ends"
    [backlog] = report["backlog"]
    assert backlog["kind"] == "moderation" and backlog["open"] == open_tasks
    assert sum(backlog["by_age"].values()) == open_tasks
    [agreement] = report["agreement"]
    assert agreement["agreement"]["method"] == "cohen" and agreement["agreement"]["kappa"] == pytest.approx(
        1.0
    )
    assert agreement["agreement"]["items"] == len(resolutions)
    grey = [t for t in tasks if t.reason.value == "grey_band" and t.task_id in labels]
    assert sum(g["reviewed"] for g in report["grey_band"]) == len(grey)
    assert sum(g["kept"] for g in report["grey_band"]) == sum(
        labels[t.task_id] == t.suggestion.label for t in grey
    )
    assert sum(report["dead_letters"][topics["decisions"] + ".dlq"].values()) == 1
    assert report_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = cli(environment, "report", "--schema", pg_schema, "--until", until).stdout
    assert "Automatic decisions: error measured on the audit sample" in table
    assert "Reviewer agreement" in table and "cohen" in table

    calibration_plot = tmp_path / "calibration.png"
    shown = cli(
        environment,
        "calibrate",
        "--task",
        TASK,
        "--target-error",
        "0.05",
        "--schema",
        pg_schema,
        "--policy",
        str(policy_file),
        "--plot",
        str(calibration_plot),
    )
    assert "Proposed change to" in shown.stdout and "(not applied)" in shown.stdout
    assert f"+[tasks.{TASK}.labels.toxic]" in shown.stdout
    assert "Replay of the" in shown.stdout
    assert policy_file.read_text() == POLICY, "calibrate never changes the policy"
    assert calibration_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    budget = cli(
        environment,
        "calibrate",
        "--task",
        TASK,
        "--review-budget",
        "20",
        "--schema",
        pg_schema,
        "--policy",
        str(policy_file),
        "--plot",
        "-",
        "--format",
        "json",
    )
    proposal = json.loads(budget.stdout)
    assert proposal["mode"] == "review_budget"
    assert proposal["replay"]["review_per_hour_proposed"] <= 40.0 * 1.001
    # Half of 60 predictions an hour are audited: 20 an hour cannot be met, and it is said.
    infeasible = cli(
        environment,
        "calibrate",
        "--task",
        TASK,
        "--review-budget",
        "20",
        "--schema",
        pg_schema,
        "--policy",
        str(policy_file),
        "--plot",
        "-",
    ).stdout
    assert "the budget cannot be met by the bands: the audits alone need" in infeasible


@pytest.mark.postgres
def test_a_later_revision_replaces_the_review_and_keeps_when_it_was_first_resolved(
    kafka_bootstrap: str,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
    topics: dict[str, str],
) -> None:
    _, _, resolutions = events()
    first = resolutions[0]
    assert isinstance(first.outcome, LabelOutcome)
    other = "ok" if first.outcome.label == "toxic" else "toxic"
    revised = first.model_copy(
        update={
            "revision": 2,
            "resolved_at": first.resolved_at + timedelta(hours=1),
            "outcome": LabelOutcome(label=other),
        }
    )
    produce_all(kafka_bootstrap, topics["review_resolved"], [revised, first])
    settings = recorder_settings(kafka_bootstrap, postgres_dsn, topics)
    with running(quality_reviews(settings, schema=pg_schema), settings) as runner:
        wait_until(
            lambda: (
                (
                    runner.metrics.registry.get_sample_value(
                        "hitl_events_consumed_total",
                        {"worker": "quality-reviews", "topic": topics["review_resolved"]},
                    )
                    or 0
                )
                >= 2
            ),
            "both revisions",
        )
    row = pg_connection.execute(
        "SELECT answer, revision, first_resolved_at, resolved_at FROM quality_reviews WHERE task_id = %s",
        (first.task_id,),
    ).fetchone()
    assert row is not None
    assert row[0] == other and row[1] == 2
    assert row[2] == first.resolved_at and row[3] == revised.resolved_at


def recorder_settings(bootstrap: str, dsn: str, topics: dict[str, str]) -> Settings:
    return load_settings(
        kafka_bootstrap=bootstrap,
        postgres_dsn=dsn,
        group_id_prefix=unique_name("test"),
        topics=Topics(**topics),
    )


def cli_environment(bootstrap: str, dsn: str, topics: dict[str, str]) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HITL_")}
    environment |= {"HITL_KAFKA_BOOTSTRAP": bootstrap, "HITL_POSTGRES_DSN": dsn}
    environment |= {f"HITL_TOPICS__{field.upper()}": name for field, name in topics.items()}
    return environment


def cli(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    finished = subprocess.run(
        [sys.executable, "-m", "workers", *arguments],
        cwd=REPO_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    return finished
