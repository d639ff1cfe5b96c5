"""Worker names for `hitl-workers run`, each the import path of a factory `(Settings) -> WorkerSpec`.

`run` also takes an import path directly (`package.module:factory`), so users can run workers of
their own on the same runtime.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from workers.config import Settings
from workers.errors import ConfigError
from workers.runtime.worker import WorkerSpec

WorkerFactory = Callable[[Settings], WorkerSpec]

WORKERS: dict[str, str] = {
    "band-router": "workers.band_router.worker:band_router",
    "feedback-triage": "workers.feedback_triage.worker:feedback_triage",
    "extraction-validator": "workers.extraction_validator.worker:extraction_validator",
    "argilla-publisher": "workers.review.publisher:publisher",
    "review-publisher": "workers.review.publisher:publisher",
    "label-sink": "workers.label_sink.worker:label_sink",
    "label-sink-decisions": "workers.label_sink.worker:label_sink_decisions",
    "quality-decisions": "workers.quality.recorder:quality_decisions",
    "quality-tasks": "workers.quality.recorder:quality_tasks",
    "quality-reviews": "workers.quality.recorder:quality_reviews",
}

# Each worker's metrics port when HITL_METRICS_PORT is not set, so that workers of one host do not
# collide. The collector serves /metrics on its webhook port (HITL_ARGILLA_BRIDGE__COLLECTOR_PORT,
# 8410), the gateway on its HTTP port (HITL_GATEWAY__PORT, 8000). Workers of your own get 9400.
METRICS_PORTS: dict[str, int] = {
    "band-router": 9401,
    "feedback-triage": 9402,
    "extraction-validator": 9403,
    "argilla-publisher": 9404,
    "review-publisher": 9404,
    "label-sink": 9405,
    "label-sink-decisions": 9406,
    "quality-decisions": 9407,
    "quality-tasks": 9408,
    "quality-reviews": 9409,
    "quality-exporter": 9410,
}


def metrics_port(name_or_path: str, settings: Settings) -> int:
    """HITL_METRICS_PORT when it is set (in the environment or the config file), else the worker's own."""
    if "metrics_port" in settings.model_fields_set:
        return settings.metrics_port
    return METRICS_PORTS.get(name_or_path, settings.metrics_port)


ServiceMain = Callable[[Settings], None]

# Processes that are not Kafka consumers (an HTTP receiver, say): `main(settings)` runs until SIGTERM.
SERVICES: dict[str, str] = {
    "argilla-collector": "workers.review.collector:serve",
    "review-collector": "workers.review.collector:serve",
    "gateway": "workers.gateway.server:serve",
    "quality-exporter": "workers.quality.exporter:serve",
}


def load_worker(name_or_path: str, settings: Settings) -> WorkerSpec:
    factory: WorkerFactory = _load(WORKERS.get(name_or_path, name_or_path), name_or_path)
    return factory(settings)


def load_service(name: str) -> ServiceMain | None:
    """The service of that name, or None when the name is not a service's."""
    return _load(SERVICES[name], name) if name in SERVICES else None


def _load(path: str, name: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        known = ", ".join(sorted(WORKERS) + sorted(SERVICES))
        raise ConfigError(f"unknown worker {name!r}: give a name ({known}) or module:factory")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot load worker {path!r}: {error}") from error
