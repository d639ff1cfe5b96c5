"""Two workers on one host with default settings: each serves its metrics on its own port, and a
port that is taken is a one-line error naming the setting, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TopicFactory, unique_name
from tests.support.processes import free_port, scrape
from tests.support.services import REPO_DIR, Services
from workers.registry import METRICS_PORTS
from workers.runtime.topics import dead_letter_topic_config


def default_environment(services: Services, **variables: str) -> dict[str, str]:
    """The environment without HITL_METRICS_PORT, as a user who never set it has it."""
    environment = {k: v for k, v in os.environ.items() if k != "HITL_METRICS_PORT"}
    return environment | {"HITL_KAFKA_BOOTSTRAP": services.kafka_bootstrap, **variables}


def start(worker: str, environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers", "run", worker],
        cwd=REPO_DIR,
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_two_default_configured_workers_run_side_by_side(
    services: Services, make_topic: TopicFactory, tmp_path: Path
) -> None:
    topics = {
        name: make_topic(name.lower())
        for name in ("PREDICTIONS", "DECISIONS", "REVIEW_TASKS", "EXTRACTIONS", "EXTRACTIONS_VALID")
    }
    for source in (topics["PREDICTIONS"], topics["EXTRACTIONS"]):
        make_topic(name=source + ".dlq", partitions=1, config=dead_letter_topic_config())
    environment = default_environment(
        services,
        HITL_GROUP_ID_PREFIX=unique_name("test"),
        **{f"HITL_TOPICS__{name}": topic for name, topic in topics.items()},
    )
    workers = ("band-router", "extraction-validator")
    processes = {name: start(name, environment, tmp_path / f"{name}.log") for name in workers}
    try:
        for name in workers:
            samples = scrape(METRICS_PORTS[name], timeout=30)
            assert any(f'worker="{name}"' in key for key in samples), (
                f"port {METRICS_PORTS[name]} is not {name}'s"
            )
        time.sleep(1)
        for name, process in processes.items():
            assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)


def test_a_taken_metrics_port_is_a_one_line_error_naming_the_setting(
    services: Services, make_topic: TopicFactory
) -> None:
    topics = {name: make_topic(name.lower()) for name in ("PREDICTIONS", "DECISIONS", "REVIEW_TASKS")}
    make_topic(name=topics["PREDICTIONS"] + ".dlq", partitions=1, config=dead_letter_topic_config())
    port = free_port()
    with socket.create_server(("0.0.0.0", port)):
        environment = default_environment(
            services,
            HITL_METRICS_PORT=str(port),
            HITL_GROUP_ID_PREFIX=unique_name("test"),
            **{f"HITL_TOPICS__{name}": topic for name, topic in topics.items()},
        )
        finished = subprocess.run(
            [sys.executable, "-m", "workers", "run", "band-router"],
            cwd=REPO_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hitl-workers: HITL_METRICS_PORT={port}: cannot serve metrics there"), (
        finished.stderr
    )


def test_a_taken_gateway_port_is_a_one_line_error_too(services: Services) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "workers", "run", "gateway"],
            cwd=REPO_DIR,
            env=default_environment(services, HITL_GATEWAY__PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    assert finished.stderr.strip().splitlines()[-1].startswith(f"hitl-workers: HITL_GATEWAY__PORT={port}:")
