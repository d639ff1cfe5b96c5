"""Where the tests find the real services: the HITL_* settings, else containers, else a clear stop.

The settings are the ones `deploy/local/stack env` prints. When none is set and a Docker engine
answers, the services are started with testcontainers from the same images as docker-compose.yml.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]

NO_SERVICES_MESSAGE = """\
No services to test against. Either
  - start the local stack and point the tests at it:
        deploy/local/stack up && eval "$(deploy/local/stack env)"
    (or simply run `make test`, which does both), or
  - set HITL_KAFKA_BOOTSTRAP, HITL_POSTGRES_DSN, HITL_ARGILLA_API_URL and HITL_ARGILLA_API_KEY, or
  - make a Docker engine reachable, and the tests start the services with testcontainers."""


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    postgres_dsn: str
    argilla_api_url: str
    argilla_api_key: str


def services_from_environment() -> Services | None:
    names = ("HITL_KAFKA_BOOTSTRAP", "HITL_POSTGRES_DSN", "HITL_ARGILLA_API_URL", "HITL_ARGILLA_API_KEY")
    values = [os.environ.get(name) for name in names]
    if not any(values):
        return None
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise RuntimeError(f"incomplete service settings: {', '.join(missing)} not set")
    return Services(*values)  # type: ignore[arg-type]


def docker_engine_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def services_in_containers() -> Iterator[Services]:
    """Kafka and PostgreSQL from testcontainers' modules; the Argilla services from the compose file."""
    from testcontainers.compose import DockerCompose
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    api_key = "argilla.apikey"
    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer("postgres:15", username="hitl", password="hitl", dbname="hitl") as postgres,
        DockerCompose(
            REPO_DIR, services=["opensearch", "redis", "argilla", "argilla-worker"], wait=True
        ) as compose,
    ):
        argilla_host = compose.get_service_host("argilla", 6900)
        argilla_port = compose.get_service_port("argilla", 6900)
        yield Services(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            postgres_dsn=postgres.get_connection_url(driver=None),
            argilla_api_url=f"http://{argilla_host}:{argilla_port}",
            argilla_api_key=api_key,
        )
