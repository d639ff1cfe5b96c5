"""The collector as it runs in production: its own process, SIGTERM, and Argilla going away."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import argilla as rg
import httpx
import pytest

from tests.argilla_bridge.conftest import (
    SCHEMA_MODULES,
    MakeSettings,
    publish_tasks,
    read_resolutions,
    record_by_task,
    running_collector,
    wait_for,
)
from tests.argilla_bridge.tasks import moderation_task
from tests.runtime.conftest import running
from tests.support.processes import start_worker
from tests.support.reviewers import sign_in_new_annotator
from tests.support.services import Services
from tests.support.tcp_proxy import tcp_proxy
from workers.config import Settings
from workers.contracts import LabelOutcome
from workers.review.collector import Collector
from workers.review.publisher import argilla_publisher

pytestmark = pytest.mark.usefixtures("remove_webhooks")


def test_the_collector_process_resolves_records_and_stops_cleanly_on_sigterm(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    services: Services,
    settings: Settings,
    tmp_path: Path,
) -> None:
    task = moderation_task(1)
    with running(argilla_publisher(settings), settings):
        publish_tasks(settings, [task])
        record = record_by_task(argilla_client, argilla_workspace, task)
    bridge = settings.argilla_bridge
    env = {
        "HITL_TOPICS__REVIEW_RESOLVED": settings.topics.review_resolved,
        "HITL_ARGILLA_BRIDGE__WORKSPACE": bridge.workspace,
        "HITL_ARGILLA_BRIDGE__COLLECTOR_PORT": str(bridge.collector_port),
        "HITL_ARGILLA_BRIDGE__COLLECTOR_PUBLIC_URL": bridge.collector_public_url,
        "HITL_EXTRACTION_VALIDATOR__SCHEMA_MODULES": json.dumps(list(SCHEMA_MODULES)),
    }
    process = start_worker("argilla-collector", env, tmp_path / "collector.log")
    try:
        health = bridge.collector_public_url.replace("/argilla/webhook", "/healthz")
        wait_for(lambda: _answers(health), timeout=30, interval=0.2)
        reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
        reviewer.submit(str(record["id"]), {"label": "toxic"})
        (resolution,) = read_resolutions(settings, expect=1)
        assert resolution.outcome == LabelOutcome(label="toxic")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    log = (tmp_path / "collector.log").read_text()
    assert code == 0, log
    assert '"event": "stopped"' in log


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_argilla_unreachable_from_the_collector_delays_the_resolution_but_loses_nothing(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    services: Services,
    make_settings: MakeSettings,
) -> None:
    tasks = [moderation_task(i) for i in range(2)]
    target = urlparse(services.argilla_api_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        settings = make_settings(
            argilla_api_url=f"http://127.0.0.1:{proxy.port}", reconcile_interval_seconds=5
        )
        with running(argilla_publisher(settings), settings):
            publish_tasks(settings, tasks)
            records = [record_by_task(argilla_client, argilla_workspace, task) for task in tasks]
        reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
        with running_collector(settings, argilla_client):
            proxy.cut()
            # Argilla calls the collector, which cannot read the records back: it answers 503.
            for record in records:
                reviewer.submit(str(record["id"]), {"label": "ok"})
            time.sleep(4)
            assert read_resolutions(settings, expect=0, timeout=2, settle=1) == []
            proxy.restore()
            resolutions = read_resolutions(settings, expect=2, timeout=60)
    assert sorted(str(r.task_id) for r in resolutions) == sorted(str(t.task_id) for t in tasks)


def test_a_collector_started_while_argilla_is_down_waits_for_it_then_reconciles(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    services: Services,
    make_settings: MakeSettings,
) -> None:
    task = moderation_task(1)
    target = urlparse(services.argilla_api_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        settings = make_settings(argilla_api_url=f"http://127.0.0.1:{proxy.port}")
        with running(argilla_publisher(settings), settings):
            publish_tasks(settings, [task])
            record = record_by_task(argilla_client, argilla_workspace, task)
        reviewer = sign_in_new_annotator(argilla_client, services.argilla_api_url, argilla_workspace)
        reviewer.submit(str(record["id"]), {"label": "ok"})
        proxy.cut()
        collector = Collector(settings)
        thread = threading.Thread(target=collector.run, daemon=True)
        thread.start()
        try:
            time.sleep(3)
            assert thread.is_alive() and not collector.started
            proxy.restore()
            wait_for(lambda: collector.started, timeout=30, interval=0.1)
            (resolution,) = read_resolutions(settings, expect=1)
        finally:
            collector.stop()
            thread.join(timeout=60)
    assert not thread.is_alive()
    assert resolution.task_id == task.task_id
