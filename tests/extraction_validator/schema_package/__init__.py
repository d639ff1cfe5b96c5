"""A package of schemas: naming it in the settings counts what its submodules register on import."""

from tests.extraction_validator.schema_package import parcels

__all__ = ["parcels"]
