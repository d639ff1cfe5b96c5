"""The exceptions of the contracts package, a branch of the project's exception tree."""

from enum import StrEnum

from workers.errors import HitlError, RejectedEvent


class ContractError(HitlError):
    """Base of every error raised by `workers.contracts`."""


class SchemaRegistryError(ContractError):
    """The schema files are missing, unreadable, or do not match the event models."""


class EncodeError(ContractError):
    """An event could not be written with its Avro schema (only possible for unvalidated models)."""


class DecodeReason(StrEnum):
    """Stable, machine-readable causes of a `DecodeError`, fit for a dead-letter header."""

    EMPTY_VALUE = "empty_value"
    TOO_LARGE = "too_large"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    NOT_JSON_OR_AVRO = "not_json_or_avro"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    TRUNCATED_AVRO = "truncated_avro"
    INVALID_AVRO = "invalid_avro"
    WRONG_EVENT_TYPE = "wrong_event_type"
    SCHEMA_MISMATCH = "schema_mismatch"
    INVALID_VALUE = "invalid_value"


class DecodeError(ContractError, RejectedEvent):
    """A message value is not a valid event of the expected type.

    The message is at fault, not the worker: it belongs in the dead-letter topic with `reason`
    and `detail`.
    """

    reason: DecodeReason

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(reason, f"{reason}: {detail}")
        self.detail = detail

    def __reduce__(self) -> tuple[type["DecodeError"], tuple[DecodeReason, str]]:
        return type(self), (self.reason, self.detail)
