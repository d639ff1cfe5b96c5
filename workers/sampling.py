"""The deterministic sample every worker draws from: a pure function of the event id.

The draw is BLAKE2b of the UUID's 16 bytes with an 8-byte digest, read as a big-endian integer
and divided by 2**64: a number in [0, 1) that a replay, another process or another language
(any BLAKE2b with `digest_size=8`) computes identically. An event is in a sample of rate r when
its draw is below r, compared exactly on the integer, so rate 0 takes nothing, rate 1 takes
everything, and raising a rate keeps every event a lower rate had taken. `digest_size=8` is a
hash of its own (BLAKE2b's output length is part of its parameters), not the first 8 bytes of the
64-byte digest; the band-router's audit sample was drawn this way from the start.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

_SCALE = 2**64


def draw_integer(event_id: UUID | str) -> int:
    """`event_id` as a UUID, or as the canonical text of one (lower-case hex with hyphens)."""
    raw = event_id.bytes if isinstance(event_id, UUID) else bytes.fromhex(event_id.replace("-", ""))
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def draw(event_id: UUID) -> float:
    """The event's draw in [0, 1)."""
    return draw_integer(event_id) / _SCALE


def in_sample(event_id: UUID | str, rate: float) -> bool:
    # draw < rate, compared exactly: the float division could round up to 1.0.
    return draw_integer(event_id) < rate * _SCALE
