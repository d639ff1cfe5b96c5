"""The package as users get it: the wheel, installed in a fresh virtual environment, runs a worker
from a folder that is not the checkout; the sdist carries the tests and the schemas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import argilla as rg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg.conninfo import make_conninfo

from tests.support.events import prediction
from tests.support.kafka import produce, read_topic
from tests.support.processes import free_port
from tests.support.services import REPO_DIR, Services
from workers.config import Topics
from workers.contracts import Decision, ReviewTask, decode, schema_names, to_json
from workers.registry import SERVICES, WORKERS

pytestmark = pytest.mark.kafka

TOPIC_FIELDS = [name for name, info in Topics.model_fields.items() if info.annotation is str][:-1]


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist, and the wheel built from it, as `python -m build` makes them for an index."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO_DIR)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("hitl_workers-*.whl")
    (sdist,) = out.glob("hitl_workers-*.tar.gz")
    return Built(wheel, sdist)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only the wheel (and its dependencies) installed."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(built.wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return venv / "bin" / "hitl-workers"


def test_the_wheel_holds_what_workers_read_at_run_time(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    for schema in schema_names():
        assert f"workers/contracts/schemas/{schema}.avsc" in names
    assert "workers/band_router/bands.toml" in names
    assert "workers/py.typed" in names
    assert any(name.startswith("workers/storage/migrations/0001_") for name in names)
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(built.wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "Requires-Python: >=3.11" in text
    assert "Project-URL: Source" in text
    assert "Classifier: Typing :: Typed" in text


def test_the_sdist_holds_the_tests_and_the_schemas(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "tests/conftest.py" in names
    assert "tests/packaging/test_installed_wheel.py" in names
    for schema in schema_names():
        assert f"schemas/{schema}.avsc" in names
        assert f"workers/contracts/schemas/{schema}.avsc" in names
    assert "LICENSE" in names


def test_version(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(installed), "--version"], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert result.stdout.split() == ["hitl-workers", "0.1.0"]


@pytest.fixture
def namespace(kafka_admin: AdminClient) -> Iterator[dict[str, str]]:
    """HITL_TOPICS__* naming topics of this test's own; they are deleted afterwards."""
    prefix = f"wheel-{uuid.uuid4().hex[:8]}"
    env = {f"HITL_TOPICS__{field.upper()}": f"{prefix}.{field}" for field in TOPIC_FIELDS}
    env["HITL_TOPICS__PARTITIONS"] = "1"
    yield env
    existing = set(kafka_admin.list_topics(timeout=10).topics)
    mine = [name for name in existing if name.startswith(prefix + ".")]
    if mine:
        for future in kafka_admin.delete_topics(mine).values():
            future.result(timeout=30)


def test_the_installed_wheel_routes_a_prediction_from_any_folder(
    installed: Path, services: Services, namespace: dict[str, str], tmp_path: Path
) -> None:
    # Only connection settings and topic names: no path into the checkout, no PYTHONPATH.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HITL_", "PYTHON"))}
    env |= namespace | {"HITL_KAFKA_BOOTSTRAP": services.kafka_bootstrap, "HITL_METRICS_PORT": "0"}
    created = subprocess.run(
        [str(installed), "topics", "create"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    assert namespace["HITL_TOPICS__PREDICTIONS"] in created.stdout

    log = (tmp_path / "band-router.log").open("wb")
    worker = subprocess.Popen(
        [str(installed), "run", "band-router"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        grey = prediction(scores={"toxic": 0.61, "ok": 0.39})
        clear = prediction(scores={"toxic": 0.02, "ok": 0.98})
        produce(
            services.kafka_bootstrap,
            namespace["HITL_TOPICS__PREDICTIONS"],
            [
                (str(p.event_id).encode(), to_json(p), [("content-type", b"application/json")])
                for p in (grey, clear)
            ],
        )
        tasks = read_topic(
            services.kafka_bootstrap, namespace["HITL_TOPICS__REVIEW_TASKS"], expect=1, timeout=90
        )
        decisions = read_topic(
            services.kafka_bootstrap, namespace["HITL_TOPICS__DECISIONS"], expect=1, timeout=30
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(60)
        log.close()
    output = (tmp_path / "band-router.log").read_text()
    assert code == 0, output
    routed = [decode(m.value, [("content-type", m.headers["content-type"])], ReviewTask) for m in tasks]
    assert grey.event_id in {task.task_id for task in routed}
    decided = [decode(m.value, [("content-type", m.headers["content-type"])], Decision) for m in decisions]
    assert {decision.event_id for decision in decided} >= {clear.event_id}


WORKER_SETTINGS = {
    "label-sink-decisions": {"HITL_LABEL_SINK__INCLUDE_AUTO_DECISIONS": "true"},
}


@pytest.mark.postgres
@pytest.mark.argilla
@pytest.mark.parametrize("worker", [*sorted(WORKERS), *sorted(SERVICES)])
def test_every_worker_of_the_installed_wheel_starts_from_any_folder(
    worker: str,
    installed: Path,
    services: Services,
    namespace: dict[str, str],
    pg_schema: str,
    argilla_client: rg.Argilla,
    tmp_path: Path,
) -> None:
    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}/{uuid.uuid4().hex}/webhook"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HITL_", "PYTHON"))}
    env |= namespace | WORKER_SETTINGS.get(worker, {})
    env |= {
        "HITL_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "HITL_POSTGRES_DSN": make_conninfo(services.postgres_dsn, options=f"-c search_path={pg_schema}"),
        "HITL_ARGILLA_API_URL": services.argilla_api_url,
        "HITL_ARGILLA_API_KEY": services.argilla_api_key,
        "HITL_ARGILLA_BRIDGE__WORKSPACE": f"wheel-{uuid.uuid4().hex[:8]}",
        "HITL_ARGILLA_BRIDGE__COLLECTOR_PORT": str(port),
        "HITL_ARGILLA_BRIDGE__COLLECTOR_PUBLIC_URL": webhook_url,
        # The demo, run by the other half of the suite at the same time, may hold the default 8000.
        "HITL_GATEWAY__PORT": str(free_port()),
        "HITL_METRICS_PORT": "0",
    }
    subprocess.run(
        [str(installed), "topics", "create"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    log_path = tmp_path / f"{worker}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(installed), "run", worker], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            started = _wait_for_log_event(log_path, "started", process, timeout=90)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(60)
            _delete_webhooks(argilla_client, webhook_url)
    output = log_path.read_text()
    assert started, output
    assert code == 0, output


def _wait_for_log_event(path: Path, event: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        for line in path.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == event:
                return True
        time.sleep(0.2)
    return False


def _delete_webhooks(client: rg.Argilla, url: str) -> None:
    """The collector's webhook would otherwise go on receiving every later test's events."""
    http = client.http_client
    for webhook in http.get("/api/v1/webhooks").json()["items"]:
        if webhook["url"] == url:
            http.delete(f"/api/v1/webhooks/{webhook['id']}").raise_for_status()
