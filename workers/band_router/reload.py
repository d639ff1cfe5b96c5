"""The policy in force, reloaded without a restart when its file changes or on SIGHUP.

`current()` is called for every event. At most once every `check_seconds` it compares the file's
modification time, size and inode with those of the file in force (an editor's in-place write and
an atomic rename both change one of them); SIGHUP forces a reload at the next call. A new file that
is not a valid policy is refused with a logged reason, and the policy in force stays; the same
broken file is not reported again until it changes once more.

The SIGHUP handler only sets a flag, so nothing is read inside a signal handler; the reload itself
runs in the worker's handler, on the next event.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from workers.band_router.policy import Policy, PolicyError, load_policy
from workers.logs import log

logger = logging.getLogger("hitl.band_router")

FileStamp = tuple[int, int, int]
UNREADABLE: FileStamp = (-1, -1, -1)


def _stamp(path: Path) -> FileStamp:
    status = os.stat(path)
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class PolicyHolder:
    """Holds the policy in force; raises PolicyError at construction if the first one is invalid."""

    def __init__(
        self, path: Path, check_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.check_seconds = check_seconds
        self._clock = clock
        try:
            stamp = _stamp(path)
        except OSError as error:
            raise PolicyError(f"{path}: cannot read the policy file: {error}") from error
        self._policy = load_policy(path)
        self._stamp = stamp
        self._refused: FileStamp | None = None
        self._reload_requested = False
        self._next_check = clock() + check_seconds
        log(logger, "policy_loaded", path=str(path), version=self._policy.version)

    def current(self) -> Policy:
        """The policy in force, after reloading it if it is time to look at the file."""
        if self._reload_requested or self._clock() >= self._next_check:
            self._check()
        return self._policy

    def request_reload(self) -> None:
        """Reload at the next `current()`, even if the file looks unchanged. Safe in a signal handler."""
        self._reload_requested = True

    def install_sighup_handler(self) -> bool:
        """Makes SIGHUP request a reload; only possible in the main thread, on platforms with SIGHUP."""
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is None or threading.current_thread() is not threading.main_thread():
            log(logger, "sighup_unavailable", logging.WARNING, path=str(self.path))
            return False

        def on_sighup(_signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(sighup, on_sighup)
        return True

    def _check(self) -> None:
        forced, self._reload_requested = self._reload_requested, False
        self._next_check = self._clock() + self.check_seconds
        try:
            stamp = _stamp(self.path)
        except OSError:
            stamp = UNREADABLE
        if not forced and stamp in (self._stamp, self._refused):
            return
        try:
            policy = load_policy(self.path)
        except PolicyError as error:
            self._refused = stamp
            log(
                logger,
                "policy_refused",
                logging.WARNING,
                path=str(self.path),
                reason=str(error),
                kept_version=self._policy.version,
            )
            return
        self._stamp, self._refused = stamp, None
        if policy.digest == self._policy.digest:
            if forced:
                log(logger, "policy_unchanged", path=str(self.path), version=policy.version)
            return
        previous, self._policy = self._policy, policy
        log(logger, "policy_reloaded", path=str(self.path), version=policy.version, previous=previous.version)
