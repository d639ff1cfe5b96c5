"""`hitl-workers run quality-exporter` serves the report's figures as gauges, from PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from tests.quality.conftest import START, Loader, overconfident_history
from tests.quality.test_pipeline import TOPIC_FIELDS
from tests.support.processes import free_port, scrape
from tests.support.services import REPO_DIR
from workers.quality.exporter import QualityCollector
from workers.quality.history import History
from workers.quality.report import build_report

POLICY = """version = "exporter-test"

[tasks.comments]
low = 0.4
high = 0.8
audit_rate = 0.3
"""


@pytest.mark.postgres
def test_the_exporter_serves_the_reports_figures(
    load: Loader,
    read: Callable[..., History],
    postgres_dsn: str,
    pg_schema: str,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    load(overconfident_history("comments", 800, seed=3, hours=8), POLICY)
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HITL_")}
    environment |= {
        "HITL_POSTGRES_DSN": make_conninfo(postgres_dsn, options=f"-c search_path={pg_schema}"),
        "HITL_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HITL_METRICS_PORT": str(port),
        "HITL_QUALITY__WINDOW_HOURS": "1000000",
        "HITL_QUALITY__REFRESH_SECONDS": "1",
        # Topics of nobody's: no dead letters to count.
        **{f"HITL_TOPICS__{field.upper()}": f"absent-{pg_schema}-{field}" for field in TOPIC_FIELDS},
    }
    log = tmp_path / "exporter.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "workers", "run", "quality-exporter"],
        cwd=REPO_DIR,
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            samples = scrape(port, timeout=30)
            if any(key.startswith("hitl_quality_auto_error") for key in samples):
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, log.read_text()

    report = build_report(read(), START + timedelta(days=1))
    for e in report.auto_errors:
        assert e.interval is not None
        labels = (
            f'bound="estimate",label="{e.label}",model="{e.model}",outcome="{e.outcome}",'
            f'task="{e.task}",version="{e.version}"'
        )
        assert samples[f"hitl_quality_auto_error{{{labels}}}"] == pytest.approx(e.interval.estimate)
    [rate] = report.review_rates
    key = f'model="{rate.model}",reason="grey_band",task="{rate.task}",version="{rate.version}"'
    assert samples[f"hitl_quality_review_rate{{{key}}}"] == pytest.approx(rate.grey_share)
    assert samples['hitl_quality_kappa{kind="moderation",method="cohen",task="comments"}'] == pytest.approx(
        1.0
    )
    assert samples["hitl_quality_refreshed_timestamp_seconds{}"] > 0
    assert any(key.startswith("hitl_quality_time_to_label_seconds") for key in samples)


def test_the_grafana_dashboard_queries_only_gauges_the_exporter_serves(
    load: Loader, read: Callable[..., History]
) -> None:
    load(overconfident_history("comments", 300, seed=4, hours=4), POLICY)
    collector = QualityCollector()
    collector.update(build_report(read(), START + timedelta(days=1), {"x.dlq": {"invalid_json": 1}}), START)
    served = {family.name for family in collector.collect()}
    dashboard = json.loads((REPO_DIR / "deploy" / "grafana" / "hitl-quality.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    queried = {
        name.removesuffix("_total") for e in expressions for name in re.findall(r"hitl_quality_\w+", e)
    }
    assert queried, "the dashboard has queries"
    assert queried <= served, queried - served
    assert all(
        panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"] if "targets" in panel
    )
