"""docker-compose.yml offers the same services as the local stack, under the same names."""

from __future__ import annotations

import re

import yaml

from tests.support.services import REPO_DIR


def local_stack_services() -> set[str]:
    script = (REPO_DIR / "deploy/local/stack").read_text()
    order = re.search(r"SERVICES_IN_START_ORDER=\(([^)]*)\)", script)
    assert order is not None, "deploy/local/stack no longer lists its services"
    services = set(order.group(1).split())
    # The Argilla service of the local stack starts both the server and its job worker.
    return services | {"argilla-worker"}


def test_compose_file_parses_and_names_every_local_service() -> None:
    compose = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
    assert set(compose["services"]) == local_stack_services()
    for name, service in compose["services"].items():
        assert service.get("image"), f"{name} has no image"


def test_compose_file_uses_the_stack_settings_names() -> None:
    text = (REPO_DIR / "docker-compose.yml").read_text()
    for setting in ("HITL_KAFKA_PORT", "HITL_POSTGRES_PASSWORD", "HITL_ARGILLA_API_KEY", "HITL_SEARCH_PORT"):
        assert setting in text
        assert setting in (REPO_DIR / "deploy/local/lib/common.sh").read_text()
