"""SIGTERM and SIGINT as a request to stop: each signal is logged as `stopping`, then `stop()` runs.

Every long-running process installs these once, in its main thread: the Kafka workers (which
finish the batch in hand), the HTTP services (whose uvicorn server hands the signals to the
handlers it found at start) and the quality exporter.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from workers.logs import log


def stop_on_signals(logger: logging.Logger, stop: Callable[[], None], **fields: Any) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(logger, "stopping", **fields, signal=signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
