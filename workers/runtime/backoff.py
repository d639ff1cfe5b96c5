"""Exponential backoff with full jitter, for retrying a dependency that is down."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float
    maximum: float
    attempts: int = field(default=0, init=False)

    def next_delay(self, at_least: float | None = None) -> float:
        ceiling = min(self.maximum, self.initial * 2**self.attempts)
        self.attempts += 1
        delay = random.uniform(ceiling / 2, ceiling)
        return max(delay, at_least or 0.0)

    def reset(self) -> None:
        self.attempts = 0
