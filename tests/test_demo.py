"""The main job: `hitl-workers demo` runs the whole pipeline on the bundled sample and closes the loop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.support.services import REPO_DIR, Services


@pytest.mark.parametrize("backend", ["argilla", "label-studio"])
def test_demo_turns_the_sample_into_training_data(services: Services, backend: str) -> None:
    env = {
        **os.environ,
        "HITL_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "HITL_POSTGRES_DSN": services.postgres_dsn,
        "HITL_ARGILLA_API_URL": services.argilla_api_url,
        "HITL_ARGILLA_API_KEY": services.argilla_api_key,
        "HITL_REVIEW__BACKEND": backend,
    }
    result = subprocess.run(
        [sys.executable, "-m", "workers", "demo"],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def figure(label: str) -> int:
        match = re.search(rf"^\s+{label}\s+(\d+)", result.stdout, re.MULTILINE)
        assert match, f"no '{label}' line in:\n{result.stdout}"
        return int(match.group(1))

    sample_answers = [json.loads(line) for line in (REPO_DIR / "samples/review_answers.jsonl").open()]
    tasks = figure("review tasks")
    assert figure("sample events in") == 390
    assert 0 < tasks < len(sample_answers)
    assert figure("review items") == tasks
    assert ("Label Studio: http" in result.stdout) == (backend == "label-studio")
    assert figure("resolutions") == tasks
    assert figure("training examples") == tasks
    assert figure("dead letters") == 0
    assert figure("automatic decisions") + tasks + figure("valid extractions") >= 240 + 60
    for kind in ("moderation", "rag_answer", "extraction"):
        exported = REPO_DIR / ".stack/demo/export" / f"{kind}.jsonl"
        lines = exported.read_text().splitlines()
        assert len(lines) == figure(f"export {kind}") > 0
        json.loads(lines[0])
    assert "band-router=0" in result.stdout and "label-sink=0" in result.stdout
