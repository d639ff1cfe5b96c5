"""Nothing crashes the loop into a restart loop: a dead letter too large for the producer, a sink
that fails in an unforeseen way, a transaction whose abort itself fails; and a batch blocked for
longer than the poll interval allows is visible before the group evicts the worker."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import replace

from confluent_kafka import Producer

from tests.runtime.conftest import RelayTopics, running
from tests.support.events import prediction
from tests.support.kafka import Message, produce, read_topic
from tests.support.relay import relay_spec
from workers.config import Settings
from workers.contracts import encode
from workers.errors import RejectedEvent
from workers.runtime.dead_letters import read_dead_letter_headers
from workers.runtime.worker import Processed


def tuned(settings: Settings, client: Mapping[str, str] | None = None, **runtime: object) -> Settings:
    return settings.model_copy(
        update={
            "runtime": settings.runtime.model_copy(update={"retry_initial_seconds": 0.1, **runtime}),
            "kafka_client_config": {**settings.kafka_client_config, **(client or {})},
        }
    )


def good_messages(count: int) -> list[Message]:
    return [(str(e.event_id).encode(), encode(e), []) for e in (prediction(i) for i in range(count))]


def test_a_dead_letter_larger_than_the_producer_takes_is_written_truncated(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    huge = b"{" + bytes(range(256)) * 12_000 + b"}"  # 3 MB: too large for the decoder and the producer
    good = good_messages(10)
    produce(
        kafka_bootstrap, relay_topics.input, [*good[:5], (b"huge", huge, [("origin", b"test")]), *good[5:]]
    )
    limited = tuned(settings, {"message.max.bytes": "2000000"})

    with running(relay_spec(relay_topics.input, relay_topics.output), limited):
        relayed = read_topic(kafka_bootstrap, relay_topics.output, expect=len(good), timeout=30)
        dead = read_topic(kafka_bootstrap, relay_topics.dead_letters, expect=1, timeout=30)

    assert sorted(m.key for m in relayed) == sorted(key for key, _v, _h in good)
    [letter] = dead
    assert letter.key == b"huge"
    failure = read_dead_letter_headers(list(letter.headers.items()))
    assert failure["reason"] == "too_large"
    assert failure["value.truncated"] == "true"
    assert failure["value.original_bytes"] == str(len(huge))
    assert failure["value.sha256"] == hashlib.sha256(huge).hexdigest()
    assert letter.value is not None and 0 < len(letter.value) < 2_000_000
    assert huge.startswith(letter.value), "a truncated value is the original's first bytes"
    assert letter.headers["origin"] == b"test"


class OnceBrokenSink:
    """Fails its first write with an error nobody classified (a bug), then stores everything."""

    def __init__(self) -> None:
        self.calls = 0
        self.stored: list[str] = []

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in the sink")
        self.stored.extend(str(item.event.event_id) for item in batch)  # type: ignore[attr-defined]
        return {}

    def close(self) -> None:
        pass


def test_an_unforeseen_sink_error_pauses_and_retries_instead_of_crashing_or_dead_lettering(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    good = good_messages(30)
    produce(kafka_bootstrap, relay_topics.input, good)
    sink = OnceBrokenSink()
    spec = replace(relay_spec(relay_topics.input, relay_topics.output), sink=sink)

    with running(spec, tuned(settings)) as runner:
        relayed = read_topic(kafka_bootstrap, relay_topics.output, expect=len(good), timeout=30)
        retries = runner.metrics.registry.get_sample_value(
            "hitl_retries_total", {"worker": "relay", "reason": "RuntimeError"}
        )
    assert sorted(m.key for m in relayed) == sorted(key for key, _v, _h in good)
    assert set(sink.stored) == {key.decode() for key, _v, _h in good if key}
    assert retries == 1
    assert read_topic(kafka_bootstrap, relay_topics.dead_letters, expect=0, settle=0.2) == []


class GatedSink:
    """Blocks the first write with one of `gated` event ids (any, if None) until `release` is set;
    `entered` says it is blocked."""

    def __init__(self, gated: set[str] | None = None) -> None:
        self.gated = gated
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, batch: Sequence[Processed]) -> Mapping[int, RejectedEvent]:
        ids = {str(item.event.event_id) for item in batch}  # type: ignore[attr-defined]
        if not self.entered.is_set() and (self.gated is None or ids & self.gated):
            self.entered.set()
            self.release.wait(20)
        return {}

    def close(self) -> None:
        pass


def test_a_fenced_transaction_whose_abort_fails_is_retried_with_a_new_producer(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    first, second = good_messages(20), good_messages(20)
    produce(kafka_bootstrap, relay_topics.input, first)
    sink = GatedSink(gated={key.decode() for key, _v, _h in second if key})
    spec = replace(relay_spec(relay_topics.input, relay_topics.output), sink=sink)
    transactional = tuned(settings, transactions=True)

    with running(spec, transactional) as runner:
        read_topic(kafka_bootstrap, relay_topics.output, expect=len(first), timeout=30)
        produce(kafka_bootstrap, relay_topics.input, second)
        assert sink.entered.wait(30)
        # Another producer takes the worker's transactional id: the worker's producer is fenced, a
        # fatal error, and its abort_transaction raises too.
        usurper = Producer(
            {"bootstrap.servers": kafka_bootstrap, "transactional.id": runner.transactional_id}
        )
        usurper.init_transactions(30)
        sink.release.set()
        relayed = read_topic(
            kafka_bootstrap, relay_topics.output, expect=len(first) + len(second), timeout=60
        )
        assert runner.metrics.registry.get_sample_value("hitl_producer_replaced_total", {"worker": "relay"})

    keys = [m.key for m in relayed]
    assert sorted(keys) == sorted(key for key, _v, _h in first + second), "each output exactly once"


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    samples: dict[str, float] = {}
    for line in lines:
        if line.startswith("hitl_batch_"):
            name, value = line.rsplit(" ", 1)
            samples[name.split("{")[0]] = float(value)
    return samples


def test_a_batch_blocked_near_the_poll_interval_is_visible_before_eviction(
    kafka_bootstrap: str, relay_topics: RelayTopics, settings: Settings
) -> None:
    produce(kafka_bootstrap, relay_topics.input, good_messages(5))
    sink = GatedSink()
    spec = replace(relay_spec(relay_topics.input, relay_topics.output), sink=sink)
    short_poll = tuned(settings, {"max.poll.interval.ms": "8000", "session.timeout.ms": "6000"})

    with running(spec, short_poll) as runner:
        port = runner.metrics.serve(0)
        assert scrape(port)["hitl_batch_stalled"] == 0
        assert sink.entered.wait(30)
        deadline = time.monotonic() + 7
        while (samples := scrape(port))["hitl_batch_stalled"] != 1:
            assert time.monotonic() < deadline, samples
            time.sleep(0.1)
        assert samples["hitl_batch_in_progress_seconds"] >= 4.0  # half of max.poll.interval.ms
        sink.release.set()
        read_topic(kafka_bootstrap, relay_topics.output, expect=5, timeout=30)
        deadline = time.monotonic() + 5
        while (samples := scrape(port))["hitl_batch_stalled"] != 0:
            assert time.monotonic() < deadline, samples
            time.sleep(0.1)
        assert samples["hitl_batch_in_progress_seconds"] == 0
