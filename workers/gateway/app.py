"""The gateway's routes: POST /v1/feedback, /v1/predictions, /v1/extractions; /healthz, /metrics,
/docs; the widget (/widget.js) and its demo page (/demo).

A POST answers 202 with the events' ids once the broker acknowledged all of them; 401 without a
valid bearer token (when tokens are set); 413, 415 or 422 for a body it cannot take; 503 with
Retry-After when Kafka did not acknowledge in time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from workers import __version__
from workers.config import Settings
from workers.contracts import Extraction, Feedback, Prediction
from workers.gateway.auth import BearerTokens
from workers.gateway.intake import (
    InputEventType,
    RequestRejected,
    is_json_media_type,
    parse_events,
    read_limited,
)
from workers.gateway.metrics import GatewayMetrics
from workers.gateway.publishing import KafkaUnavailable, Publisher
from workers.gateway.static import demo_page, widget_script
from workers.logs import log

logger = logging.getLogger("hitl.gateway")


def create_app(settings: Settings, publisher: Publisher) -> FastAPI:
    gateway = settings.gateway
    tokens = BearerTokens.from_settings(gateway)
    metrics = GatewayMetrics()
    app = FastAPI(
        title="hitl-workers gateway",
        version=__version__,
        description="Events onto the pipeline's input topics over HTTP.",
    )
    routes: dict[str, tuple[InputEventType, str]] = {
        "/v1/feedback": (Feedback, settings.topics.feedback),
        "/v1/predictions": (Prediction, settings.topics.predictions),
        "/v1/extractions": (Extraction, settings.topics.extractions),
    }
    for path, (event_type, topic) in routes.items():
        _add_event_route(app, path, event_type, topic, publisher, tokens, settings)
    _add_service_routes(app, metrics)
    bodies = {path: event_type for path, (event_type, _) in routes.items()}
    app.openapi = lambda: _openapi(app, bodies)  # type: ignore[method-assign]
    _count_requests(app, metrics)
    if gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(gateway.cors_origins),
            allow_methods=["POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )
    app.state.metrics = metrics
    return app


def _add_event_route(
    app: FastAPI,
    path: str,
    event_type: InputEventType,
    topic: str,
    publisher: Publisher,
    tokens: BearerTokens,
    settings: Settings,
) -> None:
    gateway = settings.gateway

    async def take(request: Request) -> Response:
        if not tokens.allows(request.headers.get("authorization")):
            return _error(401, "a valid bearer token is needed", headers={"WWW-Authenticate": "Bearer"})
        try:
            if not is_json_media_type(request.headers.get("content-type")):
                raise RequestRejected(415, "the body must be JSON (Content-Type: application/json)")
            body = await read_limited(request.headers, request.stream(), gateway.max_body_bytes)
            intake = parse_events(body, event_type)
            await publisher.publish(topic, intake.events)
        except RequestRejected as rejected:
            return _error(rejected.status, str(rejected), detail=rejected.detail)
        except KafkaUnavailable as error:
            log(logger, "kafka_unavailable", logging.WARNING, route=path, error=str(error))
            retry_after = str(gateway.retry_after_seconds)
            return _error(503, "Kafka is unavailable; try again later", headers={"Retry-After": retry_after})
        request.app.state.metrics.events.labels(topic).inc(len(intake.events))
        accepted = [
            {"event_id": str(event.event_id), "occurred_at": event.occurred_at.isoformat()}
            for event in intake.events
        ]
        return JSONResponse({"accepted": len(accepted), "events": accepted}, status_code=202)

    app.add_api_route(
        path,
        take,
        methods=["POST"],
        status_code=202,
        summary=f"Post one {event_type.__name__} or an array of them",
        responses={
            202: {"description": "every event acknowledged by the broker; their ids"},
            401: {"description": "a bearer token is required"},
            413: {"description": "the body is above the size limit"},
            415: {"description": "the body is not JSON"},
            422: {"description": "invalid events: every failing field with its path"},
            503: {"description": "Kafka did not acknowledge in time; see Retry-After"},
        },
        name=event_type.__name__.lower(),
    )


def _add_service_routes(app: FastAPI, metrics: GatewayMetrics) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> Response:
        return Response(widget_script(), media_type="text/javascript; charset=utf-8")

    @app.get("/demo", include_in_schema=False)
    async def demo() -> Response:
        return Response(demo_page(), media_type="text/html; charset=utf-8")


def _count_requests(app: FastAPI, metrics: GatewayMetrics) -> None:
    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        known = {getattr(route, "path", "") for route in app.router.routes}
        # Unknown paths share one label, so that a scanner cannot blow up the metric's cardinality.
        route = request.url.path if request.url.path in known else "other"
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
        return response


def _error(
    status: int,
    message: str,
    *,
    detail: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _openapi(app: FastAPI, bodies: dict[str, InputEventType]) -> dict[str, Any]:
    """The generated schema, plus each route's request body: one event or an array of them."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, event_type in bodies.items():
        event_schema = event_type.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(event_schema.pop("$defs", {}))
        # The gateway fills these in when they are absent.
        event_schema["required"] = [
            name for name in event_schema.get("required", []) if name not in ("event_id", "occurred_at")
        ]
        components[event_type.__name__] = event_schema
        reference = {"$ref": f"#/components/schemas/{event_type.__name__}"}
        schema["paths"][path]["post"]["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [reference, {"type": "array", "items": reference}]}}
            },
        }
    app.openapi_schema = schema
    return schema
