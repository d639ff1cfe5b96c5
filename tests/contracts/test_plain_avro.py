"""`EventCodec.decode_plain` reads Avro written with the event's current schema into its plain
mirror, and leaves everything else to the reference path (`decode`): an older writer schema, which
needs resolution, and any value the model would refuse or read otherwise."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.avro_changes import AVRO, AvroDatum, avro_datum, written
from workers.contracts import (
    EVENT_TYPES,
    DecodeError,
    DecodeReason,
    Event,
    EventCodec,
    Feedback,
    Prediction,
    RetrievedContext,
    SchemaRegistry,
    schema_fingerprint,
    to_json,
)
from workers.contracts.avro import SINGLE_OBJECT_MARKER
from workers.contracts.plain import PlainFeedback, PlainPrediction

from .conftest import load_avsc, older_prediction_schema, schemas_with_history
from .strategies import records

REFERENCE = EventCodec(fast=False)
JSON = [("content-type", b"application/json")]


@settings(max_examples=25)
@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_an_event_s_datum_written_by_fastavro_is_the_reference_codec_s_avro(
    event_type: type[Event], data: st.DataObject
) -> None:
    """What the changed values of `avro_changes` are written from is the event itself."""
    event = data.draw(records(event_type))

    assert written(avro_datum(event)) == REFERENCE.encode(event)


def test_a_prediction_of_the_current_schema_is_read_into_the_plain_mirror_its_json_gives(
    codec: EventCodec, prediction: Prediction
) -> None:
    plain = codec.decode_plain(REFERENCE.encode(prediction), AVRO, PlainPrediction)

    assert plain is not None
    assert plain == codec.decode_plain(to_json(prediction), JSON, PlainPrediction)


# -- an older writer schema: resolution is the reference path's --------------------------------


def swapped_schema() -> dict[str, Any]:
    """The prediction schema with `trace_id` and `ground_truth` in each other's place: a body of it
    reads as one of the current schema, with the two swapped, unless the schema is resolved."""
    schema = copy.deepcopy(load_avsc("prediction"))
    names = [field["name"] for field in schema["fields"]]
    trace, truth = names.index("trace_id"), names.index("ground_truth")
    schema["fields"][trace], schema["fields"][truth] = schema["fields"][truth], schema["fields"][trace]
    return schema


def codec_with_history(tmp_path: Path, old_schema: dict[str, Any]) -> EventCodec:
    return EventCodec(SchemaRegistry.load(schemas_with_history(tmp_path, old_schema)))


def body_written_with(schema: dict[str, Any], prediction: Prediction) -> bytes:
    """The prediction's body in `schema`, which writes the fields it has and ignores the others."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), avro_datum(prediction).value)
    return body.getvalue()


def without_what_was_added(prediction: Prediction) -> Prediction:
    item = prediction.item.model_copy(update={"metadata": {}})
    return prediction.model_copy(update={"trace_id": None, "ground_truth": None, "item": item})


# Each older schema, and what the prediction becomes when resolved from it.
OLDER_SCHEMAS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[Prediction], Prediction]]] = {
    "fields in another order": (swapped_schema, lambda prediction: prediction),
    "fields added since": (older_prediction_schema, without_what_was_added),
}


@pytest.mark.parametrize("older", list(OLDER_SCHEMAS))
def test_avro_of_an_older_writer_schema_is_left_to_the_reference_path(
    tmp_path: Path, prediction: Prediction, older: str
) -> None:
    old_schema, resolved = OLDER_SCHEMAS[older]
    schema = old_schema()
    codec = codec_with_history(tmp_path, schema)
    prediction = prediction.model_copy(update={"trace_id": "trace-1", "ground_truth": "toxic"})
    value = SINGLE_OBJECT_MARKER + schema_fingerprint(schema) + body_written_with(schema, prediction)

    assert codec.decode_plain(value, AVRO, PlainPrediction) is None
    assert codec.decode(value, AVRO, Prediction) == resolved(prediction)


def test_only_the_header_keeps_a_body_of_the_older_schema_from_the_fast_path(
    tmp_path: Path, prediction: Prediction
) -> None:
    """Read as the current schema, the swapped schema's body is a valid prediction, a wrong one."""
    schema = swapped_schema()
    codec = codec_with_history(tmp_path, schema)
    prediction = prediction.model_copy(update={"trace_id": "trace-1", "ground_truth": "toxic"})
    body = body_written_with(schema, prediction)
    current_header = codec.registry.current(Prediction).header

    misread = codec.decode_plain(current_header + body, AVRO, PlainPrediction)

    assert misread is not None
    assert (misread.trace_id, misread.ground_truth) == ("toxic", "trace-1")


# -- values of the current schema that only the reference path decides -------------------------


def _changed(event: Event, change: Callable[[AvroDatum], None]) -> bytes:
    datum = avro_datum(event)
    change(datum)
    return written(datum)


def _uuid_in(form: Callable[[str], str]) -> Callable[[AvroDatum], None]:
    return lambda datum: datum.set(("event_id",), form(str(datum.get(("event_id",)))))


UUID_FORMS: dict[str, Callable[[str], str]] = {
    "upper case": str.upper,
    "no hyphens": lambda text: text.replace("-", ""),
    "braces": lambda text: "{" + text + "}",
    "urn": lambda text: "urn:uuid:" + text,
}


@pytest.mark.parametrize("form", list(UUID_FORMS))
def test_a_uuid_in_another_form_than_its_canonical_text_is_left_to_the_reference_path(
    codec: EventCodec, prediction: Prediction, form: str
) -> None:
    value = _changed(prediction, _uuid_in(UUID_FORMS[form]))

    assert codec.decode_plain(value, AVRO, PlainPrediction) is None
    assert codec.decode(value, AVRO, Prediction) == prediction


NOT_FINITE = {"NaN": math.nan, "infinity": math.inf, "minus infinity": -math.inf}


@pytest.mark.parametrize("score", list(NOT_FINITE))
def test_a_context_score_that_is_not_finite_is_left_to_the_reference_path(
    codec: EventCodec, feedback: Feedback, score: str
) -> None:
    event = feedback.model_copy(update={"contexts": (RetrievedContext(doc_id="kb-1", text="t", score=0.5),)})
    value = _changed(event, lambda datum: datum.set(("contexts", 0, "score"), NOT_FINITE[score]))

    assert codec.decode_plain(value, AVRO, PlainFeedback) is None
    with pytest.raises(DecodeError) as caught:
        codec.decode(value, AVRO, Feedback)
    assert caught.value.reason == DecodeReason.INVALID_VALUE


@pytest.mark.parametrize("score", list(NOT_FINITE))
def test_a_prediction_score_that_is_not_finite_is_left_to_the_reference_path(
    codec: EventCodec, prediction: Prediction, score: str
) -> None:
    value = _changed(prediction, lambda datum: datum.set(("scores", "toxic"), NOT_FINITE[score]))

    _refused_by_both_paths(codec, value, DecodeReason.INVALID_VALUE)


def test_bytes_after_the_record_are_left_to_the_reference_path(
    codec: EventCodec, prediction: Prediction
) -> None:
    value = REFERENCE.encode(prediction) + b"\x00"

    _refused_by_both_paths(codec, value, DecodeReason.INVALID_AVRO)


def test_another_event_type_s_avro_is_left_to_the_reference_path(
    codec: EventCodec, feedback: Feedback
) -> None:
    value = REFERENCE.encode(feedback)

    assert codec.decode_plain(value, AVRO, PlainPrediction) is None
    assert codec.decode_plain(value, AVRO, PlainFeedback) is not None


def _refused_by_both_paths(codec: EventCodec, value: bytes, reason: DecodeReason) -> None:
    """The fast path leaves the value to the reference path, which dead-letters it for `reason`."""
    assert codec.decode_plain(value, AVRO, PlainPrediction) is None
    with pytest.raises(DecodeError) as caught:
        codec.decode(value, AVRO, Prediction)
    assert caught.value.reason == reason
