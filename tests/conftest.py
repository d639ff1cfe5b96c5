"""Session fixtures for the real services, and per-test isolation: topics, schemas, workspaces."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import argilla as rg
import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from hypothesis import settings
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.services import (
    NO_SERVICES_MESSAGE,
    Services,
    docker_engine_reachable,
    services_from_environment,
    services_in_containers,
)
from tests.support.tcp_proxy import TcpProxy
from workers.runtime.topics import wait_until_listed

# Property tests check what the code does, not how fast: on a machine shared with the services
# (and, under `make test`, with a second suite) an example may take longer than hypothesis' 200 ms.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    configured = services_from_environment()
    if configured is not None:
        yield configured
    elif docker_engine_reachable():
        with services_in_containers() as started:
            yield started
    else:
        pytest.exit(NO_SERVICES_MESSAGE, returncode=2)


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture(scope="session")
def postgres_dsn(services: Services) -> str:
    return services.postgres_dsn


@pytest.fixture(scope="session")
def argilla_client(services: Services) -> rg.Argilla:
    return rg.Argilla(api_url=services.argilla_api_url, api_key=services.argilla_api_key, timeout=30)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


TopicFactory = Callable[..., str]


@pytest.fixture
def make_topic(kafka_admin: AdminClient) -> Iterator[TopicFactory]:
    """Creates topics with unique names for this test alone, and deletes them afterwards."""
    created: list[str] = []

    def make(
        prefix: str = "test",
        partitions: int = 3,
        name: str | None = None,
        config: dict[str, str] | None = None,
    ) -> str:
        name = name or unique_name(prefix)
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        futures = kafka_admin.create_topics([topic])
        futures[name].result(timeout=30)
        created.append(name)
        # A worker started right after the creation checks its topics in the broker's metadata.
        if wait_until_listed(kafka_admin, {name: partitions}):
            raise TimeoutError(f"topic {name} not listed with {partitions} partitions")
        return name

    yield make
    if created:
        for future in kafka_admin.delete_topics(created).values():
            future.result(timeout=30)


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A database schema of this test's own, dropped afterwards."""
    schema = unique_name("test").replace("-", "_")
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_connection(postgres_dsn: str, pg_schema: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_dsn, autocommit=True, options=f"-c search_path={pg_schema}") as connection:
        yield connection


@pytest.fixture
def argilla_workspace(argilla_client: rg.Argilla) -> Iterator[rg.Workspace]:
    """An Argilla workspace of this test's own; its datasets and the workspace are deleted afterwards."""
    workspace = rg.Workspace(name=unique_name("test"), client=argilla_client).create()
    try:
        yield workspace
    finally:
        for dataset in workspace.datasets:
            dataset.delete()
        for user in workspace.users:
            workspace.remove_user(user)
        workspace.delete()


@dataclass(frozen=True)
class ProxiedPostgres:
    """The real PostgreSQL behind a proxy the test can cut; `application_name` marks its sessions."""

    proxy: TcpProxy
    dsn: str
    application_name: str


@pytest.fixture
def proxied_postgres(postgres_dsn: str) -> Iterator[ProxiedPostgres]:
    params = conninfo_to_dict(postgres_dsn)
    proxy = TcpProxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    application_name = unique_name("proxied")
    try:
        dsn = make_conninfo(
            postgres_dsn, host="127.0.0.1", port=proxy.port, application_name=application_name
        )
        yield ProxiedPostgres(proxy, dsn, application_name)
    finally:
        proxy.close()
