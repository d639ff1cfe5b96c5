"""The pipeline's processes for the demo: each worker as `hitl-workers run <name>`, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class WorkerProcesses:
    log_dir: Path
    environment: Mapping[str, str]
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, metrics_port: int) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        env = {**os.environ, **self.environment, "HITL_METRICS_PORT": str(metrics_port)}
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "workers", "run", name], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {self.log_dir / (name + '.log')}"
                )

    def stop_all(self, timeout: float = 30) -> dict[str, int | None]:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.running.items():
            try:
                codes[name] = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = None
        return codes
