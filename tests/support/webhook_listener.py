"""A local HTTP endpoint that records the webhook calls it receives."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class WebhookCall:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class WebhookListener:
    def __init__(self, server: ThreadingHTTPServer, calls: queue.Queue[WebhookCall]) -> None:
        self._server = server
        self._calls = calls
        self.received: list[WebhookCall] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhook"

    def wait_for(self, matches: Callable[[WebhookCall], bool], timeout: float = 60) -> WebhookCall:
        """The first call received that matches, waiting up to `timeout` seconds for it."""
        for call in self.received:
            if matches(call):
                return call
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                call = self._calls.get(timeout=remaining)
            except queue.Empty:
                break
            self.received.append(call)
            if matches(call):
                return call
        raise TimeoutError(f"no matching webhook call within {timeout}s; received {len(self.received)}")


@contextmanager
def webhook_listener() -> Iterator[WebhookListener]:
    calls: queue.Queue[WebhookCall] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.put(WebhookCall(headers={k.lower(): v for k, v in self.headers.items()}, body=body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookListener(server, calls)
    finally:
        server.shutdown()
        server.server_close()
