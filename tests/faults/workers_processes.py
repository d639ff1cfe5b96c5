"""The pipeline's workers as processes (`python -m workers run NAME`), several instances each if need be."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port
from tests.support.services import REPO_DIR

WORKERS = (
    "band-router",
    "feedback-triage",
    "extraction-validator",
    "argilla-publisher",
    "argilla-collector",
    "label-sink",
)


@dataclass
class Instance:
    name: str
    instance: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]


@dataclass
class WorkerSet:
    log_dir: Path
    environment: Mapping[str, str]
    running: dict[tuple[str, str], Instance] = field(default_factory=dict)
    unexpected_exits: list[str] = field(default_factory=list)

    def start(self, name: str, instance: str = "a", **extra: str) -> Instance:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}-{instance}.log").open("ab")
        env = {**os.environ, **self.environment, "HITL_METRICS_PORT": str(free_port()), **extra}
        process = subprocess.Popen(
            [sys.executable, "-m", "workers", "run", name],
            cwd=REPO_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started = Instance(name, instance, process, dict(extra))
        self.running[(name, instance)] = started
        return started

    def kill(self, name: str, instance: str = "a") -> None:
        """SIGKILL: no batch finished, nothing committed, nothing flushed."""
        running = self.running.pop((name, instance))
        running.process.send_signal(signal.SIGKILL)
        running.process.wait(timeout=30)

    def stop(self, name: str, instance: str = "a", timeout: float = 60) -> int:
        running = self.running.pop((name, instance))
        running.process.send_signal(signal.SIGTERM)
        try:
            return running.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(timeout=30)
            return -9

    def restart(self, name: str, instance: str = "a", **extra: str) -> None:
        previous = self.running.get((name, instance))
        if previous is not None:
            self.stop(name, instance)
        self.start(name, instance, **extra)

    def supervise(self) -> None:
        """Restarts a worker that exited on its own, as a supervisor would, and records it."""
        for (name, instance), running in list(self.running.items()):
            code = running.process.poll()
            if code is not None:
                self.unexpected_exits.append(f"{name}-{instance} exited with {code}")
                del self.running[(name, instance)]
                self.start(name, instance, **running.env)

    def stop_all(self) -> dict[str, int]:
        return {f"{name}-{instance}": self.stop(name, instance) for name, instance in list(self.running)}
