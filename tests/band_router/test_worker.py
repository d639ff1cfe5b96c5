"""The band-router on the real broker: every prediction lands in exactly the right topic, once."""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from tests.band_router.conftest import NOW, make_prediction, seeded_ids
from tests.conftest import TopicFactory, unique_name
from tests.runtime.conftest import running
from tests.support.kafka import Message, Received, produce, read_topic
from tests.support.processes import start_worker
from workers.band_router.policy import load_policy
from workers.band_router.routing import audit_draw, route
from workers.band_router.worker import band_router
from workers.config import Settings, load_settings
from workers.contracts import (
    AVRO_CONTENT_TYPE,
    Decision,
    DecisionOutcome,
    Prediction,
    ReviewReason,
    ReviewTask,
    decode,
    encode,
    to_json,
)
from workers.runtime.dead_letters import read_dead_letter_headers
from workers.runtime.topics import dead_letter_topic_config

E = TypeVar("E", Decision, ReviewTask)

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("restore_sighup")]

POLICY = """
version = "e2e-{n}"

[tasks.moderation]
low = 0.4
high = {high}
audit_rate = 0.1

[tasks.moderation.labels.self_harm]
low = 0.05
high = 0.97
audit_rate = 0.5

[tasks.moderation.models.toxicity-bert.versions."3.0.0"]
low = 0.3
high = 0.9
"""


@dataclass(frozen=True)
class RouterTopics:
    predictions: str
    decisions: str
    review_tasks: str
    dead_letters: str


@pytest.fixture
def topics(make_topic: TopicFactory) -> RouterTopics:
    predictions = make_topic("predictions", partitions=3)
    dead_letters = make_topic(name=predictions + ".dlq", partitions=1, config=dead_letter_topic_config())
    return RouterTopics(
        predictions, make_topic("decisions", partitions=3), make_topic("review", partitions=3), dead_letters
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "bands.toml"
    path.write_text(POLICY.format(n=1, high=0.8))
    return path


@pytest.fixture
def router_settings(kafka_bootstrap: str, topics: RouterTopics, policy_file: Path) -> Settings:
    return load_settings(
        kafka_bootstrap=kafka_bootstrap,
        group_id_prefix=unique_name("test"),
        topics={
            "predictions": topics.predictions,
            "decisions": topics.decisions,
            "review_tasks": topics.review_tasks,
        },
        band_router={"policy_file": policy_file, "reload_check_seconds": 0.2},
    )


@dataclass
class Workload:
    grey: list[Prediction]
    high: list[Prediction]
    low: list[Prediction]
    bad: dict[bytes, tuple[bytes, str, str]]
    """Each bad message by its key: its value, the dead letter's reason, a phrase of its message."""

    @property
    def good(self) -> list[Prediction]:
        return self.grey + self.high + self.low

    @property
    def decided(self) -> list[Prediction]:
        return self.high + self.low


def workload() -> Workload:
    rng = random.Random(7)
    ids: Iterator[uuid.UUID] = iter(seeded_ids(400, seed=8))

    def make(scores: dict[str, float], version: str = "2.3.1", task: str = "moderation") -> Prediction:
        return make_prediction(scores, version=version, task=task, event_id=next(ids))

    grey = [make({"toxic": rng.uniform(0.41, 0.79)}) for _ in range(100)]
    # a grey second label sends a confidently scored prediction to review
    grey += [make({"toxic": rng.uniform(0.97, 1.0), "self_harm": rng.uniform(0.06, 0.96)}) for _ in range(30)]
    # accepted under the task's band, grey under version 3.0.0's (0.3, 0.9)
    grey += [make({"toxic": rng.uniform(0.8, 0.89)}, version="3.0.0") for _ in range(30)]
    high = [make({"toxic": rng.uniform(0.8, 1.0), "ok": rng.uniform(0.0, 0.4)}) for _ in range(80)]
    high += [make({"toxic": 0.8}) for _ in range(10)]
    low = [make({"toxic": rng.uniform(0.0, 0.4)}) for _ in range(80)]
    low += [make({"toxic": 0.4}) for _ in range(10)]

    template = json.loads(to_json(make({"toxic": 0.5})))

    def json_with(scores: object) -> bytes:
        return json.dumps({**template, "scores": scores}).encode()

    def avro_with(scores: dict[str, float]) -> bytes:
        return encode(Prediction.model_construct(**{**dict(make({"x": 0.5})), "scores": scores}))

    not_finite = "scores.toxic: Input should be a finite number"
    above_one = "scores.toxic: Input should be less than or equal to 1"
    below_zero = "scores.toxic: Input should be greater than or equal to 0"
    empty = "scores: Dictionary should have at least 1 item"
    invalid = "invalid_value"
    bad = {
        b"json-nan": (json_with({"toxic": float("nan")}), invalid, not_finite),
        b"json-above-one": (json_with({"toxic": 1.5}), invalid, above_one),
        b"json-negative": (json_with({"toxic": -0.2}), invalid, below_zero),
        b"json-no-scores": (json_with({}), invalid, empty),
        b"avro-nan": (avro_with({"toxic": float("nan")}), invalid, not_finite),
        b"avro-above-one": (avro_with({"toxic": 1.01}), invalid, above_one),
        b"avro-no-scores": (avro_with({}), invalid, empty),
        b"unknown-task": (encode(make({"x": 0.9}, task="translation")), "unknown_task", "task 'translation'"),
    }
    return Workload(grey, high, low, bad)


def messages_of(load: Workload) -> list[Message]:
    rng = random.Random(9)
    good: list[Message] = [(str(p.event_id).encode(), encode(p), []) for p in load.good]
    bad: list[Message] = [(key, value, []) for key, (value, _reason, _phrase) in load.bad.items()]
    mixed = good + bad
    rng.shuffle(mixed)
    return mixed


def decoded(received: list[Received], event_type: type[E]) -> dict[str, E]:
    by_key: dict[str, E] = {}
    for message in received:
        assert message.key is not None
        assert message.headers.get("content-type") == AVRO_CONTENT_TYPE.encode()
        by_key[message.key.decode()] = decode(message.value, list(message.headers.items()), event_type)
    assert len(by_key) == len(received), "one output per key"
    return by_key


def test_predictions_are_decided_reviewed_audited_or_dead_lettered(
    kafka_bootstrap: str, topics: RouterTopics, router_settings: Settings, policy_file: Path
) -> None:
    load = workload()
    audited = {str(p.event_id) for p in load.decided if audit_draw(p.event_id) < 0.1}
    assert audited, "the workload must hold audit samples"
    produce(kafka_bootstrap, topics.predictions, messages_of(load))
    started = datetime.now(UTC)

    with running(band_router(router_settings), router_settings):
        decisions = read_topic(kafka_bootstrap, topics.decisions, expect=len(load.decided))
        reviews = read_topic(kafka_bootstrap, topics.review_tasks, expect=len(load.grey) + len(audited))
        dead = read_topic(kafka_bootstrap, topics.dead_letters, expect=len(load.bad))

    decided = decoded(decisions, Decision)
    reviewed = decoded(reviews, ReviewTask)
    assert set(decided) == {str(p.event_id) for p in load.decided}
    assert set(reviewed) == {str(p.event_id) for p in load.grey} | audited
    assert {key for key, task in reviewed.items() if task.reason is ReviewReason.AUDIT_SAMPLE} == audited
    for key, decision in decided.items():
        assert isinstance(decision, Decision)
        expected = (
            DecisionOutcome.AUTO_ACCEPTED if decision.source in load.high else DecisionOutcome.AUTO_REJECTED
        )
        assert (key, decision.outcome) == (str(decision.event_id), expected)

    # Every field, against the pure function's answer for the same prediction and policy.
    policy = load_policy(policy_file)
    for prediction in load.good:
        key = str(prediction.event_id)
        for expected_output in route(prediction, policy, NOW):
            if isinstance(expected_output, Decision):
                decision = decided[key]
                assert decision == expected_output.model_copy(update={"decided_at": decision.decided_at})
                assert decision.policy_version.startswith("e2e-1+")
                assert started <= decision.decided_at <= datetime.now(UTC)
            else:
                task = reviewed[key]
                assert task == expected_output.model_copy(update={"created_at": task.created_at})
                assert started <= task.created_at <= datetime.now(UTC)

    assert len(dead) == len(load.bad)
    for letter in dead:
        assert letter.key is not None
        value, reason, phrase = load.bad[letter.key]
        failure = read_dead_letter_headers(list(letter.headers.items()))
        assert (failure["reason"], failure["worker"]) == (reason, "band-router"), letter.key
        assert phrase in failure["error.message"], letter.key
        assert letter.value == value


def test_a_new_policy_applies_without_a_restart_and_a_broken_one_is_refused(
    kafka_bootstrap: str, topics: RouterTopics, router_settings: Settings, policy_file: Path
) -> None:
    def send(scores: dict[str, float], count: int) -> list[Prediction]:
        batch = [make_prediction(scores) for _ in range(count)]
        produce(
            kafka_bootstrap, topics.predictions, [(str(p.event_id).encode(), encode(p), []) for p in batch]
        )
        return batch

    def change_policy(text: str) -> None:
        policy_file.write_text(text)
        # Past the check interval, so the next prediction is routed after the check.
        time.sleep(router_settings.band_router.reload_check_seconds * 3)

    def audited(batch: list[Prediction]) -> set[str]:
        return {str(p.event_id) for p in batch if audit_draw(p.event_id) < 0.1}

    with running(band_router(router_settings), router_settings):
        first = send({"toxic": 0.85}, 20)
        read_topic(kafka_bootstrap, topics.decisions, expect=20, settle=0.2)
        change_policy(POLICY.format(n=2, high=0.9))
        second = send({"toxic": 0.85}, 20)
        read_topic(kafka_bootstrap, topics.review_tasks, expect=20 + len(audited(first)), settle=0.2)
        change_policy(POLICY.format(n=3, high=0.3))
        third = send({"toxic": 0.95}, 20)
        decisions = decoded(read_topic(kafka_bootstrap, topics.decisions, expect=40), Decision)
        reviews = decoded(
            read_topic(kafka_bootstrap, topics.review_tasks, expect=20 + len(audited(first + third))),
            ReviewTask,
        )

    assert set(decisions) == {str(p.event_id) for p in first + third}
    grey = {key for key, task in reviews.items() if task.reason is ReviewReason.GREY_BAND}
    assert grey == {str(p.event_id) for p in second}
    assert set(reviews) - grey == audited(first + third)
    versions = {key: d.policy_version.split("+")[0] for key, d in decisions.items()}
    assert {versions[str(p.event_id)] for p in first} == {"e2e-1"}
    assert {versions[str(p.event_id)] for p in third} == {"e2e-2"}, "the broken policy was refused"
    assert {d.band.high for key, d in decisions.items() if versions[key] == "e2e-2"} == {0.9}


def test_the_worker_process_reloads_its_policy_on_sighup(
    kafka_bootstrap: str, topics: RouterTopics, policy_file: Path, tmp_path: Path
) -> None:
    env = {
        "HITL_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HITL_GROUP_ID_PREFIX": unique_name("test"),
        "HITL_METRICS_PORT": "0",
        "HITL_TOPICS__PREDICTIONS": topics.predictions,
        "HITL_TOPICS__DECISIONS": topics.decisions,
        "HITL_TOPICS__REVIEW_TASKS": topics.review_tasks,
        "HITL_BAND_ROUTER__POLICY_FILE": str(policy_file),
        # Only SIGHUP can make it look at the file during the test.
        "HITL_BAND_ROUTER__RELOAD_CHECK_SECONDS": "3600",
    }
    log = tmp_path / "worker.log"
    # An id that no audit rate of the test policy picks, so each prediction has exactly one output.
    ids = iter(i for i in seeded_ids(100, seed=10) if audit_draw(i) >= 0.1)

    def send() -> Prediction:
        event = make_prediction({"toxic": 0.95}, event_id=next(ids))
        produce(kafka_bootstrap, topics.predictions, [(str(event.event_id).encode(), encode(event), [])])
        return event

    worker = start_worker("band-router", env, log)
    try:
        before = send()
        read_topic(kafka_bootstrap, topics.decisions, expect=1, timeout=60, settle=0.1)
        policy_file.write_text(POLICY.format(n=2, high=0.99))
        worker.send_signal(signal.SIGHUP)
        after = send()
        reviews = read_topic(kafka_bootstrap, topics.review_tasks, expect=1, timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()

    assert [m.key for m in reviews] == [str(after.event_id).encode()]
    decisions = decoded(read_topic(kafka_bootstrap, topics.decisions, expect=1), Decision)
    assert decisions[str(before.event_id)].policy_version.startswith("e2e-1+")
    reloads = [json.loads(line) for line in log.read_text().splitlines() if '"policy_reloaded"' in line]
    assert [(r["previous"].split("+")[0], r["version"].split("+")[0]) for r in reloads] == [
        ("e2e-1", "e2e-2")
    ]
