"""The exceptions of the contracts package, a branch of the project's exception tree."""

from workers.errors import HitlError, RejectedEvent
from workers.reasons import Reason


class ContractError(HitlError):
    """Base of every error raised by `workers.contracts`."""


class SchemaRegistryError(ContractError):
    """The schema files are missing, unreadable, or do not match the event models."""


class EncodeError(ContractError):
    """An event could not be written with its Avro schema (only possible for unvalidated models)."""


DecodeReason = Reason
"""The causes of a `DecodeError` are the registry's decoding reasons (`workers.reasons`)."""


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
