"""The webhook receiver over real HTTP: a stranger's call gets a 4xx, never a 500, and reaches no handler."""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks import Webhook

from tests.argilla_bridge.conftest import wait_for
from tests.support.processes import free_port
from workers.errors import ConfigError
from workers.review.argilla.webhooks import WebhookApp
from workers.review.metrics import CollectorMetrics

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes!!!!").decode()
PATH = "/argilla/webhook"
BODY = json.dumps({"type": "record.completed", "data": {"id": "r-1"}})


@dataclass
class Receiver:
    url: str
    handled: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])


@contextmanager
def serving(max_body_bytes: int | None = None) -> Iterator[Receiver]:
    """The webhook app under uvicorn on a free port; `handled` holds what reached the handler."""
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}{PATH}")

    async def handle(payload: dict[str, Any]) -> int:
        receiver.handled.append(payload)
        return 200

    limit = {} if max_body_bytes is None else {"max_body_bytes": max_body_bytes}
    app = WebhookApp(SECRET, PATH, handle, CollectorMetrics(), **limit)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=15, interval=0.05)
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _signed(body: str | bytes, message_id: str | None = None) -> dict[str, str]:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    text = body if isinstance(body, str) else body.decode("utf-8", "surrogateescape")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(message_id, now, text),
        "content-type": "application/json",
    }


def _with(headers: dict[str, str], **changes: str) -> dict[str, str]:
    return {**headers, **{name.replace("_", "-"): value for name, value in changes.items()}}


def test_malformed_signatures_and_bodies_get_401_and_reach_no_handler() -> None:
    good = _signed(BODY)
    # A body that is not UTF-8, "signed" the only way a stranger could: over its bytes read as latin-1.
    not_utf8 = b'{"type": "record.completed", "data": "\xff\xfe"}'
    latin1_signed = {
        **_signed(BODY),
        "webhook-signature": Webhook(SECRET).sign("msg_x", datetime.now(UTC), not_utf8.decode("latin-1")),
        "webhook-id": "msg_x",
    }
    cases: list[tuple[str, dict[str, str], bytes]] = [
        ("no comma in the signature", _with(good, webhook_signature="v1"), BODY.encode()),
        ("too many commas", _with(good, webhook_signature="v1,a,b"), BODY.encode()),
        ("bad base64", _with(good, webhook_signature="v1,not base64 at all!!"), BODY.encode()),
        ("truncated base64", _with(good, webhook_signature="v1,QUJD="[:-2]), BODY.encode()),
        ("a second signature without comma", _with(good, webhook_signature="v1,AAAA v1"), BODY.encode()),
        ("timestamp not a number", _with(good, webhook_timestamp="soon"), BODY.encode()),
        ("timestamp far too large", _with(good, webhook_timestamp="1e300"), BODY.encode()),
        ("body not UTF-8", latin1_signed, not_utf8),
        ("body not UTF-8, real signature", _with(good), not_utf8),
    ]
    with serving() as receiver, httpx.Client(timeout=10) as http:
        for name, headers, content in cases:
            response = http.post(receiver.url, content=content, headers=headers)
            assert response.status_code == 401, (name, response.status_code, response.text)
        assert receiver.handled == []
        # The receiver still works for a genuine call.
        assert http.post(receiver.url, content=BODY, headers=_signed(BODY)).status_code == 200
        assert len(receiver.handled) == 1


def test_a_replayed_message_id_is_refused_within_the_tolerance_window() -> None:
    with serving() as receiver, httpx.Client(timeout=10) as http:
        headers = _signed(BODY)
        assert http.post(receiver.url, content=BODY, headers=headers).status_code == 200
        replay = http.post(receiver.url, content=BODY, headers=headers)
        assert replay.status_code == 401, replay.text
        # The same id re-signed with a fresh timestamp is still the same message.
        again = http.post(receiver.url, content=BODY, headers=_signed(BODY, headers["webhook-id"]))
        assert again.status_code == 401, again.text
        assert len(receiver.handled) == 1
        metrics = http.get(receiver.url.replace(PATH, "/metrics")).text
    assert 'hitl_argilla_webhook_calls_total{answer="replayed"} 2.0' in metrics


def test_a_declared_length_above_the_limit_is_refused_before_the_body_is_read() -> None:
    with serving() as receiver, socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.settimeout(10)
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**12}\r\n\r\n"
        )
        # Headers only: an answer now proves the receiver did not wait for a terabyte of body.
        sock.sendall(head.encode() + b"{")
        answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 413"), answer
        assert receiver.handled == []


def test_a_streamed_body_above_the_limit_is_refused_as_soon_as_it_exceeds_it() -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(1_000):  # 64 MB in all, four times the limit, with no Content-Length
            sent.append(64 * 1024)
            yield b" " * (64 * 1024)

    with serving() as receiver, httpx.Client(timeout=10) as http:
        try:
            response = http.post(receiver.url, content=chunks(), headers=_signed(BODY))
            assert response.status_code == 413, response.text
        except httpx.TransportError:
            pass  # the receiver answered and closed while the client was still sending: also refused
        assert sum(sent) < 48 * 1024 * 1024, "the receiver read the whole body before refusing it"
        assert receiver.handled == []
        assert http.post(receiver.url, content=BODY, headers=_signed(BODY)).status_code == 200


def test_an_unparseable_content_length_gets_400() -> None:
    with serving() as receiver, socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.settimeout(10)
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n".encode())
        answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 4"), answer
        assert receiver.handled == []


@pytest.mark.parametrize("secret", [None, "", "None", "whsec_", "whsec_***not base64***"])
def test_a_missing_or_unusable_secret_is_a_config_error_at_start(secret: str | None) -> None:
    async def handle(_payload: dict[str, Any]) -> int:
        return 200

    with pytest.raises(ConfigError, match="secret"):
        WebhookApp(secret, PATH, handle, CollectorMetrics())  # type: ignore[arg-type]
