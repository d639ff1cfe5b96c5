"""Extraction schemas: the Pydantic model an LLM's output must satisfy, by schema name and version.

An extraction event names its schema (`schema_name`, `schema_version`); the worker validates the
output against the model registered under that pair. Register a model by decorating it, in a module
of your own:

    from pydantic import BaseModel
    from workers.extraction_validator import extraction_schema

    @extraction_schema("purchase_order", "2")
    class PurchaseOrder(BaseModel):
        order_number: str
        ...

and list the module in the settings, in place of or next to the shipped examples:

    HITL_EXTRACTION_VALIDATOR__SCHEMA_MODULES='["myapp.schemas", "workers.extraction_validator.examples"]'

or, in the TOML settings file, `schema_modules = ["myapp.schemas"]` under `[extraction_validator]`.

The worker imports each listed module when it starts and validates against exactly the schemas
those modules (and any of their submodules they import) register; models registered by other
modules of the process do not count. The same model may be stacked under several versions. To
register a model you do not own, subclass it: `class Order(ThirdPartyOrder): pass` under the
decorator. Every setting of the model (strict types, `extra="forbid"`, validators) applies as is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from workers.errors import ConfigError, RejectedEvent
from workers.reasons import Reason

ModelT = TypeVar("ModelT", bound=BaseModel)

SchemaKey = tuple[str, str]
"""A schema's name and version."""

UNKNOWN_SCHEMA = Reason.UNKNOWN_SCHEMA


@dataclass(frozen=True, slots=True)
class ExtractionSchema:
    name: str
    version: str
    model: type[BaseModel]

    @property
    def key(self) -> SchemaKey:
        return (self.name, self.version)

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.model.__module__}.{self.model.__qualname__})"


class UnknownSchema(RejectedEvent):
    """The event names a schema, or a version of it, that no configured module registers."""

    def __init__(self, message: str) -> None:
        super().__init__(UNKNOWN_SCHEMA, message)


# What each module registered on import, by the name of the module defining the model.
_registered: dict[str, dict[SchemaKey, ExtractionSchema]] = {}


def extraction_schema(name: str, version: str) -> Callable[[type[ModelT]], type[ModelT]]:
    """Registers the decorated Pydantic model as schema `name`, version `version`."""
    if not name.strip() or not version.strip():
        raise ConfigError(f"an extraction schema needs a name and a version, not {name!r} {version!r}")

    def register(model: type[ModelT]) -> type[ModelT]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(
                f"@extraction_schema({name!r}, {version!r}) needs a Pydantic model, not {model!r}"
            )
        in_module = _registered.setdefault(model.__module__, {})
        entry = ExtractionSchema(name, version, model)
        known = in_module.get(entry.key)
        # The same class registering again is a reload of its module; a different class is a mistake.
        if known is not None and known.model.__qualname__ != model.__qualname__:
            raise ConfigError(f"extraction schema {name} {version} is registered twice: {known} and {entry}")
        in_module[entry.key] = entry
        return model

    return register


class ExtractionSchemas:
    """The registered models by schema name and version; `model_for` is the worker's lookup."""

    def __init__(self, schemas: Iterable[ExtractionSchema]) -> None:
        self._by_key: dict[SchemaKey, ExtractionSchema] = {}
        for entry in schemas:
            known = self._by_key.get(entry.key)
            if known is not None and known.model is not entry.model:
                raise ConfigError(
                    f"extraction schema {entry.name} {entry.version} is registered twice: {known} and {entry}"
                )
            self._by_key[entry.key] = entry

    @classmethod
    def from_modules(cls, module_names: Iterable[str]) -> ExtractionSchemas:
        """Imports each module and collects the schemas it registered; raises ConfigError if one has none."""
        found: list[ExtractionSchema] = []
        for module_name in module_names:
            _import(module_name)
            registered = [
                entry
                for defining_module, entries in _registered.items()
                if defining_module == module_name or defining_module.startswith(module_name + ".")
                for entry in entries.values()
            ]
            if not registered:
                raise ConfigError(
                    f"schema module {module_name!r} registers no extraction schema "
                    "(decorate its models with @extraction_schema(name, version))"
                )
            found.extend(registered)
        return cls(found)

    def model_for(self, name: str, version: str) -> type[BaseModel]:
        """The model of schema `name` at `version`; raises UnknownSchema when it is not registered."""
        entry = self._by_key.get((name, version))
        if entry is not None:
            return entry.model
        versions = sorted(v for n, v in self._by_key if n == name)
        if versions:
            raise UnknownSchema(
                f"extraction schema {name!r} has no version {version!r}; registered: {', '.join(versions)}"
            )
        known = ", ".join(sorted({n for n, _ in self._by_key})) or "none"
        raise UnknownSchema(f"no extraction schema {name!r} is registered; registered: {known}")

    def __iter__(self) -> Iterator[ExtractionSchema]:
        """The schemas, by name and version."""
        return iter(self._by_key[key] for key in sorted(self._by_key))

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key


def _import(module_name: str) -> None:
    try:
        importlib.import_module(module_name)
    except ConfigError:
        raise
    # Any error at all can surface from a user's module on import; each one means the same to us.
    except Exception as error:
        raise ConfigError(f"cannot import schema module {module_name!r}: {error}") from error
