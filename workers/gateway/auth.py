"""Optional bearer tokens: from the settings and a secrets file, compared in constant time, never logged."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from workers.config import GatewaySettings
from workers.errors import ConfigError

TOKENS_FILE_SETTING = "HITL_GATEWAY__TOKENS_FILE"


class BearerTokens:
    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(token.encode() for token in tokens if token)

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> BearerTokens:
        tokens = [token.get_secret_value().strip() for token in settings.tokens]
        if settings.tokens_file is not None:
            tokens += read_tokens_file(settings)
        return cls(tokens)

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def allows(self, authorization: str | None) -> bool:
        """Whether the `Authorization` header carries one of the tokens (any header when none is set)."""
        if not self._tokens:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = credentials.strip().encode()
        matched = False
        # Every token is compared, so the time taken says nothing about which one came close.
        for token in self._tokens:
            matched |= hmac.compare_digest(token, given)
        return matched


def read_tokens_file(settings: GatewaySettings) -> list[str]:
    path = settings.tokens_file
    assert path is not None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.__class__.__name__
        raise ConfigError(f"{TOKENS_FILE_SETTING}={path}: cannot read it ({reason})") from error
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
