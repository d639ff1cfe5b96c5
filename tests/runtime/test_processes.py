"""`hitl-workers run NAME --processes N`: N members of the worker's group, stopped together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.runtime.conftest import RelayTopics
from tests.runtime.test_process_lifecycle import RELAY, relay_env
from tests.support.events import prediction
from tests.support.kafka import produce, read_topic
from tests.support.processes import free_port, metric_total, scrape
from tests.support.services import REPO_DIR, Services
from workers.contracts import encode
from workers.supervisor import child_ports


def test_children_get_metrics_ports_clear_of_the_other_workers_or_free_ones() -> None:
    assert child_ports(9401, 3) == [9401, 9501, 9601]
    assert child_ports(0, 2) == [0, 0]


def consumed(port: int) -> float:
    return metric_total(scrape(port), "hitl_events_consumed_total")


def test_two_processes_share_the_partitions_and_stop_together_on_sigterm(
    services: Services, relay_topics: RelayTopics, tmp_path: Path
) -> None:
    base = free_port()
    env = relay_env(services, relay_topics, f"processes-{time.time_ns()}", base)
    log_path = tmp_path / "supervisor.log"
    with log_path.open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "workers", "run", RELAY, "--processes", "2"],
            cwd=REPO_DIR,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sent = []
    try:
        # Events keep coming until both members have consumed some: each holds partitions.
        deadline = time.monotonic() + 90
        while not (sent and consumed(base) > 0 and consumed(base + 100) > 0):
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            batch = [prediction(len(sent) + i) for i in range(30)]
            produce(
                services.kafka_bootstrap,
                relay_topics.input,
                [(str(e.event_id).encode(), encode(e), []) for e in batch],
            )
            sent += batch
            time.sleep(0.5)
        relayed = read_topic(services.kafka_bootstrap, relay_topics.output, expect=len(sent), timeout=60)
        both = consumed(base) + consumed(base + 100)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        exit_code = supervisor.wait(60)

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert exit_code == 0, log_path.read_text()[-3000:]
    started = next(line for line in lines if line["event"] == "processes_started")
    stopped = next(line for line in lines if line["event"] == "processes_stopped")
    assert len(started["pids"]) == 2
    assert stopped["exit_codes"] == [0, 0]
    for pid in started["pids"]:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert sum(1 for line in lines if line["event"] == "stopped") == 2, "each child drained and stopped"
    assert {m.key for m in relayed} >= {str(e.event_id).encode() for e in sent}
    assert both >= len(sent)
