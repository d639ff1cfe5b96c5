"""docker-compose.yml offers the same services as the local stack, under the same names and profiles."""

from __future__ import annotations

import re

import yaml

from tests.support.services import REPO_DIR


def stack_script_list(name: str) -> set[str]:
    script = (REPO_DIR / "deploy/local/stack").read_text()
    listed = re.search(rf"{name}=\(([^)]*)\)", script)
    assert listed is not None, f"deploy/local/stack no longer sets {name}"
    return set(listed.group(1).split())


def local_stack_services() -> set[str]:
    # The Argilla service of the local stack starts both the server and its job worker.
    return stack_script_list("SERVICES_IN_START_ORDER") | {"argilla-worker"}


def test_compose_file_parses_and_names_every_local_service() -> None:
    compose = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
    assert set(compose["services"]) == local_stack_services() | stack_script_list("OPTIONAL_SERVICES")
    for name, service in compose["services"].items():
        assert service.get("image"), f"{name} has no image"


def test_optional_services_start_only_under_a_profile_of_their_name() -> None:
    compose = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        expected = [name] if name in stack_script_list("OPTIONAL_SERVICES") else None
        assert service.get("profiles") == expected, f"{name} has profiles {service.get('profiles')}"


def test_compose_file_uses_the_stack_settings_names() -> None:
    text = (REPO_DIR / "docker-compose.yml").read_text()
    for setting in (
        "HITL_KAFKA_PORT",
        "HITL_POSTGRES_PASSWORD",
        "HITL_ARGILLA_API_KEY",
        "HITL_SEARCH_PORT",
        "HITL_LABEL_STUDIO_PORT",
        "HITL_LABEL_STUDIO_TOKEN",
    ):
        assert setting in text
        assert setting in (REPO_DIR / "deploy/local/lib/common.sh").read_text()
