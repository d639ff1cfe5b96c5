"""Every kind of bad input lands in the dead-letter topic with its reason, and good events flow on."""

from __future__ import annotations

import json
import os
import uuid

from tests.runtime.conftest import RelayTopics, running
from tests.support.events import prediction
from tests.support.kafka import Message, produce, read_topic
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.contracts import encode, to_json
from workers.runtime.dead_letters import read_dead_letter_headers


def bad_inputs() -> dict[str, bytes]:
    """Each kind of bad value, by the reason the dead letter must give."""
    good_avro = encode(prediction())
    feedback_json = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-01-01T00:00:00Z",
        "session_id": "s1",
        "question": "q",
        "answer": "a",
        "contexts": [],
        "rating": "down",
        "model": {"name": "rag", "version": "1"},
    }
    return {
        "not_json_or_avro": b"\x07" + os.urandom(200),
        "truncated_avro": good_avro[: len(good_avro) // 2],
        "unknown_fingerprint": good_avro[:2] + b"\x00" * 8 + good_avro[10:],
        "schema_mismatch": json.dumps({"event_id": str(uuid.uuid4()), "task": "moderation"}).encode(),
        "wrong_event_type": json.dumps(feedback_json).encode(),
        "invalid_utf8": b'{"event_id": "\xff\xfe\xfd"}',
        "too_large": b"{" + b" " * 1_100_000 + b"}",
    }


def test_bad_inputs_are_dead_lettered_with_their_reason_and_good_ones_flow_on(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    good = [prediction(i) for i in range(20)]
    bad = bad_inputs()
    rejected_by_handler = prediction(99, task="reject-me")
    messages: list[Message] = []
    for reason, value in bad.items():
        messages.append((reason.encode(), value, [("origin", b"test")]))
        messages.extend((str(e.event_id).encode(), encode(e), []) for e in good[: len(good) // 2])
    messages.append((b"handler", to_json(rejected_by_handler), [("content-type", b"application/json")]))
    messages.extend((str(e.event_id).encode(), to_json(e), []) for e in good[len(good) // 2 :])
    # All on one partition, so "goes on consuming after it" is about the same partition.
    produce(kafka_bootstrap, relay_topics.input, messages, partition=0)

    with running(relay_spec(relay_topics.input, relay_topics.output), settings):
        relayed = read_topic(
            kafka_bootstrap, relay_topics.output, expect=len(good) // 2 * len(bad) + len(good) // 2
        )
        dead = read_topic(kafka_bootstrap, relay_topics.dead_letters, expect=len(bad) + 1)

    assert sorted(str(e.event_id) for e in good) == sorted({m.key.decode() for m in relayed if m.key})
    by_key = {letter.key: letter for letter in dead}
    assert set(by_key) == {reason.encode() for reason in bad} | {b"handler"}
    for reason, value in bad.items():
        letter = by_key[reason.encode()]
        failure = read_dead_letter_headers(list(letter.headers.items()))
        assert failure["reason"] == reason
        assert letter.value == value, f"{reason}: the original value must be kept"
        assert letter.headers["origin"] == b"test", "the original headers must be kept"
        assert failure["source.topic"] == relay_topics.input
        assert failure["worker"] == "relay"
        assert failure["error.message"]
        assert {"source.partition", "source.offset", "failed_at", "error.class"} <= set(failure)
    handler_failure = read_dead_letter_headers(list(by_key[b"handler"].headers.items()))
    assert handler_failure["reason"] == "unroutable_task"
    assert "reject-me" in handler_failure["error.message"]


def test_an_output_too_large_for_its_topic_dead_letters_its_input(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    small, large = prediction(1), prediction(2)
    large = large.model_copy(update={"item": large.item.model_copy(update={"text": "x" * 5000})})
    messages: list[Message] = [(b"small", encode(small), []), (b"large", encode(large), [])]
    produce(kafka_bootstrap, relay_topics.input, messages)
    limited = settings.model_copy(
        update={"runtime": settings.runtime.model_copy(update={"max_output_bytes": 2048})}
    )
    with running(relay_spec(relay_topics.input, relay_topics.output), limited):
        relayed = read_topic(kafka_bootstrap, relay_topics.output, expect=1)
        dead = read_topic(kafka_bootstrap, relay_topics.dead_letters, expect=1)

    assert [m.key for m in relayed] == [str(small.event_id).encode()]
    assert [m.key for m in dead] == [b"large"]
    failure = read_dead_letter_headers(list(dead[0].headers.items()))
    assert failure["reason"] == "output_too_large"
    assert "HITL_RUNTIME__MAX_OUTPUT_BYTES" in failure["error.message"]
