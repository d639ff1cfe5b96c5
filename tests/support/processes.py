"""Workers as separate processes, the way they run in production: `hitl-workers run ...`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import REPO_DIR


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_worker(worker: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "workers", "run", worker],
        cwd=REPO_DIR,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def scrape(port: int, timeout: float = 10) -> dict[str, float]:
    """The worker's metrics, as {'name{label="value",...}': value}."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                text = response.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def metric_total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.startswith(name + "{") and all(label in key for label in wanted)
    )


def wait_for_metric(port: int, name: str, at_least: float, timeout: float = 60) -> None:
    """Until the worker on `port` reports `name` at `at_least` or more."""
    deadline = time.monotonic() + timeout
    # The first scrape also waits for the worker to serve metrics: a worker starting beside two
    # other test suites has taken over 10 s to get there.
    while metric_total(scrape(port, timeout=max(1.0, deadline - time.monotonic())), name) < at_least:
        assert time.monotonic() < deadline, f"{name} stayed below {at_least}"
        time.sleep(0.05)
