"""`hitl-workers run NAME --processes N`: N processes of one worker, to fill a host's cores.

Each child is `hitl-workers run NAME` (the same command, the same settings), so each is a member
of the worker's consumer group and Kafka shares the input partitions among them. The children's
metrics ports clash neither with each other nor with the host's other workers, whose default
ports are consecutive (`registry.METRICS_PORTS`, 9401 and up): child i serves on the worker's port
+ 100 x i (the band-router's children on 9401, 9501, 9601, ...), or each on a free one when that
port is 0.

SIGTERM and SIGINT go to every child, and each finishes its batch, commits and exits; SIGHUP (the
band-router's policy reload) goes to every child too. When a child exits on its own, the others
are stopped too, so that a supervisor (systemd, Kubernetes) sees the failure and restarts the
whole; the exit code is then the first non-zero one.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from workers.logs import log

logger = logging.getLogger("hitl.supervisor")

POLL_SECONDS = 0.2
PORT_STEP = 100


def child_ports(base_port: int, count: int) -> list[int]:
    """The metrics port of each child: the worker's + 100 x index, or 0 (a free one) for all."""
    return [0 if base_port == 0 else base_port + PORT_STEP * index for index in range(count)]


def run_processes(worker: str, count: int, base_port: int, extra_args: Sequence[str] = ()) -> int:
    """Runs `count` children of `worker` until they exit or a signal stops them; their exit code."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "workers", "run", worker, *extra_args],
            env={**os.environ, "HITL_METRICS_PORT": str(port)},
        )
        for port in child_ports(base_port, count)
    ]
    log(logger, "processes_started", worker=worker, pids=[child.pid for child in children])
    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        return _wait(worker, children, stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(worker: str, children: list[subprocess.Popen[bytes]], stopping: list[int]) -> int:
    first_failure = 0
    while any(child.poll() is None for child in children):
        exited = [child for child in children if child.returncode is not None]
        if exited and not stopping:
            failed = next((c for c in exited if c.returncode != 0), exited[0])
            first_failure = failed.returncode or 0
            log(
                logger,
                "process_exited",
                logging.WARNING,
                worker=worker,
                pid=failed.pid,
                exit_code=failed.returncode,
            )
            stopping.append(signal.SIGTERM)
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
        time.sleep(POLL_SECONDS)
    codes = [child.returncode for child in children]
    log(logger, "processes_stopped", worker=worker, exit_codes=codes)
    return first_failure or next((code for code in codes if code != 0), 0)
