"""The label-sink workers on the real broker and PostgreSQL: replays, refusals, outages, decisions,
and a trainer that reads the topic with nothing but the schema file."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ProxiedPostgres
from tests.label_sink.conftest import SinkTopics, all_rows, sink_settings, table_rows
from tests.label_sink.events import decision, extraction, mixed_resolutions, prediction, resolution
from tests.label_sink.trainer import read_training_examples
from tests.runtime.conftest import running
from tests.support.kafka import produce, read_topic
from tests.support.services import REPO_DIR
from workers.config import LabelSinkSettings, Settings
from workers.contracts import Decision, Event, ExtractionOutcome, LabelSource, ReviewResolution, encode
from workers.errors import ConfigError
from workers.label_sink.mapping import example_id
from workers.label_sink.worker import label_sink, label_sink_decisions
from workers.runtime.dead_letters import read_dead_letter_headers
from workers.runtime.loop import Runner

SCHEMA_FILE = REPO_DIR / "schemas" / "training_example.avsc"


def produce_events(bootstrap: str, topic: str, events: list[ReviewResolution] | list[Decision]) -> None:
    def key(event: Event) -> bytes:
        return str(event.task_id if isinstance(event, ReviewResolution) else event.event_id).encode()  # type: ignore[attr-defined]

    produce(bootstrap, topic, ((key(e), encode(e), []) for e in events))


def human_id(event: ReviewResolution) -> str:
    return str(example_id(LabelSource.HUMAN, event.task_id))


def metric(runner: Runner, name: str, **labels: str) -> float:
    return runner.metrics.registry.get_sample_value(name, {"worker": runner.spec.name, **labels}) or 0.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def count(connection: psycopg.Connection, table: str = "training_examples") -> int:
    return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def test_replaying_the_topic_with_a_new_consumer_group_changes_no_row(
    kafka_bootstrap: str,
    postgres_dsn: str,
    sink_topics: SinkTopics,
    settings: Settings,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    events = mixed_resolutions(300)
    produce_events(kafka_bootstrap, sink_topics.resolved, events)
    examples = [e for e in events if e.outcome is not None]

    with running(label_sink(settings, schema=pg_schema), settings):
        first_pass = read_topic(kafka_bootstrap, sink_topics.examples, expect=len(examples))
    first = all_rows(pg_connection)

    replay_settings = sink_settings(kafka_bootstrap, postgres_dsn, sink_topics)
    assert replay_settings.group_id_prefix != settings.group_id_prefix
    with running(label_sink(replay_settings, schema=pg_schema), replay_settings) as replay:
        wait_until(
            lambda: metric(replay, "hitl_events_produced_total", topic=sink_topics.examples) >= len(examples),
            "the replay",
        )
    both_passes = read_topic(kafka_bootstrap, sink_topics.examples, expect=2 * len(examples))

    assert [len(rows) for rows in first.values()] == [270, 90, 90, 30]
    assert all_rows(pg_connection) == first, "the same rows, the same count, the same contents"
    assert {m.key for m in first_pass} == {human_id(e).encode() for e in examples}
    values_by_key: dict[bytes | None, set[bytes | None]] = {}
    for message in both_passes:
        values_by_key.setdefault(message.key, set()).add(message.value)
    assert len(both_passes) == 2 * len(examples)
    assert all(len(values) == 1 for values in values_by_key.values()), "a replay yields the same bytes"


def test_a_refused_row_is_dead_lettered_with_the_database_message(
    kafka_bootstrap: str,
    sink_topics: SinkTopics,
    settings: Settings,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    good = mixed_resolutions(20)
    bad = resolution(extraction(), ExtractionOutcome(corrected_json='{"total": "1\\u0000"}'))
    produce_events(kafka_bootstrap, sink_topics.resolved, [*good[:10], bad, *good[10:]])
    produced = [e for e in good if e.outcome is not None]

    with running(label_sink(settings, schema=pg_schema), settings):
        dead = read_topic(kafka_bootstrap, sink_topics.resolved_dead_letters, expect=1)
        examples = read_topic(kafka_bootstrap, sink_topics.examples, expect=len(produced))

    [letter] = dead
    assert letter.key == str(bad.task_id).encode()
    assert letter.value == encode(bad), "the original message, untouched"
    headers = read_dead_letter_headers(list(letter.headers.items()))
    assert headers["reason"] == "database_refused"
    assert headers["error.message"] == (
        "refused by PostgreSQL (22P05): unsupported Unicode escape sequence;"
        " \\u0000 cannot be converted to text."
    )
    assert headers["worker"] == "label-sink"
    assert sorted(m.key or b"" for m in examples) == sorted(human_id(e).encode() for e in produced)
    assert {str(row[0]) for row in table_rows(pg_connection, "training_examples")} == {
        human_id(e) for e in produced
    }


def test_postgres_down_pauses_and_retries_and_every_row_lands_once(
    kafka_bootstrap: str,
    sink_topics: SinkTopics,
    pg_schema: str,
    pg_connection: psycopg.Connection,
    proxied_postgres: ProxiedPostgres,
) -> None:
    settings = sink_settings(kafka_bootstrap, proxied_postgres.dsn, sink_topics, batch_size=40)
    events = mixed_resolutions(200)
    produced = [e for e in events if e.outcome is not None]
    produce_events(kafka_bootstrap, sink_topics.resolved, events[:100])

    with running(label_sink(settings, schema=pg_schema, pool_timeout=1.0), settings) as runner:
        wait_until(lambda: count(pg_connection) == 90, "the first rows")
        proxied_postgres.proxy.cut()
        produce_events(kafka_bootstrap, sink_topics.resolved, events[100:])
        wait_until(
            lambda: metric(runner, "hitl_retries_total", reason="DependencyUnavailable") >= 3, "retries"
        )
        assert metric(runner, "hitl_paused") == 1
        assert count(pg_connection) == 90
        proxied_postgres.proxy.restore()
        wait_until(lambda: count(pg_connection) == len(produced), "every row")
        wait_until(lambda: metric(runner, "hitl_paused") == 0, "resumed")
        examples = read_topic(kafka_bootstrap, sink_topics.examples, expect=len(produced))

    assert sorted(m.key or b"" for m in examples) == sorted(human_id(e).encode() for e in produced), (
        "each example produced once: nothing is produced before its rows are stored"
    )
    assert count(pg_connection, "discarded_reviews") == 20
    assert read_topic(kafka_bootstrap, sink_topics.resolved_dead_letters, expect=0, settle=0.5) == []


def test_automatic_decisions_become_auto_examples_when_enabled(
    kafka_bootstrap: str,
    sink_topics: SinkTopics,
    settings: Settings,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    disabled = settings.model_copy(update={"label_sink": LabelSinkSettings(include_auto_decisions=False)})
    with pytest.raises(ConfigError, match="HITL_LABEL_SINK__INCLUDE_AUTO_DECISIONS"):
        label_sink_decisions(disabled)

    decisions = [decision(prediction(i)) for i in range(30)]
    produce_events(kafka_bootstrap, sink_topics.decisions, decisions)
    with running(label_sink_decisions(settings, schema=pg_schema), settings):
        examples = read_topic(kafka_bootstrap, sink_topics.examples, expect=len(decisions))

    expected = {str(example_id(LabelSource.AUTO, d.event_id)).encode() for d in decisions}
    assert {m.key for m in examples} == expected
    assert pg_connection.execute(
        "SELECT DISTINCT label_source, label, source_topic FROM training_examples"
    ).fetchall() == [("auto", "toxic", sink_topics.decisions)]
    assert count(pg_connection) == len(decisions)


def test_a_trainer_with_only_the_schema_file_reads_every_example(
    kafka_bootstrap: str,
    sink_topics: SinkTopics,
    settings: Settings,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    resolutions = mixed_resolutions(60)
    decisions = [decision(prediction(i)) for i in range(10)]
    produce_events(kafka_bootstrap, sink_topics.resolved, resolutions)
    produce_events(kafka_bootstrap, sink_topics.decisions, decisions)
    expected = 54 + len(decisions)

    with (
        running(label_sink(settings, schema=pg_schema), settings),
        running(label_sink_decisions(settings, schema=pg_schema), settings),
    ):
        wait_until(lambda: count(pg_connection) == expected, "every row")
        trained = read_training_examples(kafka_bootstrap, sink_topics.examples, SCHEMA_FILE, expect=expected)

    rows = pg_connection.execute(
        "SELECT example_id, kind, label_source, input, model_output, human_output, reviewers, agreement,"
        " model_name, model_version, source_topic, source_partition, source_offset, task_id, occurred_at,"
        " labelled_at, created_at FROM training_examples"
    ).fetchall()
    assert len(trained) == len(rows) == expected
    for row in rows:
        example = trained[str(row[0])]
        assert example["example_id"] == row[0]
        assert (example["kind"], example["label_source"]) == (row[1], row[2])
        assert json.loads(example["input"]) == row[3]
        assert json.loads(example["model_output"]) == row[4]
        assert (None if example["human_output"] is None else json.loads(example["human_output"])) == row[5]
        assert (example["reviewers"], example["agreement"]) == (row[6], row[7])
        assert example["model"] == {"name": row[8], "version": row[9]}
        assert example["lineage"] == {
            "source_topic": row[10],
            "partition": row[11],
            "offset": row[12],
            "task_id": row[13],
        }
        assert [example[name] for name in ("occurred_at", "labelled_at", "created_at")] == [
            value.astimezone(UTC) for value in row[14:17]
        ]
    assert Counter(e["label_source"] for e in trained.values()) == {"human": 54, "auto": 10}


def test_the_trainer_module_imports_nothing_from_the_project() -> None:
    source = (Path(__file__).parent / "trainer.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "workers" in line or "tests" in line], imports
