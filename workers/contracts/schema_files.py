"""The event schemas as installed with the package, for the codec and for any consumer.

The `.avsc` files live in the package (`workers/contracts/schemas/`, which the repository's
top-level `schemas/` links to), so an installed wheel reads them with `importlib.resources` and a
trainer never copies files out of a checkout:

    from workers.contracts import schema_text, avro_schema
    avro_schema("training_example")            # the parsed JSON, ready for fastavro.parse_schema
    schema_text("io.hitl.events.Decision")     # the file's text, by file name or full record name
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from workers.contracts.errors import SchemaRegistryError

SCHEMA_SUFFIX = ".avsc"


def packaged_schemas_dir() -> Path:
    """The folder of the installed schema files (current ones; earlier versions under `history/`)."""
    # A wheel installs as plain files, so the resource is a real folder on disk.
    return Path(str(resources.files("workers.contracts") / "schemas"))


def schema_names() -> tuple[str, ...]:
    """The file names (without `.avsc`) of the current schemas."""
    return tuple(sorted(path.stem for path in packaged_schemas_dir().glob("*" + SCHEMA_SUFFIX)))


def schema_text(name: str) -> str:
    """The current schema's text, by file name (`decision`, `decision.avsc`) or full record name
    (`io.hitl.events.Decision`)."""
    return _path_of(name).read_text(encoding="utf-8")


def avro_schema(name: str) -> dict[str, Any]:
    """The current schema as parsed JSON, by the same names as `schema_text`."""
    parsed: dict[str, Any] = json.loads(schema_text(name))
    return parsed


def _path_of(name: str) -> Path:
    stem = name.removesuffix(SCHEMA_SUFFIX)
    path = packaged_schemas_dir() / (stem + SCHEMA_SUFFIX)
    if path.is_file():
        return path
    by_record = _files_by_record_name()
    if name in by_record:
        return by_record[name]
    known = ", ".join(schema_names())
    raise SchemaRegistryError(f"no event schema named {name!r}; known: {known}")


@cache
def _files_by_record_name() -> dict[str, Path]:
    found = {}
    for path in packaged_schemas_dir().glob("*" + SCHEMA_SUFFIX):
        schema = json.loads(path.read_text(encoding="utf-8"))
        found[f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")] = path
    return found
