"""The worker as a process: killed mid-stream it loses nothing; SIGTERM drains it; metrics add up."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from tests.runtime.conftest import RelayTopics
from tests.support.events import prediction
from tests.support.kafka import produce, read_topic
from tests.support.processes import free_port, metric_total, scrape, start_worker, wait_for_metric
from tests.support.services import Services
from workers.contracts import Prediction, decode, encode

RELAY = "tests.support.relay:relay"


def relay_env(services: Services, topics: RelayTopics, group: str, metrics_port: int) -> dict[str, str]:
    return {
        "HITL_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "HITL_TEST_RELAY_INPUT": topics.input,
        "HITL_TEST_RELAY_OUTPUT": topics.output,
        "HITL_GROUP_ID_PREFIX": group,
        "HITL_METRICS_PORT": str(metrics_port),
        # Small batches, so a kill lands between commits.
        "HITL_RUNTIME__BATCH_SIZE": "50",
        # A killed member leaves the group after this, rather than after the default 45 s.
        "HITL_KAFKA_CLIENT_CONFIG": '{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}',
    }


def test_sigkill_mid_stream_loses_nothing(
    services: Services, relay_topics: RelayTopics, tmp_path: Path
) -> None:
    events = [prediction(i) for i in range(5_000)]
    produce(
        services.kafka_bootstrap,
        relay_topics.input,
        ((str(e.event_id).encode(), encode(e), []) for e in events),
    )
    port = free_port()
    env = relay_env(services, relay_topics, f"kill-{time.time_ns()}", port)

    first = start_worker(RELAY, env, tmp_path / "worker.log")
    wait_for_metric(port, "hitl_events_produced_total", 1_000)
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    second = start_worker(RELAY, env, tmp_path / "worker.log")
    try:
        relayed = read_topic(services.kafka_bootstrap, relay_topics.output, expect=len(events), timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0

    counts = Counter(m.key for m in relayed)
    assert set(counts) == {str(e.event_id).encode() for e in events}, "every input has its output"
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"\nat-least-once after SIGKILL: {len(events)} inputs, {len(relayed)} outputs, "
        f"{duplicates} duplicates"
    )
    # Duplicates can only come from the batch in flight at the kill.
    assert duplicates <= 2 * 50 * 3
    for message in relayed[:50]:
        event = decode(message.value, list(message.headers.items()), Prediction)
        assert str(event.event_id).encode() == message.key, "outputs are keyed by event id, for deduplication"


def test_sigterm_drains_and_exits_zero_and_metrics_match(
    services: Services, relay_topics: RelayTopics, tmp_path: Path
) -> None:
    events = [prediction(i) for i in range(300)]
    bad_values = [b"\x01not an event", b'{"event_id": 1}']
    produce(
        services.kafka_bootstrap,
        relay_topics.input,
        [(str(e.event_id).encode(), encode(e), []) for e in events] + [(b"bad", v, []) for v in bad_values],
    )
    port = free_port()
    worker = start_worker(
        RELAY, relay_env(services, relay_topics, f"term-{time.time_ns()}", port), tmp_path / "w.log"
    )
    try:
        wait_for_metric(port, "hitl_events_consumed_total", len(events) + len(bad_values))
        wait_for_metric(port, "hitl_dead_letters_total", len(bad_values))
        # Outputs are counted once acknowledged: the last batches may still be in flight.
        wait_for_metric(port, "hitl_events_produced_total", len(events))
        samples = scrape(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        exit_code = worker.wait(30)
        stop_seconds = time.monotonic() - started

    assert exit_code == 0, (tmp_path / "w.log").read_text()[-2000:]
    assert stop_seconds < 10
    assert metric_total(samples, "hitl_events_consumed_total", topic=relay_topics.input) == len(events) + 2
    assert metric_total(samples, "hitl_events_produced_total", topic=relay_topics.output) == len(events)
    assert metric_total(samples, "hitl_dead_letters_total", reason="not_json_or_avro") == 1
    assert metric_total(samples, "hitl_dead_letters_total", reason="schema_mismatch") == 1
    assert metric_total(samples, "hitl_handler_seconds_count") == len(events) + 2
    assert metric_total(samples, "hitl_event_age_seconds_count") == len(events)
    log = (tmp_path / "w.log").read_text()
    assert '"event": "stopping"' in log and '"event": "stopped"' in log
    relayed = read_topic(services.kafka_bootstrap, relay_topics.output, expect=len(events))
    assert len({m.key for m in relayed}) == len(events)


def test_restart_after_sigterm_reprocesses_nothing(
    services: Services, relay_topics: RelayTopics, tmp_path: Path
) -> None:
    events = [prediction(i) for i in range(200)]
    produce(
        services.kafka_bootstrap,
        relay_topics.input,
        ((str(e.event_id).encode(), encode(e), []) for e in events),
    )
    env = relay_env(services, relay_topics, f"restart-{time.time_ns()}", free_port())
    for _ in range(2):
        worker = start_worker(RELAY, env, tmp_path / "w.log")
        wait_for_metric(int(env["HITL_METRICS_PORT"]), "hitl_events_consumed_total", 0)
        time.sleep(3)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    relayed = read_topic(services.kafka_bootstrap, relay_topics.output, expect=len(events))
    assert len(relayed) == len(events), "a clean stop commits everything it produced"
