"""The feedback-triage worker end to end, on the real broker and PostgreSQL: what lands in the
feedback table, the latest-votes view, the review-tasks topic and the dead-letter topic, also
while PostgreSQL is unreachable."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest

from tests.conftest import ProxiedPostgres, TopicFactory, unique_name
from tests.feedback_triage.conftest import stored_event_ids
from tests.feedback_triage.events import answer_key, feedback, latest_votes, voting_scenario
from tests.runtime.conftest import running
from tests.support.kafka import Message, Received, produce, read_topic
from workers.config import FeedbackTriageSettings, Runtime, Settings, Topics, load_settings
from workers.contracts import Feedback, Rating, RetrievedContext, ReviewTask, decode, encode, to_json
from workers.feedback_triage.triage import triage
from workers.feedback_triage.worker import NAME, feedback_triage
from workers.runtime.dead_letters import read_dead_letter_headers
from workers.runtime.loop import Runner
from workers.runtime.topics import dead_letter_topic_config
from workers.storage.postgres import REFUSED_REASON

RATE = 0.3
CREATED = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TriageTopics:
    feedback: str
    dead_letters: str
    review_tasks: str


@pytest.fixture
def topics(make_topic: TopicFactory) -> TriageTopics:
    source = make_topic("feedback", partitions=3)
    dead_letters = make_topic(name=source + ".dlq", partitions=1, config=dead_letter_topic_config())
    return TriageTopics(source, dead_letters, make_topic("review-tasks", partitions=3))


def worker_settings(kafka_bootstrap: str, topics: TriageTopics, postgres_dsn: str) -> Settings:
    return load_settings(
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=postgres_dsn,
        group_id_prefix=unique_name("test"),
        topics=Topics(feedback=topics.feedback, review_tasks=topics.review_tasks),
        feedback_triage=FeedbackTriageSettings(positive_sample_rate=RATE),
        runtime=Runtime(retry_initial_seconds=0.2, retry_max_seconds=1.0),
    )


def messages(events: Iterable[Feedback]) -> list[Message]:
    """Keyed by event id; every other one in JSON, as many producers send it."""
    return [
        (str(event.event_id).encode(), to_json(event), [("content-type", b"application/json")])
        if n % 2
        else (str(event.event_id).encode(), encode(event), [])
        for n, event in enumerate(events)
    ]


TaskCount = Counter[tuple[str, ReviewTask]]


def expected_tasks(sent: Iterable[Feedback], topics: TriageTopics) -> TaskCount:
    tasks: TaskCount = Counter()
    for event in sent:
        for task in triage(event, RATE, CREATED):
            tasks[(task.key, task)] += 1
    return tasks


def received_tasks(received: list[Received], since: datetime) -> TaskCount:
    """The tasks on the topic; their creation times, checked here, are then set aside."""
    tasks: TaskCount = Counter()
    for message in received:
        assert message.key is not None
        task = decode(message.value, list(message.headers.items()), ReviewTask)
        assert since <= task.created_at <= datetime.now(UTC)
        tasks[(message.key.decode(), task.model_copy(update={"created_at": CREATED}))] += 1
    return tasks


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def row_count(connection: psycopg.Connection) -> int:
    row = connection.execute("SELECT count(*) FROM feedback").fetchone()
    return int(row[0]) if row else 0


def distinct(events: Iterable[Feedback]) -> list[Feedback]:
    return list({event.event_id: event for event in events}.values())


STORED_COLUMNS = (
    "event_id, occurred_at, session_id, question, answer, answer_key, contexts, rating, comment,"
    " user_id, model_name, model_version, prompt_version"
)


def stored_row(event: Feedback) -> tuple[object, ...]:
    return (
        event.event_id,
        event.occurred_at,
        event.session_id,
        event.question,
        event.answer,
        answer_key(event),
        [context.model_dump() for context in event.contexts],
        event.rating.value,
        event.comment,
        event.user_id,
        event.model.name,
        event.model.version,
        event.prompt_version,
    )


def test_every_event_is_stored_once_and_the_right_ones_go_to_review(
    kafka_bootstrap: str,
    topics: TriageTopics,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    events = voting_scenario(320)
    replayed = next(event for event in events[100:] if event.rating is Rating.DOWN)
    sent = [*events, replayed]
    unique = distinct(sent)
    latest = latest_votes(unique)
    # The scenario has what the test is about: repeated votes, anonymous ones, both kinds of task.
    assert len(unique) == len(events) and len(unique) - len(latest) >= 40
    assert sum(event.user_id is None for event in unique) >= 20
    expected = expected_tasks(sent, topics)
    reasons = Counter(task.reason for _, task in expected.elements())
    assert min(reasons.values()) >= 20 and len(reasons) == 2
    assert expected[(str(replayed.event_id), expected_tasks([replayed], topics).most_common(1)[0][0][1])] == 2

    produce(kafka_bootstrap, topics.feedback, messages(sent))
    settings = worker_settings(kafka_bootstrap, topics, postgres_dsn)
    started = datetime.now(UTC)
    with running(feedback_triage(settings, schema=pg_schema), settings):
        tasks = read_topic(kafka_bootstrap, topics.review_tasks, expect=expected.total())
        wait_for(lambda: row_count(pg_connection) >= len(unique), "every event stored")
        dead = read_topic(kafka_bootstrap, topics.dead_letters, expect=0, settle=0.5)

    # The replayed thumbs-down goes to review twice, with the same key: consumers deduplicate by it.
    assert received_tasks(tasks, started) == expected
    assert dead == []

    rows = pg_connection.execute(f"SELECT {STORED_COLUMNS} FROM feedback ORDER BY event_id").fetchall()
    assert rows == [stored_row(event) for event in sorted(unique, key=lambda event: event.event_id)]
    # Each row says where its event was first read.
    first_read: dict[str, tuple[int, int]] = {}
    inputs = read_topic(kafka_bootstrap, topics.feedback, expect=len(sent))
    for message in sorted(inputs, key=lambda message: message.offset):
        assert message.key is not None
        first_read.setdefault(message.key.decode(), (message.partition, message.offset))
    lineage = pg_connection.execute("SELECT event_id, source_partition, source_offset FROM feedback")
    assert {str(event_id): (partition, offset) for event_id, partition, offset in lineage} == first_read
    assert {row[0] for row in pg_connection.execute("SELECT DISTINCT source_topic FROM feedback")} == {
        topics.feedback
    }

    votes = pg_connection.execute("SELECT event_id FROM feedback_latest_votes").fetchall()
    assert len(votes) == len(latest)
    assert {event_id for (event_id,) in votes} == latest


NUL_CONTEXT = (RetrievedContext(doc_id="kb-3", text="a passage with a \x00 in it", score=0.7),)


def test_a_row_postgres_refuses_is_dead_lettered_with_its_message_and_the_rest_is_stored(
    kafka_bootstrap: str,
    topics: TriageTopics,
    postgres_dsn: str,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    good = [feedback(rating=Rating.DOWN, comment=f"Wrong, see ticket {n}") for n in range(30)]
    nul_in_text = feedback(rating=Rating.DOWN, comment="Wrong\x00date")
    nul_in_json = feedback(rating=Rating.DOWN, contexts=NUL_CONTEXT)
    sent = [*good[:10], nul_in_text, *good[10:20], nul_in_json, *good[20:]]
    values = {key: value for key, value, _ in messages(sent)}
    # Both are valid events: the database is what refuses them.
    for event in (nul_in_text, nul_in_json):
        assert decode(values[str(event.event_id).encode()], None, Feedback) == event
    # One partition: the refused rows share their batches with good ones.
    produce(kafka_bootstrap, topics.feedback, messages(sent), partition=0)

    settings = worker_settings(kafka_bootstrap, topics, postgres_dsn)
    started = datetime.now(UTC)
    with running(feedback_triage(settings, schema=pg_schema), settings):
        dead = read_topic(kafka_bootstrap, topics.dead_letters, expect=2)
        tasks = read_topic(kafka_bootstrap, topics.review_tasks, expect=len(good))

    letters = {letter.key: letter for letter in dead}
    assert set(letters) == {str(nul_in_text.event_id).encode(), str(nul_in_json.event_id).encode()}
    for event, message in [
        (
            nul_in_text,
            "refused by psycopg for PostgreSQL: PostgreSQL text fields cannot contain NUL (0x00) bytes",
        ),
        (
            nul_in_json,
            "refused by PostgreSQL (22P05): unsupported Unicode escape sequence;"
            " \\u0000 cannot be converted to text.",
        ),
    ]:
        letter = letters[str(event.event_id).encode()]
        failure = read_dead_letter_headers(list(letter.headers.items()))
        assert failure["reason"] == REFUSED_REASON
        assert failure["error.message"] == message
        assert failure["worker"] == NAME
        assert letter.value == values[str(event.event_id).encode()]
    assert received_tasks(tasks, started) == expected_tasks(good, topics)
    assert stored_event_ids(pg_connection) == sorted(str(event.event_id) for event in good)


def retries(runner: Runner) -> float:
    labels = {"worker": NAME, "reason": "DependencyUnavailable"}
    return runner.metrics.registry.get_sample_value("hitl_retries_total", labels) or 0.0


def paused(runner: Runner) -> float | None:
    return runner.metrics.registry.get_sample_value("hitl_paused", {"worker": NAME})


def test_while_postgres_is_unreachable_the_worker_pauses_and_retries_and_then_loses_nothing(
    kafka_bootstrap: str,
    topics: TriageTopics,
    proxied_postgres: ProxiedPostgres,
    pg_schema: str,
    pg_connection: psycopg.Connection,
) -> None:
    before = [feedback(rating=Rating.DOWN, session_id=f"before-{n}") for n in range(20)]
    during = voting_scenario(200, seed=11)
    settings = worker_settings(kafka_bootstrap, topics, proxied_postgres.dsn)
    spec = feedback_triage(settings, schema=pg_schema, pool_timeout=1.0)

    with running(spec, settings) as runner:
        produce(kafka_bootstrap, topics.feedback, messages(before))
        read_topic(kafka_bootstrap, topics.review_tasks, expect=len(before))
        assert retries(runner) == 0

        proxied_postgres.proxy.cut()
        produce(kafka_bootstrap, topics.feedback, messages(during))
        wait_for(lambda: retries(runner) >= 3, "three retries")
        wait_for(lambda: paused(runner) == 1, "the worker paused")
        # The runtime produces a batch's tasks only after the sink stored it: none came out.
        while_down = read_topic(kafka_bootstrap, topics.review_tasks, expect=len(before), settle=2)
        assert sorted(m.key or b"" for m in while_down) == sorted(str(e.event_id).encode() for e in before)
        assert row_count(pg_connection) == len(before)

        proxied_postgres.proxy.restore()
        expected = expected_tasks([*before, *during], topics)
        tasks = read_topic(kafka_bootstrap, topics.review_tasks, expect=expected.total(), timeout=120)
        wait_for(lambda: row_count(pg_connection) >= len(before) + len(during), "every event stored")
        wait_for(lambda: paused(runner) == 0, "the worker resumed")

    assert received_tasks(tasks, datetime.min.replace(tzinfo=UTC)) == expected
    assert stored_event_ids(pg_connection) == sorted(str(event.event_id) for event in [*before, *during])
