"""The fault suite's one pipeline, shared by its scenarios in order, on the suite's own stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import report
from tests.faults.pipeline import Pipeline
from tests.faults.stack import faults_stack_configured
from tests.support.services import REPO_DIR, Services


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The suite stops and starts services: never against a stack it was not given (`make test-faults`).
    if faults_stack_configured():
        return
    skip = pytest.mark.skip(reason="the fault suite runs on a stack of its own: `make test-faults`")
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pipeline(services: Services) -> Iterator[Pipeline]:
    work_dir = REPO_DIR / ".stack" / "faults-run"
    running = Pipeline(services, Path(work_dir))
    running.start()
    try:
        yield running
    finally:
        codes = running.close()
        print(f"\nfault suite workers stopped: {codes}; logs in {running.workers.log_dir}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not report.ROWS:
        return
    report.write()
    terminalreporter.section("fault suite")
    terminalreporter.write(report.table())
    terminalreporter.write_line(f"(written to {report.REPORT})")
