"""Worker names for `hitl-workers run`, each the import path of a factory `(Settings) -> WorkerSpec`.

`run` also takes an import path directly (`package.module:factory`), so users can run workers of
their own on the same runtime.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from workers.config import Settings
from workers.errors import ConfigError
from workers.runtime.worker import WorkerSpec

WorkerFactory = Callable[[Settings], WorkerSpec]

WORKERS: dict[str, str] = {
    "band-router": "workers.band_router.worker:band_router",
    "feedback-triage": "workers.feedback_triage.worker:feedback_triage",
    "extraction-validator": "workers.extraction_validator.worker:extraction_validator",
}


def load_worker(name_or_path: str, settings: Settings) -> WorkerSpec:
    path = WORKERS.get(name_or_path, name_or_path)
    module_name, _, attribute = path.partition(":")
    if not attribute:
        known = ", ".join(sorted(WORKERS)) or "none yet"
        raise ConfigError(f"unknown worker {name_or_path!r}: give a name ({known}) or module:factory")
    try:
        factory: WorkerFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot load worker {path!r}: {error}") from error
    return factory(settings)
