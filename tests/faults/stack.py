"""The fault suite's own stack: `deploy/local/stack stop|start SERVICE`, with this process's HITL_* ports."""

from __future__ import annotations

import os
import subprocess

from tests.support.services import REPO_DIR

STACK = REPO_DIR / "deploy" / "local" / "stack"
FAULTS_STACK_VARIABLE = "HITL_FAULTS_STACK"
"""Set by `make test-faults`: only then does the suite stop and start services, those of its own stack."""


def faults_stack_configured() -> bool:
    return os.environ.get(FAULTS_STACK_VARIABLE) == "1" and bool(os.environ.get("HITL_STACK_DIR"))


def stack(command: str, service: str) -> None:
    result = subprocess.run(
        [str(STACK), command, service], cwd=REPO_DIR, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(f"stack {command} {service} failed:\n{result.stdout}\n{result.stderr}")


def stop(service: str) -> None:
    stack("stop", service)


def start(service: str) -> None:
    stack("start", service)
