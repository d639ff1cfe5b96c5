"""The policy in force changes with its file or on SIGHUP, and never to a broken policy."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.events import prediction
from workers.band_router.policy import PolicyError
from workers.band_router.reload import PolicyHolder
from workers.band_router.worker import band_router
from workers.config import load_settings
from workers.runtime.worker import Origin

CHECK_SECONDS = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy_text(version: str, high: float = 0.8) -> str:
    return f'version = "{version}"\n[tasks.moderation]\nlow = 0.4\nhigh = {high}\n'


def rewrite(path: Path, text: str) -> None:
    """Writes the file and moves its mtime on: two quick writes may otherwise share a coarse mtime."""
    later = max(time.time_ns(), path.stat().st_mtime_ns + 1_000_000_000 if path.exists() else 0)
    path.write_text(text)
    os.utime(path, ns=(later, later))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "bands.toml"
    rewrite(path, policy_text("v1"))
    return path


@pytest.fixture
def holder(policy_file: Path, clock: Clock) -> PolicyHolder:
    return PolicyHolder(policy_file, CHECK_SECONDS, clock=clock)


def version_of(holder: PolicyHolder) -> str:
    return holder.current().spec.version


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "policy_refused"]


def test_a_changed_file_is_picked_up_at_the_next_check(
    holder: PolicyHolder, policy_file: Path, clock: Clock
) -> None:
    rewrite(policy_file, policy_text("v2"))

    clock.now += CHECK_SECONDS - 0.01
    assert version_of(holder) == "v1", "the file is not looked at before the check is due"
    clock.now += 0.01
    assert version_of(holder) == "v2"


def test_a_file_replaced_by_rename_is_picked_up(
    holder: PolicyHolder, policy_file: Path, clock: Clock
) -> None:
    replacement = policy_file.with_suffix(".new")
    replacement.write_text(policy_text("v2"))
    os.replace(replacement, policy_file)

    clock.now += CHECK_SECONDS
    assert version_of(holder) == "v2"


def test_a_broken_file_is_refused_with_its_reason_and_the_old_policy_stays(
    holder: PolicyHolder, policy_file: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hitl.band_router")
    old_version = holder.current().version
    rewrite(policy_file, policy_text("v2", high=0.3))

    clock.now += CHECK_SECONDS
    assert holder.current().version == old_version
    (refused,) = refusals(caplog)
    assert refused["kept_version"] == old_version
    assert "low 0.4 is above high 0.3" in str(refused["reason"])

    clock.now += CHECK_SECONDS
    assert holder.current().version == old_version
    assert len(refusals(caplog)) == 1, "the same broken file is reported once"

    rewrite(policy_file, policy_text("v3"))
    clock.now += CHECK_SECONDS
    assert version_of(holder) == "v3"


def test_a_missing_file_is_refused_and_the_old_policy_stays(
    holder: PolicyHolder, policy_file: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hitl.band_router")
    policy_file.unlink()

    for _ in range(3):
        clock.now += CHECK_SECONDS
        assert version_of(holder) == "v1"
    (refused,) = refusals(caplog)
    assert "cannot read the policy file" in str(refused["reason"])

    rewrite(policy_file, policy_text("v2"))
    clock.now += CHECK_SECONDS
    assert version_of(holder) == "v2"


def test_a_touched_but_unchanged_file_keeps_the_policy_without_a_reload(
    holder: PolicyHolder, policy_file: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hitl.band_router")
    before = holder.current()
    rewrite(policy_file, policy_file.read_text())

    clock.now += CHECK_SECONDS
    assert holder.current() is before
    assert not [r for r in caplog.records if r.getMessage() == "policy_reloaded"]


def test_a_reload_request_reads_the_file_before_the_check_is_due(
    holder: PolicyHolder, policy_file: Path
) -> None:
    policy_file.write_text(policy_text("v2"))

    assert version_of(holder) == "v1"
    holder.request_reload()
    assert version_of(holder) == "v2"


@pytest.mark.usefixtures("restore_sighup")
def test_sighup_reloads_the_policy(holder: PolicyHolder, policy_file: Path) -> None:
    assert holder.install_sighup_handler()
    # Same size, and the mtime put back: only SIGHUP can tell that the file changed.
    stat = policy_file.stat()
    policy_file.write_text(policy_text("v9"))
    os.utime(policy_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert version_of(holder) == "v1"
    os.kill(os.getpid(), signal.SIGHUP)
    assert version_of(holder) == "v9"


def test_an_invalid_first_policy_stops_the_worker_from_starting(tmp_path: Path) -> None:
    broken = tmp_path / "bands.toml"
    broken.write_text(policy_text("v1", high=0.2))
    settings = load_settings(band_router={"policy_file": broken})

    with pytest.raises(PolicyError, match=r"low 0\.4 is above high 0\.2"):
        band_router(settings)


@pytest.mark.usefixtures("restore_sighup")
def test_the_worker_routes_with_the_reloaded_policy(tmp_path: Path) -> None:
    path = tmp_path / "bands.toml"
    rewrite(path, policy_text("v1"))
    spec = band_router(load_settings(band_router={"policy_file": path, "reload_check_seconds": 3600}))
    origin = Origin("hitl.predictions", 0, 0, None)
    event = prediction(scores={"toxic": 0.85})

    (before,) = spec.handle(event, origin).outputs
    rewrite(path, policy_text("v2", high=0.9))
    os.kill(os.getpid(), signal.SIGHUP)
    (after,) = spec.handle(event, origin).outputs

    assert before.topic == "hitl.decisions"
    assert after.topic == "hitl.review.tasks"
    assert before.key == after.key == str(event.event_id)
