"""The Avro output follows the single-object encoding of the specification, readable without our code."""

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from workers.contracts import EVENT_TYPES, Event, EventCodec, Prediction, ReviewTask, TrainingExample, to_json

from .conftest import SCHEMAS_DIR, load_avsc
from .strategies import records

CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin fingerprint of the Avro specification, written out from its reference code."""
    fp = CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize(
    ("canonical", "signed_fingerprint"),
    [
        ('"null"', 7195948357588979594),
        ('"boolean"', -6970731678124411036),
        ('"int"', 8247732601305521295),
        ('"string"', -8142146995180207161),
        ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}', 7843277075252814651),
    ],
)
def test_the_reference_crc_matches_the_specification_vectors(canonical: str, signed_fingerprint: int) -> None:
    assert crc64_avro(canonical.encode()) == signed_fingerprint % 2**64


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_header_is_the_marker_and_the_little_endian_spec_fingerprint(
    codec: EventCodec, event_type: type[Event], data: st.DataObject
) -> None:
    entry = codec.registry.current(event_type)
    canonical = to_parsing_canonical_form(json.loads(entry.path.read_text()))
    expected = b"\xc3\x01" + crc64_avro(canonical.encode()).to_bytes(8, "little")

    # Logical types are stripped from the canonical form; a fingerprint computed with them differs.
    assert "logicalType" not in canonical
    assert entry.header == expected
    assert codec.encode(data.draw(records(event_type)))[:10] == expected


def read_with_schema_file(value: bytes, avsc: Path) -> dict[str, Any]:
    """How a trainer reads the topic: the .avsc file and fastavro, nothing of this project."""
    schema = fastavro.parse_schema(json.loads(avsc.read_text()))
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    fingerprint = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    assert value[:2] == b"\xc3\x01", "not Avro single-object encoding"
    assert value[2:10] == fingerprint, "written with another schema"
    datum: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
    return datum


@given(example=records(TrainingExample))
def test_a_consumer_with_only_the_schema_file_reads_training_examples(
    codec: EventCodec, example: TrainingExample
) -> None:
    datum = read_with_schema_file(codec.encode(example), SCHEMAS_DIR / "training_example.avsc")

    assert datum["example_id"] == example.example_id
    assert datum["kind"] == example.kind.value
    assert datum["input"] == example.input
    assert datum["lineage"]["offset"] == example.lineage.offset
    assert datum["created_at"] == example.created_at
    assert TrainingExample.model_validate(datum) == example


@given(task=records(ReviewTask))
def test_the_source_union_member_is_the_one_written(codec: EventCodec, task: ReviewTask) -> None:
    datum = read_with_schema_file(codec.encode(task), SCHEMAS_DIR / "review_task.avsc")
    fastavro_name = fastavro.schemaless_reader(
        io.BytesIO(codec.encode(task)[10:]),
        fastavro.parse_schema(load_avsc("review_task")),
        return_record_name=True,
    )["source"][0]

    assert fastavro_name == task.source.AVRO_NAME
    assert datum["source"]["event_id"] == task.source.event_id


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("content-type", b"application/json")],
        [("Content-Type", b"application/json; charset=utf-8")],
        [("content-type", b"application/vnd.hitl.prediction+json")],
        [("content-type", b"application/octet-stream")],
        [("trace", None), ("content-type", b"text/plain"), ("content-type", b"application/json")],
    ],
)
def test_json_is_recognised_by_header_or_first_byte(
    codec: EventCodec, prediction: Prediction, headers: Any
) -> None:
    assert codec.decode(to_json(prediction), headers, Prediction) == prediction


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"  \n\t", b"\xef\xbb\xbf\r\n "])
def test_json_may_start_with_a_byte_order_mark_or_whitespace(
    codec: EventCodec, prediction: Prediction, prefix: bytes
) -> None:
    assert codec.decode(prefix + to_json(prediction), None, Prediction) == prediction


@pytest.mark.parametrize(
    "content_type", [b"avro/binary", b"application/avro", b"application/vnd.apache.avro+binary"]
)
def test_avro_is_recognised_by_header(codec: EventCodec, prediction: Prediction, content_type: bytes) -> None:
    assert codec.decode(codec.encode(prediction), [("content-type", content_type)], Prediction) == prediction


def test_json_timestamps_are_iso_8601_and_come_back_in_utc(codec: EventCodec, prediction: Prediction) -> None:
    document = json.loads(to_json(prediction)) | {"occurred_at": "2025-03-01T14:30:15.123456+02:00"}

    decoded = codec.decode(json.dumps(document).encode(), None, Prediction)

    assert decoded.occurred_at == prediction.occurred_at
    assert decoded.occurred_at.utcoffset() is not None
    assert decoded.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_schema_files_are_the_ones_in_the_repository(codec: EventCodec) -> None:
    # The repository's schemas/ is a link to the package's copy, the one the codec reads.
    assert codec.registry.current(Prediction).path.resolve() == (SCHEMAS_DIR / "prediction.avsc").resolve()
    assert load_avsc("prediction")["name"] == "Prediction"
