"""A proxy in front of Argilla answering an HTML page, whatever its status, is Argilla unavailable.

The adapter is pointed at a local HTTP server that answers every request with an HTML error page:
each call raises DependencyUnavailable (the runtime pauses and retries), never a parse error that
would crash the worker, nor ArgillaRejected that would dead-letter the data.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.argilla_bridge.conftest import MakeSettings
from tests.argilla_bridge.tasks import moderation_task
from workers.errors import DependencyUnavailable
from workers.review.argilla.backend import ArgillaBackend
from workers.review.argilla.client import ArgillaAdapter, DatasetRef
from workers.review.argilla.layout import dataset_spec_for
from workers.review.publisher import PublishingSink
from workers.runtime.worker import Origin, Processed

PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


@contextmanager
def proxy_page(status: int, body: bytes = PAGE, content_type: str = "text/html") -> Iterator[str]:
    """A local server answering every request with `status` and `body`; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


DATASET = DatasetRef(uuid.uuid4(), "hitl-moderation-x", {"label": uuid.uuid4()})
RECORD = {"external_id": "t-1", "fields": {"text": "hi"}, "metadata": {}, "suggestions": []}

CALLS: dict[str, Callable[[ArgillaAdapter], Any]] = {
    "connect and get the workspace": lambda a: a.ensure_workspace("hitl"),
    "list datasets": lambda a: a.list_datasets(uuid.uuid4()),
    "get a dataset": lambda a: a.dataset(uuid.uuid4()),
    "get a record": lambda a: a.record(uuid.uuid4()),
    "search records": lambda a: a.search_records(uuid.uuid4(), []),
    "look records up by external id": lambda a: a.records_by_external_id(DATASET, ["t-1"]),
    "upsert records": lambda a: a.upsert_records(DATASET, [RECORD]),
    "update a record": lambda a: a.update_record(uuid.uuid4(), metadata={"review_state": "emitted"}),
    "update a response": lambda a: a.update_response(uuid.uuid4(), {}, "draft"),
    "list webhooks": lambda a: a.webhooks(),
    "create a webhook": lambda a: a.create_webhook("http://x/y", ["record.completed"], "d"),
}


@pytest.mark.parametrize("status", [200, 404, 502])
@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_an_html_page_from_a_proxy_is_dependency_unavailable(
    make_settings: MakeSettings, status: int, call: str
) -> None:
    with proxy_page(status) as url:
        adapter = ArgillaAdapter(make_settings(argilla_api_url=url), timeout=5)
        try:
            with pytest.raises(DependencyUnavailable):
                CALLS[call](adapter)
        finally:
            adapter.close()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"", "text/plain"), (b'"just a string"', "application/json"), (b'{"no": "items"}', "application/json")],
)
def test_json_of_another_shape_is_dependency_unavailable(
    make_settings: MakeSettings, body: bytes, content_type: str
) -> None:
    with proxy_page(200, body, content_type) as url:
        adapter = ArgillaAdapter(make_settings(argilla_api_url=url), timeout=5)
        try:
            for call in ("list datasets", "search records", "list webhooks", "get a record"):
                with pytest.raises(DependencyUnavailable):
                    CALLS[call](adapter)
        finally:
            adapter.close()


@pytest.mark.parametrize("status", [200, 404, 502])
def test_the_publishers_sink_waits_for_argilla_behind_a_proxy_page(
    make_settings: MakeSettings, status: int
) -> None:
    settings = make_settings()
    task = moderation_task(1)
    dataset_spec_for(task, settings.argilla_bridge)
    with proxy_page(status) as url:
        sink = PublishingSink(
            ArgillaBackend(settings, ArgillaAdapter(make_settings(argilla_api_url=url), timeout=5))
        )
        try:
            with pytest.raises(DependencyUnavailable):
                sink.write([Processed(task, Origin("tasks", 0, 0, datetime.now(UTC)))])
        finally:
            sink.close()
