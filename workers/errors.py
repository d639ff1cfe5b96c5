"""The project's exception tree. Third-party errors are wrapped with `raise ... from error`."""

from __future__ import annotations


class HitlError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(HitlError):
    """A setting is missing or wrong; the message names it."""


class RejectedEvent(HitlError):
    """The event itself is at fault (invalid data): it goes to the dead-letter topic with this reason.

    `reason` is a short stable code (for metrics and the dead letter's headers); the message says what
    exactly is wrong.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DependencyUnavailable(HitlError):
    """A service the worker needs is down or timing out: retry later, never dead-letter for it.

    `retry_after` (seconds), when given, is the earliest useful retry.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TopicsMissing(HitlError):
    """Topics the worker reads or writes do not exist (automatic topic creation is off by design)."""
