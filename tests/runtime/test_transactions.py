"""With transactions on, outputs, dead letters and offsets commit together; readers see each once."""

from __future__ import annotations

from tests.runtime.conftest import RelayTopics, running
from tests.support.events import prediction
from tests.support.kafka import produce, read_topic
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.contracts import encode


def test_transactional_relay_delivers_each_output_once(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    events = [prediction(i) for i in range(500)]
    messages = [(str(e.event_id).encode(), encode(e), []) for e in events] + [(b"bad", b"\x00garbage", [])]
    produce(kafka_bootstrap, relay_topics.input, messages)
    transactional = settings.model_copy(
        update={"runtime": settings.runtime.model_copy(update={"transactions": True, "batch_size": 100})}
    )
    with running(relay_spec(relay_topics.input, relay_topics.output), transactional):
        relayed = read_topic(kafka_bootstrap, relay_topics.output, expect=len(events))
        dead = read_topic(kafka_bootstrap, relay_topics.dead_letters, expect=1)

    assert sorted(m.key for m in relayed) == sorted(str(e.event_id).encode() for e in events)
    assert [m.key for m in dead] == [b"bad"]
    # Nothing left uncommitted: a read_uncommitted reader sees exactly the same outputs.
    everything = read_topic(kafka_bootstrap, relay_topics.output, expect=len(events), committed_only=False)
    assert len(everything) == len(events)
