"""The Avro schemas and the Pydantic models describe the same records, field for field."""

import types
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import annotated_types
import pytest
from fastavro.schema import expand_schema, to_parsing_canonical_form
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from workers.contracts import EVENT_TYPES, Event, Extraction, Feedback, Prediction, Record
from workers.contracts.base import INT32_MAX

from .conftest import SCHEMAS_DIR, load_avsc

SCHEMA_FILE_BY_EVENT = {
    "Prediction": "prediction",
    "Feedback": "feedback",
    "Extraction": "extraction",
    "ReviewTask": "review_task",
    "ReviewResolution": "review_resolution",
    "Decision": "decision",
    "TrainingExample": "training_example",
    "ValidExtraction": "valid_extraction",
}
LOGICAL_TYPES = {UUID: ("string", "uuid"), datetime: ("long", "timestamp-micros")}
PRIMITIVES = {str: "string", float: "double", bool: "boolean"}


def expanded(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = expand_schema(load_avsc(name))
    return schema


def strip_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata.extend(extra)
    flat = [m for item in metadata for m in (item.metadata if isinstance(item, FieldInfo) else [item])]
    return annotation, flat


def union_members(annotation: Any) -> list[Any]:
    annotation, _ = strip_annotated(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [member for arg in get_args(annotation) for member in union_members(arg)]
    return [annotation]


def assert_record_agrees(model: type[Record], schema: dict[str, Any], path: str) -> None:
    assert schema["type"] == "record", path
    assert schema["name"] == model.AVRO_NAME, f"{path}: record name"
    assert schema.get("doc"), f"{path}: the record has no doc"
    avro_fields = [field["name"] for field in schema["fields"]]
    python_fields = list(model.model_fields)
    assert avro_fields == python_fields, (
        f"{path}: only in Avro {sorted(set(avro_fields) - set(python_fields))}, "
        f"only in {model.__name__} {sorted(set(python_fields) - set(avro_fields))} (or order differs)"
    )
    for avro_field in schema["fields"]:
        name = avro_field["name"]
        field_path = f"{path}.{name}"
        assert avro_field.get("doc"), f"{field_path}: no doc"
        python_field = model.model_fields[name]
        assert_default_agrees(python_field, avro_field, field_path)
        assert_type_agrees(python_field.annotation, python_field.metadata, avro_field["type"], field_path)


def assert_default_agrees(python_field: FieldInfo, avro_field: dict[str, Any], path: str) -> None:
    python_default = python_field.get_default(call_default_factory=True)
    if python_default is PydanticUndefined:
        assert "default" not in avro_field, f"{path}: default in Avro only"
        return
    assert "default" in avro_field, f"{path}: default in Python only"
    normalised = list(python_default) if isinstance(python_default, tuple) else python_default
    assert avro_field["default"] == normalised, f"{path}: defaults differ"


def assert_type_agrees(annotation: Any, metadata: list[Any], avro_type: Any, path: str) -> None:  # noqa: C901
    members = union_members(annotation)
    if len(members) > 1:
        assert isinstance(avro_type, list), f"{path}: a union in Python, {avro_type!r} in Avro"
        python_optional = type(None) in members
        assert python_optional == ("null" in avro_type), f"{path}: optional in only one of them"
        if python_optional:
            assert avro_type[0] == "null", f"{path}: null must come first in the Avro union"
        records = [m for m in members if m is not type(None)]
        branches = [b for b in avro_type if b != "null"]
        assert len(records) == len(branches), f"{path}: union members differ"
        if len(records) == 1:
            assert_type_agrees(records[0], metadata, branches[0], path)
            return
        by_name = {branch["name"]: branch for branch in branches}
        assert sorted(by_name) == sorted(r.AVRO_NAME for r in records), f"{path}: union members differ"
        for record in records:
            assert_record_agrees(record, by_name[record.AVRO_NAME], f"{path}<{record.__name__}>")
        return
    assert not isinstance(avro_type, list), f"{path}: a union in Avro only"
    annotation, extra = strip_annotated(members[0])
    metadata = [*metadata, *extra]
    origin = get_origin(annotation)
    if annotation is AwareDatetime:
        annotation = datetime
    if isinstance(annotation, type) and issubclass(annotation, Record):
        assert_record_agrees(annotation, avro_type, path)
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        assert avro_type["type"] == "enum", path
        assert avro_type["name"].rsplit(".", 1)[-1] == annotation.__name__, f"{path}: enum name"
        assert avro_type["symbols"] == [member.value for member in annotation], f"{path}: enum symbols"
        assert avro_type.get("doc"), f"{path}: the enum has no doc"
    elif origin is dict:
        assert get_args(annotation)[0] is str
        assert avro_type["type"] == "map", path
        assert_type_agrees(get_args(annotation)[1], [], avro_type["values"], f"{path}{{}}")
    elif origin is tuple:
        assert avro_type["type"] == "array", path
        assert_type_agrees(get_args(annotation)[0], [], avro_type["items"], f"{path}[]")
    elif annotation in LOGICAL_TYPES:
        base, logical = LOGICAL_TYPES[annotation]
        assert avro_type == {"type": base, "logicalType": logical}, path
    elif annotation is int:
        upper = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
        assert upper is not None, f"{path}: an int without an upper bound cannot be Avro int or long"
        assert avro_type == ("int" if upper <= INT32_MAX else "long"), path
    else:
        assert avro_type == PRIMITIVES[annotation], f"{path}: {annotation!r} in Python, {avro_type!r} in Avro"


def test_every_event_type_has_a_schema_file_and_nothing_else_is_there() -> None:
    assert sorted(SCHEMA_FILE_BY_EVENT) == sorted(t.__name__ for t in EVENT_TYPES)
    assert sorted(p.stem for p in SCHEMAS_DIR.glob("*.avsc")) == sorted(SCHEMA_FILE_BY_EVENT.values())


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
def test_model_and_schema_agree(event_type: type[Event]) -> None:
    assert load_avsc(SCHEMA_FILE_BY_EVENT[event_type.__name__])["namespace"] == "io.hitl.events"
    assert_record_agrees(event_type, expanded(SCHEMA_FILE_BY_EVENT[event_type.__name__]), event_type.__name__)


@pytest.mark.parametrize("container", ["review_task", "review_resolution", "decision", "valid_extraction"])
def test_source_events_embedded_in_other_schemas_equal_their_own_files(container: str) -> None:
    embedded = next(field["type"] for field in expanded(container)["fields"] if field["name"] == "source")
    branches = embedded if isinstance(embedded, list) else [embedded]
    own_files = {t.AVRO_NAME: SCHEMA_FILE_BY_EVENT[t.__name__] for t in (Prediction, Feedback, Extraction)}

    for branch in branches:
        own = load_avsc(own_files[branch["name"]])
        assert to_parsing_canonical_form(branch) == to_parsing_canonical_form(own), branch["name"]


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in schema["fields"] if f["name"] == name)
    return found


def drop_comment(schema: dict[str, Any]) -> None:
    schema["fields"].remove(field_of(schema, "comment"))


def make_comment_required(schema: dict[str, Any]) -> None:
    field_of(schema, "comment").update(type="string", default=None)


def put_null_last(schema: dict[str, Any]) -> None:
    field_of(schema, "comment")["type"] = ["string", "null"]


def use_float_for_context_scores(schema: dict[str, Any]) -> None:
    field_of(field_of(schema, "contexts")["type"]["items"], "score")["type"] = "float"


def add_a_rating(schema: dict[str, Any]) -> None:
    field_of(schema, "rating")["type"]["symbols"].append("meh")


def drop_a_doc(schema: dict[str, Any]) -> None:
    del field_of(field_of(schema, "model")["type"], "version")["doc"]


def drop_a_default(schema: dict[str, Any]) -> None:
    del field_of(schema, "contexts")["default"]


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (drop_comment, r"only in Feedback \['comment'\]"),
        (make_comment_required, r"Feedback\.comment"),
        (put_null_last, r"Feedback\.comment: null must come first"),
        (use_float_for_context_scores, r"Feedback\.contexts\[\]\.score"),
        (add_a_rating, r"Feedback\.rating: enum symbols"),
        (drop_a_doc, r"Feedback\.model\.version: no doc"),
        (drop_a_default, r"Feedback\.contexts: default in Python only"),
    ],
)
def test_the_agreement_check_catches_each_kind_of_difference(
    mutate: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    schema = expanded("feedback")
    mutate(schema)

    with pytest.raises(AssertionError, match=complaint):
        assert_record_agrees(Feedback, schema, "Feedback")
