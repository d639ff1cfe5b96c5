"""The label-sink as a process: killed mid-stream and restarted, it loses no example and stores
none twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg

from tests.label_sink.conftest import SinkTopics
from tests.label_sink.events import mixed_resolutions
from tests.label_sink.test_worker import human_id, produce_events
from tests.support.kafka import read_topic
from tests.support.processes import free_port, start_worker, wait_for_metric
from tests.support.services import Services

WORKER = "tests.label_sink.process_worker:label_sink_in_test_schema"


def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    services: Services,
    sink_topics: SinkTopics,
    pg_schema: str,
    pg_connection: psycopg.Connection,
    tmp_path: Path,
) -> None:
    events = mixed_resolutions(5_000)
    produced = [e for e in events if e.outcome is not None]
    produce_events(services.kafka_bootstrap, sink_topics.resolved, events)
    port = free_port()
    env = {
        "HITL_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "HITL_POSTGRES_DSN": services.postgres_dsn,
        "HITL_TEST_LABEL_SINK_SCHEMA": pg_schema,
        "HITL_TOPICS__REVIEW_RESOLVED": sink_topics.resolved,
        "HITL_TOPICS__TRAINING_EXAMPLES": sink_topics.examples,
        "HITL_GROUP_ID_PREFIX": f"kill-{time.time_ns()}",
        "HITL_METRICS_PORT": str(port),
        # Small batches, so a kill lands between a batch's rows and its commit.
        "HITL_RUNTIME__BATCH_SIZE": "50",
        "HITL_KAFKA_CLIENT_CONFIG": '{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}',
    }
    log = tmp_path / "worker.log"

    first = start_worker(WORKER, env, log)
    wait_for_metric(port, "hitl_events_produced_total", 1_000)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stored_at_kill = pg_connection.execute("SELECT count(*) FROM training_examples").fetchone()

    second = start_worker(WORKER, env, log)
    try:
        examples = read_topic(
            services.kafka_bootstrap, sink_topics.examples, expect=len(produced), timeout=120
        )
        deadline = time.monotonic() + 60
        while pg_connection.execute("SELECT count(*) FROM training_examples").fetchone() != (len(produced),):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0

    assert stored_at_kill is not None and 0 < stored_at_kill[0] < len(produced), "killed mid-stream"
    rows = pg_connection.execute(
        "SELECT example_id, source_partition, source_offset, stored_at = updated_at FROM training_examples"
    ).fetchall()
    assert sorted(str(row[0]) for row in rows) == sorted(human_id(e) for e in produced), "none lost"
    assert len({(row[1], row[2]) for row in rows}) == len(rows), "one row per message"
    assert all(row[3] for row in rows), "no row rewritten by the replay after the kill"
    assert pg_connection.execute("SELECT count(*) FROM discarded_reviews").fetchone() == (500,)
    assert {m.key for m in examples} == {human_id(e).encode() for e in produced}
    duplicates = len(examples) - len({m.key for m in examples})
    print(f"\nafter SIGKILL: {len(produced)} examples, {len(examples)} messages, {duplicates} duplicates")
