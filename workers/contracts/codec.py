"""Bytes to events and back: Avro single-object encoding out, Avro or JSON in.

Outputs are always Avro (`C3 01`, the 8-byte schema fingerprint, the body), so a consumer needs
only the `.avsc` file. Inputs may also be JSON; the `content-type` header says which, and
without one the first byte does.

Outputs are written by a fast path (`avro_program`'s C writer, or `avro_writer`'s Python one
where it is not built: a writer compiled from each schema that reads the model's attributes and
splices an event embedded twice instead of writing it again) beside the reference path
(`to_avro_datum` and fastavro); `tests/contracts/test_fast_path.py` proves them byte-for-byte
equal, and the fast writer hands whatever it cannot write to the reference path.
`EventCodec(fast=False)` is the reference path alone.

Decoding into models is the reference path only (for JSON, Pydantic's own parser was as fast as
msgspec plus building the model). A worker's fast path skips the models instead: `decode_plain`
reads JSON into a plain mirror of the event (`plain`, msgspec Structs), or Avro written with the
event's current schema (`avro_plain`: the compiled reader, or fastavro, then msgspec), and
`encode_plain` writes the plain mirrors of its outputs with the same Avro writer. Both return None
for whatever they do not decide exactly as the reference path would, and the message then takes
the reference path.
"""

import re
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, Literal, TypeVar

import msgspec
from pydantic import ValidationError

from workers.contracts.avro import (
    HEADER_SIZE,
    SINGLE_OBJECT_MARKER,
    RegisteredSchema,
    SchemaRegistry,
    read_body,
    write_body,
)
from workers.contracts.avro_plain import PlainAvroReader
from workers.contracts.avro_program import compile_writer
from workers.contracts.avro_writer import BodyMemo, Unwritable, Writer
from workers.contracts.base import Event
from workers.contracts.errors import DecodeError, DecodeReason
from workers.contracts.plain import PlainEvent, PlainInput
from workers.validation_errors import describe

E = TypeVar("E", bound=Event)
P = TypeVar("P", bound=PlainInput)

Header = tuple[str, bytes | None]
Headers = list[Header]
"""Message headers as this project reads and writes them (confluent-kafka's, values as bytes)."""

DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
JSON_CONTENT_TYPE = "application/json"
AVRO_CONTENT_TYPE = "avro/binary"
_AVRO_CONTENT_TYPES = frozenset({AVRO_CONTENT_TYPE, "application/avro", "application/vnd.apache.avro+binary"})
_UNSPECIFIED_CONTENT_TYPES = frozenset({"", "application/octet-stream"})
_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = b" \t\r\n"
_MAX_REPORTED_ERRORS = 20
# A time with more than 6 digits of fraction: msgspec rounds it to microseconds, Pydantic cuts it.
_SUBMICROSECOND_TIME = re.compile(rb":\d\d[.]\d{7}")


class EventCodec:
    """Encodes events as Avro and decodes Avro or JSON values into expected event types."""

    def __init__(
        self,
        registry: SchemaRegistry | None = None,
        *,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        fast: bool = True,
        compiled_writer: bool | None = None,
    ) -> None:
        """`compiled_writer`: False writes with the Python writer even where the compiled one is
        built (`avro_program`); None (the default) uses the compiled one unless HITL_COMPILED_WRITER=0."""
        self.registry = SchemaRegistry.load() if registry is None else registry
        self.max_value_bytes = max_value_bytes
        self.fast = fast
        self.compiled_writer = compiled_writer
        self._memo = BodyMemo()
        self._writers: dict[type[Event], Writer | None] = {}
        self._encoders: dict[type[Event], Callable[[Any], bytes] | None] = {}
        self._plain_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
        self._plain_avro_readers: dict[type[Any], PlainAvroReader[Any]] = {}

    def encode(self, event: Event) -> bytes:
        encoder = self._encoder(type(event))
        if encoder is not None:
            try:
                return encoder(event)
            except Unwritable:
                pass  # the reference path writes it, or says why it cannot
        entry = self.registry.current(type(event))
        return entry.header + write_body(entry, event)

    def encode_plain(self, value: PlainEvent) -> bytes | None:
        """The Avro of a plain event, as `encode` writes its model; None if the writer cannot write it."""
        encoder = self._encoder(value.EVENT_TYPE)
        if encoder is None:
            return None
        try:
            return encoder(value)
        except Unwritable:
            return None

    def _encoder(self, event_type: type[Event]) -> Callable[[Any], bytes] | None:
        """Header and body of an event of `event_type` (or of its plain mirror) by the fast writer;
        None where there is none."""
        try:
            return self._encoders[event_type]
        except KeyError:
            pass
        entry = self.registry.current(event_type)
        writer = self._writer(entry) if self.fast else None
        encoder: Callable[[Any], bytes] | None = None
        if writer is not None:
            header = entry.header
            compiled_encode = getattr(writer, "encode", None)
            if compiled_encode is not None:
                encoder = partial(compiled_encode, header)
            else:
                python_writer = writer

                def encoder(value: Any) -> bytes:
                    out = bytearray(header)
                    python_writer(value, out)
                    return bytes(out)

        self._encoders[event_type] = encoder
        return encoder

    def _writer(self, entry: RegisteredSchema) -> Writer | None:
        try:
            return self._writers[entry.event_type]
        except KeyError:
            pass
        event_names = frozenset(t.AVRO_NAME for t in self.registry.event_types)
        try:
            writer: Writer | None = compile_writer(
                entry.schema, self._memo, event_names, compiled=self.compiled_writer
            )
        except Unwritable:
            writer = None
        self._writers[entry.event_type] = writer
        return writer

    def decode(
        self, value: bytes | None, headers: Sequence[Header] | None, expected: type[E] | tuple[type[E], ...]
    ) -> E:
        expected_types = expected if isinstance(expected, tuple) else (expected,)
        # A new message: what the previous one's outputs embedded is not spliced into this one's.
        self._memo.clear()
        if not value:
            raise DecodeError(DecodeReason.EMPTY_VALUE, "the message has no value")
        if len(value) > self.max_value_bytes:
            raise DecodeError(
                DecodeReason.TOO_LARGE, f"{len(value)} bytes, above the limit of {self.max_value_bytes}"
            )
        if _wire_format(value, _content_type(headers)) == "json":
            return self._decode_json(value, expected_types)
        return self._decode_avro(value, expected_types)

    def decode_plain(
        self, value: bytes | None, headers: Sequence[Header] | None, plain_type: type[P]
    ) -> P | None:
        """A JSON value, or an Avro one of the current schema, as a plain event, validated by
        msgspec; None when the reference path is to decide (`decode`): a value in neither form, an
        older writer schema, one that msgspec refuses, or one it might read otherwise than Pydantic."""
        self._memo.clear()
        if not self.fast or not value or len(value) > self.max_value_bytes:
            return None
        if not _declared_json(headers):
            try:
                if _wire_format(value, _content_type(headers)) != "json":
                    return self._decode_plain_avro(value, plain_type)
            except DecodeError:
                return None
        body = value.removeprefix(_UTF8_BOM)
        if _SUBMICROSECOND_TIME.search(body):
            return None
        try:
            decoder = self._plain_decoders[plain_type]
        except KeyError:
            decoder = self._plain_decoders[plain_type] = msgspec.json.Decoder(plain_type)
        try:
            plain: P = decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        return plain

    def _decode_plain_avro(self, value: bytes, plain_type: type[P]) -> P | None:
        """An Avro value written with the current schema of the plain type's event, as the plain
        event; None for any other writer schema (resolution is the reference path's) or a value
        fastavro or msgspec refuses."""
        try:
            reader = self._plain_avro_readers[plain_type]
        except KeyError:
            reader = self._plain_avro_readers[plain_type] = PlainAvroReader(
                self.registry.current(plain_type.EVENT_TYPE), plain_type
            )
        return reader.read(value)

    def _decode_avro(self, value: bytes, expected_types: tuple[type[E], ...]) -> E:
        if not value.startswith(SINGLE_OBJECT_MARKER):
            raise DecodeError(
                DecodeReason.NOT_JSON_OR_AVRO, "the value does not start with the Avro marker C3 01"
            )
        if len(value) < HEADER_SIZE:
            raise DecodeError(
                DecodeReason.TRUNCATED_AVRO, f"{len(value)} bytes, shorter than the Avro header"
            )
        fingerprint = value[len(SINGLE_OBJECT_MARKER) : HEADER_SIZE]
        writer = self.registry.writer(fingerprint)
        if writer is None:
            raise DecodeError(
                DecodeReason.UNKNOWN_FINGERPRINT, f"no schema has the fingerprint {fingerprint.hex()}"
            )
        event_type = next((t for t in expected_types if t is writer.event_type), None)
        if event_type is None:
            raise DecodeError(DecodeReason.WRONG_EVENT_TYPE, _wrong_type(writer.event_type, expected_types))
        datum = read_body(value[HEADER_SIZE:], writer, self.registry.current(event_type))
        try:
            return event_type.model_validate(datum)
        except ValidationError as e:
            raise DecodeError(_mismatch_reason([e]), _describe([e])) from e

    def _decode_json(self, value: bytes, expected_types: tuple[type[E], ...]) -> E:
        try:
            text = value.removeprefix(_UTF8_BOM).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(DecodeReason.INVALID_UTF8, f"invalid UTF-8 at byte {e.start}") from e
        failures: list[ValidationError] = []
        for event_type in expected_types:
            try:
                return event_type.model_validate_json(text)
            except ValidationError as e:
                first = e.errors(include_url=False, include_input=False)[0]
                if first["type"] == "json_invalid":
                    raise DecodeError(DecodeReason.INVALID_JSON, first["msg"]) from e
                failures.append(e)
        actual = self._other_event_type(text, expected_types)
        if actual is not None:
            raise DecodeError(DecodeReason.WRONG_EVENT_TYPE, _wrong_type(actual, expected_types))
        raise DecodeError(_mismatch_reason(failures), _describe(failures)) from failures[0]

    def _other_event_type(self, text: str, expected_types: tuple[type[E], ...]) -> type[Event] | None:
        for event_type in self.registry.event_types:
            if event_type in expected_types:
                continue
            try:
                event_type.model_validate_json(text)
            except ValidationError:
                continue
            return event_type
        return None


def to_json(event: Event) -> bytes:
    """The JSON form of an event, as the codec decodes it."""
    return event.model_dump_json().encode()


@cache
def default_codec() -> EventCodec:
    """A codec over the packaged schemas, loaded once."""
    return EventCodec()


def encode(event: Event) -> bytes:
    return default_codec().encode(event)


def decode(
    value: bytes | None, headers: Sequence[Header] | None, expected: type[E] | tuple[type[E], ...]
) -> E:
    return default_codec().decode(value, headers, expected)


def _content_type(headers: Sequence[Header] | None) -> str | None:
    """The media type of the last `content-type` header, lower-cased and without parameters."""
    found: bytes | None = None
    for key, header_value in headers or ():
        if key.lower() == "content-type":
            found = header_value
    if found is None:
        return None
    try:
        return found.decode("ascii").split(";", 1)[0].strip().lower()
    except UnicodeDecodeError:
        raise DecodeError(
            DecodeReason.UNSUPPORTED_CONTENT_TYPE, "the content-type header is not ASCII"
        ) from None


def _declared_json(headers: Sequence[Header] | None) -> bool:
    """True for the usual headers of a JSON value: one header, `content-type: application/json`."""
    return headers is not None and len(headers) == 1 and headers[0] == _JSON_HEADER


_JSON_HEADER = ("content-type", JSON_CONTENT_TYPE.encode())


def _wire_format(value: bytes, content_type: str | None) -> Literal["json", "avro"]:
    if content_type is None or content_type in _UNSPECIFIED_CONTENT_TYPES:
        if value.startswith(SINGLE_OBJECT_MARKER):
            return "avro"
        if value.removeprefix(_UTF8_BOM).lstrip(_JSON_WHITESPACE).startswith(b"{"):
            return "json"
        raise DecodeError(DecodeReason.NOT_JSON_OR_AVRO, f"the value starts with {value[:4].hex(' ')}")
    if content_type == JSON_CONTENT_TYPE or (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        return "json"
    if content_type in _AVRO_CONTENT_TYPES:
        return "avro"
    raise DecodeError(
        DecodeReason.UNSUPPORTED_CONTENT_TYPE, f"content-type {content_type!r} is neither JSON nor Avro"
    )


def _wrong_type(actual: type[Event], expected_types: Sequence[type[Event]]) -> str:
    expected_names = " or ".join(t.__name__ for t in expected_types)
    return f"the value is a {actual.__name__}, expected {expected_names}"


# Validation errors about a value that has the right place and type but breaks a constraint.
_VALUE_ERROR_TYPES = frozenset(
    {
        "finite_number",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "value_error",
        "assertion_error",
        "enum",
        "literal_error",
        "timezone_aware",
        "uuid_parsing",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "date_parsing",
        "decimal_max_digits",
        "decimal_max_places",
        "multiple_of",
    }
)


def _mismatch_reason(failures: Sequence[ValidationError]) -> DecodeReason:
    """`invalid_value` when the one expected event is whole but some value breaks a rule."""
    if len(failures) == 1 and all(
        error["type"] in _VALUE_ERROR_TYPES for error in failures[0].errors(include_url=False)
    ):
        return DecodeReason.INVALID_VALUE
    return DecodeReason.SCHEMA_MISMATCH


def _describe(failures: Sequence[ValidationError]) -> str:
    """Every failing field as `path: message`, joined by `; `, one group per attempted type."""
    return " | ".join(
        f"not a {failure.title}: " + describe(failure, limit=_MAX_REPORTED_ERRORS) for failure in failures
    )
