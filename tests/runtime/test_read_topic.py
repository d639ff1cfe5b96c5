"""The read helper's negative checks can fail: "nothing" only after every partition's end is seen."""

from __future__ import annotations

from tests.conftest import TopicFactory
from tests.support.kafka import produce, read_topic


def test_a_negative_check_sees_a_message_produced_before_it_started(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    topic = make_topic("negative", partitions=3)
    produce(kafka_bootstrap, topic, [(b"there", b"already", [])], partition=2)

    for committed_only in (True, False):
        seen = read_topic(kafka_bootstrap, topic, expect=0, settle=0.05, committed_only=committed_only)
        assert [m.key for m in seen] == [b"there"], "expect=0 must not pass before the topic's end is seen"


def test_an_empty_topic_reads_as_empty_quickly(kafka_bootstrap: str, make_topic: TopicFactory) -> None:
    topic = make_topic("empty", partitions=3)
    assert read_topic(kafka_bootstrap, topic, expect=0, timeout=20, settle=0.05) == []
