"""Schemas registered by the modules named in the settings, and nothing else, are what the worker knows."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from tests.extraction_validator.samples import dumps, extraction, invoice
from tests.extraction_validator.schema_package.parcels import Parcel
from tests.extraction_validator.user_schemas import ShippingLabel
from workers.config import Settings, load_settings
from workers.contracts import Event, JsonLocation, ReviewTask, ValidExtraction
from workers.errors import ConfigError
from workers.extraction_validator import ExtractionSchema, ExtractionSchemas, UnknownSchema, extraction_schema
from workers.extraction_validator.examples import Invoice, Resume
from workers.extraction_validator.worker import extraction_validator
from workers.runtime.worker import Origin, Routed

EXAMPLES = "workers.extraction_validator.examples"
USER_MODULE = "tests.extraction_validator.user_schemas"
ORIGIN = Origin("hitl.extractions", 0, 0, None)
LABEL = {
    "tracking_number": "JD014600003SE",
    "carrier": "DHL",
    "weight_kg": 1.25,
    "recipient": {"name": "Ada Lovelace", "postal_code": "20457"},
}


def handle(settings: Settings, event: Event) -> list[Routed]:
    return list(extraction_validator(settings).handle(event, ORIGIN).outputs)


def test_the_default_settings_register_the_examples() -> None:
    schemas = ExtractionSchemas.from_modules(load_settings().extraction_validator.schema_modules)

    assert list(schemas) == [
        ExtractionSchema("invoice", "1", Invoice),
        ExtractionSchema("resume", "1", Resume),
    ]
    assert ("invoice", "1") in schemas and len(schemas) == 2


def test_a_users_module_named_in_the_settings_registers_its_schemas() -> None:
    settings = load_settings(extraction_validator={"schema_modules": [USER_MODULE]})
    valid = extraction("shipping_label", f"```json\n{json.dumps(LABEL)}\n```", schema_version="1.1")
    invalid = extraction("shipping_label", json.dumps(LABEL | {"carrier": "Pigeon"}))

    [valid_output] = handle(settings, valid)
    [invalid_output] = handle(settings, invalid)

    assert valid_output.topic == settings.topics.extractions_valid
    assert valid_output.key == str(valid.event_id)
    assert isinstance(valid_output.event, ValidExtraction)
    assert valid_output.event.extracted_from is JsonLocation.CODE_FENCE
    assert valid_output.event.validated_json == ShippingLabel.model_validate(LABEL).model_dump_json()
    assert invalid_output.topic == settings.topics.review_tasks
    assert isinstance(invalid_output.event, ReviewTask)
    assert [(i.path, i.message) for i in invalid_output.event.suggestion.validation_errors] == [
        ("carrier", "Input should be 'DHL', 'UPS' or 'FedEx'")
    ]


def test_only_the_configured_modules_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # The examples are imported in this process, but these settings do not name them.
    monkeypatch.setenv("HITL_EXTRACTION_VALIDATOR__SCHEMA_MODULES", json.dumps([USER_MODULE]))
    settings = load_settings()

    with pytest.raises(UnknownSchema) as unknown_name:
        handle(settings, extraction("invoice", dumps(invoice())))
    with pytest.raises(UnknownSchema) as unknown_version:
        handle(settings, extraction("shipping_label", json.dumps(LABEL), schema_version="2"))

    assert (
        str(unknown_name.value) == "no extraction schema 'invoice' is registered; registered: shipping_label"
    )
    assert (
        str(unknown_version.value)
        == "extraction schema 'shipping_label' has no version '2'; registered: 1, 1.1"
    )


def test_the_examples_and_a_users_module_together() -> None:
    schemas = ExtractionSchemas.from_modules([EXAMPLES, USER_MODULE])

    assert [(s.name, s.version) for s in schemas] == [
        ("invoice", "1"),
        ("resume", "1"),
        ("shipping_label", "1"),
        ("shipping_label", "1.1"),
    ]
    assert (
        schemas.model_for("shipping_label", "1")
        is schemas.model_for("shipping_label", "1.1")
        is ShippingLabel
    )


def test_a_package_counts_the_schemas_of_its_imported_submodules() -> None:
    schemas = ExtractionSchemas.from_modules(["tests.extraction_validator.schema_package"])

    assert list(schemas) == [ExtractionSchema("parcel", "1", Parcel)]


@pytest.mark.parametrize(
    ("modules", "complaint"),
    [
        (["tests.extraction_validator.no_such_module"], "cannot import schema module"),
        (["json"], "schema module 'json' registers no extraction schema"),
        (
            [EXAMPLES, "tests.extraction_validator.conflicting_schemas"],
            "extraction schema invoice 1 is registered twice",
        ),
    ],
)
def test_a_wrong_schema_module_is_a_config_error(modules: list[str], complaint: str) -> None:
    settings = load_settings(extraction_validator={"schema_modules": modules})

    with pytest.raises(ConfigError, match=complaint):
        extraction_validator(settings)


def test_the_decorator_refuses_what_it_cannot_register() -> None:
    with pytest.raises(ConfigError, match="needs a name and a version"):
        extraction_schema("", "1")
    with pytest.raises(TypeError, match="needs a Pydantic model"):
        extraction_schema("thing", "1")(dict)  # type: ignore[type-var]

    @extraction_schema("twice-in-one-module", "1")
    class First(BaseModel):
        a: int

    with pytest.raises(ConfigError, match="twice-in-one-module 1 is registered twice"):

        @extraction_schema("twice-in-one-module", "1")
        class Second(BaseModel):
            b: int
