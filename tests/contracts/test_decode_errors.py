"""Every way a value can fail to decode ends in a DecodeError with a stable reason."""

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.contracts import (
    DEFAULT_MAX_VALUE_BYTES,
    EVENT_TYPES,
    DecodeError,
    DecodeReason,
    Event,
    EventCodec,
    Feedback,
    Prediction,
    to_json,
)
from workers.errors import RejectedEvent
from workers.reasons import DECODING

from .strategies import records

JSON_HEADERS = [("content-type", b"application/json")]


def decode_error(
    codec: EventCodec, value: bytes | None, expected: Any = Prediction, headers: Any = None
) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        codec.decode(value, headers, expected)
    return caught.value


def reason_of(codec: EventCodec, value: bytes | None, expected: Any = Prediction, headers: Any = None) -> str:
    return decode_error(codec, value, expected, headers).reason


@pytest.mark.parametrize("value", [b"", None])
def test_empty_value(codec: EventCodec, value: bytes | None) -> None:
    assert reason_of(codec, value) == DecodeReason.EMPTY_VALUE


def test_a_value_over_the_limit_is_rejected_before_it_is_parsed(
    codec: EventCodec, prediction: Prediction
) -> None:
    text = to_json(prediction)
    just_fits = text + b" " * (DEFAULT_MAX_VALUE_BYTES - len(text))

    assert codec.decode(just_fits, None, Prediction) == prediction
    assert reason_of(codec, just_fits + b" ") == DecodeReason.TOO_LARGE


def test_the_size_limit_is_configurable(codec: EventCodec, prediction: Prediction) -> None:
    small = EventCodec(codec.registry, max_value_bytes=16)

    assert reason_of(small, codec.encode(prediction)) == DecodeReason.TOO_LARGE


@given(value=st.binary(min_size=1))
def test_bytes_that_are_neither_json_nor_avro(codec: EventCodec, value: bytes) -> None:
    opening = value.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if value.startswith(b"\xc3\x01") or opening.startswith(b"{"):
        return
    assert reason_of(codec, value) == DecodeReason.NOT_JSON_OR_AVRO


@given(value=st.binary(), headers=st.sampled_from([None, JSON_HEADERS, [("content-type", b"avro/binary")]]))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(
    codec: EventCodec, value: bytes, headers: Any
) -> None:
    with contextlib.suppress(DecodeError):
        codec.decode(value, headers, EVENT_TYPES)


@given(body=st.binary())
def test_arbitrary_avro_bodies_never_raise_anything_but_decode_error(codec: EventCodec, body: bytes) -> None:
    for event_type in EVENT_TYPES:
        with contextlib.suppress(DecodeError):
            codec.decode(codec.registry.current(event_type).header + body, None, event_type)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_damaged_avro_values_never_raise_anything_but_decode_error(
    codec: EventCodec, event_type: type[Event], data: st.DataObject
) -> None:
    value = bytearray(codec.encode(data.draw(records(event_type))))
    positions = st.integers(min_value=10, max_value=len(value) - 1)
    for position, byte in data.draw(
        st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=4)
    ):
        value[position] = byte

    with contextlib.suppress(DecodeError):
        codec.decode(bytes(value), None, event_type)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_every_truncation_of_an_avro_value(
    codec: EventCodec, event_type: type[Event], data: st.DataObject
) -> None:
    value = codec.encode(data.draw(records(event_type)))

    for length in range(2, len(value)):
        assert reason_of(codec, value[:length], event_type) == DecodeReason.TRUNCATED_AVRO, length


def test_trailing_bytes_after_the_record(codec: EventCodec, prediction: Prediction) -> None:
    assert reason_of(codec, codec.encode(prediction) + b"\x00") == DecodeReason.INVALID_AVRO


def test_an_enum_index_out_of_range(codec: EventCodec, feedback: Feedback) -> None:
    value = bytearray(codec.encode(feedback))
    no_contexts_then_down = b"\x00\x02"  # an empty array, then enum index 1 (zig-zag encoded)
    assert value.count(no_contexts_then_down) == 1
    value[value.index(no_contexts_then_down) + 1] = 0x7E

    assert reason_of(codec, bytes(value), Feedback) == DecodeReason.INVALID_AVRO


def test_unknown_fingerprint(codec: EventCodec, prediction: Prediction) -> None:
    value = codec.encode(prediction)
    unknown = value[:2] + bytes(8) + value[10:]

    error = decode_error(codec, unknown)
    assert error.reason == DecodeReason.UNKNOWN_FINGERPRINT
    assert "0000000000000000" in str(error)


def test_json_missing_required_fields_lists_every_path(codec: EventCodec, prediction: Prediction) -> None:
    document = json.loads(to_json(prediction))
    del document["scores"], document["item"]["id"]
    document["occurred_at"] = "2025-03-01T12:00:00"

    error = decode_error(codec, json.dumps(document).encode())

    assert error.reason == DecodeReason.SCHEMA_MISMATCH
    assert "scores: Field required" in error.detail
    assert "item.id: Field required" in error.detail
    assert "occurred_at: Input should have timezone info" in error.detail


def test_json_with_an_unknown_field(codec: EventCodec, prediction: Prediction) -> None:
    document = json.loads(to_json(prediction)) | {"confidence": 0.6}

    assert reason_of(codec, json.dumps(document).encode()) == DecodeReason.SCHEMA_MISMATCH


def test_avro_body_that_breaks_a_model_constraint(codec: EventCodec, prediction: Prediction) -> None:
    unvalidated = prediction.model_copy(update={"scores": {"toxic": 1.5}})

    error = decode_error(codec, codec.encode(unvalidated))
    assert error.reason == DecodeReason.INVALID_VALUE
    assert "scores.toxic" in error.detail


def test_json_whose_only_fault_is_a_value_out_of_range(codec: EventCodec, prediction: Prediction) -> None:
    document = json.loads(to_json(prediction)) | {"scores": {"toxic": -0.1}}

    error = decode_error(codec, json.dumps(document).encode())
    assert error.reason == DecodeReason.INVALID_VALUE
    assert "scores.toxic: Input should be greater than or equal to 0" in error.detail


def test_json_of_another_event_type(codec: EventCodec, feedback: Feedback) -> None:
    error = decode_error(codec, to_json(feedback))

    assert error.reason == DecodeReason.WRONG_EVENT_TYPE
    assert error.detail == "the value is a Feedback, expected Prediction"


def test_avro_of_another_event_type(codec: EventCodec, feedback: Feedback) -> None:
    assert reason_of(codec, codec.encode(feedback), (Prediction,)) == DecodeReason.WRONG_EVENT_TYPE


def test_invalid_utf8(codec: EventCodec) -> None:
    assert reason_of(codec, b'{"source": "\xff\xfe"}') == DecodeReason.INVALID_UTF8


def test_invalid_json(codec: EventCodec) -> None:
    assert reason_of(codec, b'{"source": ') == DecodeReason.INVALID_JSON


def test_json_that_is_not_an_object(codec: EventCodec) -> None:
    assert reason_of(codec, b"[1, 2]", headers=JSON_HEADERS) == DecodeReason.SCHEMA_MISMATCH


def test_unsupported_content_type(codec: EventCodec, prediction: Prediction) -> None:
    headers = [("content-type", b"text/csv")]

    assert reason_of(codec, to_json(prediction), headers=headers) == DecodeReason.UNSUPPORTED_CONTENT_TYPE


def test_avro_content_type_on_a_value_that_is_not_avro(codec: EventCodec, prediction: Prediction) -> None:
    headers = [("content-type", b"avro/binary")]

    assert reason_of(codec, to_json(prediction), headers=headers) == DecodeReason.NOT_JSON_OR_AVRO


def test_decode_errors_are_rejected_events_chained_to_their_cause(codec: EventCodec) -> None:
    error = decode_error(codec, b'{"source": ')

    assert isinstance(error, RejectedEvent)
    assert error.__cause__ is not None


def test_reasons_are_short_stable_codes() -> None:
    assert {reason.value for reason in DECODING} == {
        "empty_value",
        "too_large",
        "unsupported_content_type",
        "not_json_or_avro",
        "invalid_utf8",
        "invalid_json",
        "unknown_fingerprint",
        "truncated_avro",
        "invalid_avro",
        "wrong_event_type",
        "schema_mismatch",
        "invalid_value",
    }
