"""`hitl-workers dlq list` and `dlq replay` on the real broker, over dead letters the runtime wrote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import TopicFactory, unique_name
from tests.runtime.conftest import running
from tests.support.events import prediction
from tests.support.kafka import Received, produce, read_topic
from tests.support.relay import relay_spec
from workers.cli import main
from workers.config import load_settings
from workers.contracts import encode
from workers.runtime.topics import dead_letter_topic_config


@pytest.fixture
def dead_letters(
    make_topic: TopicFactory, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, list[Received]]:
    """A source topic whose relay dead-lettered two unroutable predictions and one invalid JSON value."""
    source = make_topic("predictions", partitions=2)
    dlq = make_topic(name=source + ".dlq", partitions=1, config=dead_letter_topic_config())
    output = make_topic("out")
    good = [prediction() for _ in range(2)]
    unroutable = [prediction(task="reject-me") for _ in range(2)]
    messages = [(str(e.event_id).encode(), encode(e), [("trace", b"t-1")]) for e in good + unroutable]
    messages.append((b"broken-1", b'{"not": json', [("content-type", b"application/json")]))
    produce(kafka_bootstrap, source, messages)
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, group_id_prefix=unique_name("test"))
    with running(relay_spec(source, output), settings):
        letters = read_topic(kafka_bootstrap, dlq, expect=3, timeout=60)
    assert len(letters) == 3
    monkeypatch.setenv("HITL_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("HITL_TOPICS__PREDICTIONS", source)
    return source, dlq, letters


def test_list_counts_by_reason_and_shows_the_last_ones_with_their_headers(
    dead_letters: tuple[str, str, list[Received]], capsys: pytest.CaptureFixture[str]
) -> None:
    _source, dlq, _letters = dead_letters
    assert main(["dlq", "list", dlq, "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{dlq}: 3 dead letters" in out
    assert "      2  unroutable_task" in out
    assert "      1  invalid_json" in out
    assert out.count("reason=") == 2
    assert "hitl.dlq.source.topic:" in out

    assert main(["dlq", "list"]) == 0  # every dead-letter topic of the settings
    everything = capsys.readouterr().out
    assert f"{dlq}: 3 dead letters" in everything
    assert "hitl.feedback.dlq" in everything


def test_replay_puts_the_originals_back_once_and_a_dry_run_changes_nothing(
    dead_letters: tuple[str, str, list[Received]], kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source, dlq, letters = dead_letters
    assert main(["dlq", "replay", dlq, "--reason", "unroutable_task", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"would replay 2 of 2 dead letters (2 to {source})")
    assert len(read_topic(kafka_bootstrap, source, expect=5)) == 5

    assert main(["dlq", "replay", dlq, "--reason", "unroutable_task"]) == 0
    assert capsys.readouterr().out.startswith(f"replayed 2 of 2 dead letters (2 to {source})")
    on_source = read_topic(kafka_bootstrap, source, expect=7)
    replayed = [m for m in on_source if "hitl.replay.of" in m.headers]
    originals = {(m.key, m.value) for m in letters if m.headers["hitl.dlq.reason"] == b"unroutable_task"}
    assert {(m.key, m.value) for m in replayed} == originals
    for message in replayed:
        assert message.headers["trace"] == b"t-1"
        assert not [name for name in message.headers if name.startswith("hitl.dlq.")]
        assert message.headers["hitl.replay.of"].startswith(f"{dlq}:0:".encode())

    assert main(["dlq", "replay", dlq]) == 0  # again, every reason: only the JSON one is new
    assert capsys.readouterr().out.startswith(
        f"replayed 1 of 3 dead letters (1 to {source}); 2 already replayed"
    )
    assert main(["dlq", "replay", dlq]) == 0
    assert capsys.readouterr().out.startswith("replayed 0 of 3 dead letters; 3 already replayed")
    assert len(read_topic(kafka_bootstrap, source, expect=8)) == 8


def test_replay_since_selects_by_the_time_of_failure(
    dead_letters: tuple[str, str, list[Received]], capsys: pytest.CaptureFixture[str]
) -> None:
    _source, dlq, _letters = dead_letters
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert main(["dlq", "replay", dlq, "--since", later]) == 0
    assert capsys.readouterr().out.startswith("replayed 0 of 0 dead letters")
    assert main(["dlq", "replay", dlq, "--since", "2000-01-01", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would replay 3 of 3")


def test_an_unknown_topic_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HITL_KAFKA_BOOTSTRAP", kafka_bootstrap)
    assert main(["dlq", "replay", f"missing-{uuid.uuid4().hex}.dlq"]) == 2
    assert "does not exist" in capsys.readouterr().err
