"""What a reviewer sees: a moderation record in Argilla's own UI, in the system's Chromium (Playwright)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import argilla as rg
import pytest
from playwright.sync_api import expect

from tests.argilla_bridge.conftest import dataset_of
from tests.argilla_bridge.tasks import moderation_task
from tests.support.chromium import chromium, needs_chromium, screenshot_path
from workers.config import Settings
from workers.review.argilla.backend import ArgillaBackend
from workers.review.publisher import PublishingSink
from workers.runtime.worker import Origin, Processed

SCREENSHOT = screenshot_path("argilla-moderation-record.png")

pytestmark = needs_chromium


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

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{settings.argilla_api_url}/sign-in")
        page.locator("input[name=Username]").fill(username)
        page.locator("input[name=Password]").fill(password)
        page.locator("button[type=submit]").click()
        page.wait_for_url(lambda url: "/sign-in" not in url)

        page.goto(f"{settings.argilla_api_url}/dataset/{dataset['id']}/annotation-mode")
        expect(page.get_by_text(text, exact=False).first).to_be_visible(timeout=30_000)
        suggested_label = page.locator(".label-text:has(.label-text__suggestion)")
        expect(suggested_label).to_have_count(1, timeout=30_000)
        suggested = [
            [
                suggested_label.locator(".label-text__text").inner_text(),
                suggested_label.locator(".label-text__suggestion__score").inner_text(),
            ]
        ]
        agent = page.locator("[aria-label=toxic] .tooltip__text").first.text_content()
        page.screenshot(path=SCREENSHOT)

    assert suggested == [["toxic", "0.6"]]
    assert agent == "toxicity-bert:2.3.1"
    assert Path(SCREENSHOT).stat().st_size > 10_000
