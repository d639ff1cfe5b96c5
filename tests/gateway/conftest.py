"""The gateway on a free port in a thread, over this test's topics on the real broker; a small
HTTP client that gives back status, headers and the decoded JSON."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import TopicFactory
from workers.config import Settings, load_settings
from workers.gateway.server import GatewayServer


@dataclass(frozen=True)
class GatewayTopics:
    feedback: str
    predictions: str
    extractions: str


@pytest.fixture
def gateway_topics(make_topic: TopicFactory) -> GatewayTopics:
    return GatewayTopics(make_topic("feedback"), make_topic("predictions"), make_topic("extractions"))


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(kafka_bootstrap: str, gateway_topics: GatewayTopics) -> MakeSettings:
    def make(kafka: str | None = None, **gateway: Any) -> Settings:
        return load_settings(
            kafka_bootstrap=kafka or kafka_bootstrap,
            topics={
                "feedback": gateway_topics.feedback,
                "predictions": gateway_topics.predictions,
                "extractions": gateway_topics.extractions,
            },
            gateway={"port": 0, **gateway},
        )

    return make


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Client:
    port: int

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            kind = response.getheader("content-type") or ""
            parsed = json.loads(raw) if raw and kind.startswith("application/json") else raw
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)
        finally:
            connection.close()

    def post(self, path: str, document: Any, headers: dict[str, str] | None = None) -> Answer:
        return self.request(
            "POST",
            path,
            json.dumps(document).encode(),
            {"content-type": "application/json", **(headers or {})},
        )


@contextmanager
def running_gateway(settings: Settings) -> Iterator[Client]:
    server = GatewayServer(settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    try:
        yield Client(server.port)
    finally:
        server.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the gateway did not stop"
