"""What a reviewer sees: a moderation record in Argilla's own UI, in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import argilla as rg
import pytest

from tests.argilla_bridge.browser import CHROMIUM, headless_chromium
from tests.argilla_bridge.conftest import dataset_of
from tests.argilla_bridge.tasks import moderation_task
from tests.support.services import REPO_DIR
from workers.config import Settings
from workers.review.argilla.backend import ArgillaBackend
from workers.review.publisher import PublishingSink
from workers.runtime.worker import Origin, Processed

SCREENSHOT = REPO_DIR / "artifacts" / "argilla-moderation-record.png"

# CI installs Chromium (.ci/run), so there a missing browser fails the test instead of skipping it.
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not os.environ.get("CI"),
    reason="needs Debian's chromium package (apt-get install chromium)",
)


@pytest.fixture
def annotator(argilla_client: rg.Argilla, argilla_workspace: rg.Workspace) -> Iterator[tuple[str, str]]:
    username, password = f"ui-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    user = rg.User(username=username, password=password, role="annotator", client=argilla_client).create()
    argilla_workspace.add_user(user)
    try:
        yield username, password
    finally:
        argilla_workspace.remove_user(user)
        user.delete()


def test_an_annotator_sees_the_items_text_and_the_models_suggestion(
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
    settings: Settings,
    annotator: tuple[str, str],
) -> None:
    task = moderation_task(7)
    sink = PublishingSink(ArgillaBackend(settings))
    assert sink.write([Processed(task, Origin(settings.topics.review_tasks, 0, 0, None))]) == {}
    sink.close()
    dataset = dataset_of(argilla_client, argilla_workspace, settings, task)
    text = task.source.item.text  # type: ignore[union-attr]
    username, password = annotator

    with headless_chromium() as browser:
        browser.open_page()
        browser.goto(f"{settings.argilla_api_url}/sign-in")
        browser.wait_until("!!document.querySelector('input[name=Username]')")
        browser.type_into("input[name=Username]", username)
        browser.type_into("input[name=Password]", password)
        browser.evaluate("document.querySelector('button[type=submit]').click()")
        browser.wait_until("!location.pathname.startsWith('/sign-in')")

        browser.goto(f"{settings.argilla_api_url}/dataset/{dataset['id']}/annotation-mode")
        browser.wait_until(f"document.body.innerText.includes({json.dumps(text)})")
        suggested = browser.wait_until(
            "(() => { const found = Array.from(document.querySelectorAll('.label-text'))"
            ".filter(label => label.querySelector('.label-text__suggestion'))"
            ".map(label => [label.querySelector('.label-text__text').innerText,"
            " label.querySelector('.label-text__suggestion__score').innerText]);"
            " return found.length ? found : null; })()"
        )
        agent = browser.evaluate("document.querySelector('[aria-label=toxic] .tooltip__text')?.textContent")
        browser.screenshot(SCREENSHOT)

    assert suggested == [["toxic", "0.6"]]
    assert agent == "toxicity-bert:2.3.1"
    assert Path(SCREENSHOT).stat().st_size > 10_000
