"""Older versions of a schema stay readable, into the current model, by Avro schema resolution."""

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from workers.contracts import (
    DecodeError,
    DecodeReason,
    EventCodec,
    Prediction,
    SchemaRegistry,
    SchemaRegistryError,
    schema_fingerprint,
    to_json,
)

from .conftest import SCHEMAS_DIR, older_prediction_schema, schemas_with_history


def written_with(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), datum)
    return b"\xc3\x01" + schema_fingerprint(schema) + body.getvalue()


def old_datum(prediction: Prediction) -> dict[str, Any]:
    document = json.loads(to_json(prediction))
    del document["trace_id"], document["ground_truth"], document["item"]["metadata"]
    return document | {"event_id": prediction.event_id, "occurred_at": prediction.occurred_at}


def test_a_message_written_with_an_older_schema_decodes_into_the_current_model(
    tmp_path: Path, prediction: Prediction
) -> None:
    old_schema = older_prediction_schema()
    codec = EventCodec(SchemaRegistry.load(schemas_with_history(tmp_path, old_schema)))

    decoded = codec.decode(written_with(old_schema, old_datum(prediction)), None, Prediction)

    assert decoded == prediction.model_copy(
        update={
            "trace_id": None,
            "ground_truth": None,
            "item": prediction.item.model_copy(update={"metadata": {}}),
        }
    )


def test_without_the_history_file_the_older_fingerprint_is_unknown(
    codec: EventCodec, prediction: Prediction
) -> None:
    value = written_with(older_prediction_schema(), old_datum(prediction))

    with pytest.raises(DecodeError) as caught:
        codec.decode(value, None, Prediction)
    assert caught.value.reason == DecodeReason.UNKNOWN_FINGERPRINT


def test_an_older_schema_that_cannot_be_resolved_is_a_schema_mismatch(
    tmp_path: Path, prediction: Prediction
) -> None:
    old_schema = older_prediction_schema()
    next(f for f in old_schema["fields"] if f["name"] == "task")["name"] = "task_name"
    codec = EventCodec(SchemaRegistry.load(schemas_with_history(tmp_path, old_schema)))
    datum = old_datum(prediction)
    datum["task_name"] = datum.pop("task")

    with pytest.raises(DecodeError) as caught:
        codec.decode(written_with(old_schema, datum), None, Prediction)
    assert caught.value.reason == DecodeReason.SCHEMA_MISMATCH


def test_a_missing_schema_file_is_reported_at_load(tmp_path: Path) -> None:
    for path in SCHEMAS_DIR.glob("*.avsc"):
        if path.name != "decision.avsc":
            shutil.copy(path, tmp_path / path.name)

    with pytest.raises(SchemaRegistryError, match=r"io\.hitl\.events\.Decision"):
        SchemaRegistry.load(tmp_path)


def test_a_schema_of_no_known_event_is_reported_at_load(tmp_path: Path) -> None:
    for path in SCHEMAS_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "stray.avsc").write_text(json.dumps({"type": "record", "name": "Stray", "fields": []}))

    with pytest.raises(SchemaRegistryError, match="Stray"):
        SchemaRegistry.load(tmp_path)
