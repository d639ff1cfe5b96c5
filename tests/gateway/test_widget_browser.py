"""The widget in a real browser: votes on the gateway's /demo page end as rows in PostgreSQL's
feedback table and, for 👎, as a record in Argilla's RAG dataset. Gateway, feedback-triage and
argilla-publisher run in threads over this test's topics, schema and workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import argilla as rg
import psycopg
import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.argilla_bridge.conftest import records_of, wait_for
from tests.conftest import TopicFactory, unique_name
from tests.gateway.conftest import GatewayTopics, MakeSettings, running_gateway
from tests.runtime.conftest import running
from tests.support.chromium import chromium, needs_chromium, screenshot_path
from tests.support.kafka import read_topic
from tests.support.services import Services
from workers.config import Settings, load_settings
from workers.feedback_triage.worker import feedback_triage
from workers.review.publisher import argilla_publisher
from workers.runtime.topics import dead_letter_topic_config

pytestmark = needs_chromium


@dataclass(frozen=True)
class Pipeline:
    url: str
    settings: Settings


@pytest.fixture
def pipeline(
    services: Services, make_topic: TopicFactory, pg_schema: str, argilla_workspace: rg.Workspace
) -> Iterator[Pipeline]:
    feedback = make_topic("feedback")
    tasks = make_topic("tasks")
    for source in (feedback, tasks):
        make_topic(name=source + ".dlq", partitions=1, config=dead_letter_topic_config())
    settings = load_settings(
        kafka_bootstrap=services.kafka_bootstrap,
        postgres_dsn=services.postgres_dsn,
        argilla_api_url=services.argilla_api_url,
        argilla_api_key=services.argilla_api_key,
        group_id_prefix=unique_name("test"),
        topics={"feedback": feedback, "review_tasks": tasks},
        feedback_triage={"positive_sample_rate": 0.0},
        runtime={"batch_wait_seconds": 0.1, "retry_initial_seconds": 0.2, "retry_max_seconds": 2.0},
        argilla_bridge={"workspace": argilla_workspace.name},
        gateway={"port": 0},
    )
    with ExitStack() as stack:
        stack.enter_context(running(feedback_triage(settings, schema=pg_schema), settings))
        stack.enter_context(running(argilla_publisher(settings), settings))
        gateway = stack.enter_context(running_gateway(settings))
        yield Pipeline(f"http://127.0.0.1:{gateway.port}", settings)


def posted_event(request: Request) -> dict[str, object]:
    return dict(json.loads(request.post_data or "{}"))


def vote_down(page: Page, answer: int, reason: str, comment: str) -> dict[str, object]:
    article = page.locator(f"#answer-{answer}")
    article.get_by_role("button", name="Not helpful").click()
    expect(article.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    article.get_by_label(reason).check()
    article.get_by_label("Comment (optional)").fill(comment)
    page.screenshot(path=screenshot_path("widget-thumbs-down-form.png"), full_page=True)
    with page.expect_request("**/v1/feedback") as request:
        article.get_by_role("button", name="Send feedback").click()
    expect(article.get_by_role("status")).to_have_text("Thank you, your feedback was sent.")
    return posted_event(request.value)


def test_votes_on_the_demo_page_end_in_postgres_and_a_thumbs_down_in_argilla(
    pipeline: Pipeline,
    postgres_dsn: str,
    pg_schema: str,
    argilla_client: rg.Argilla,
    argilla_workspace: rg.Workspace,
) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(pipeline.url + "/demo")
        expect(page.locator("article")).to_have_count(4)
        down = vote_down(page, 1, "Outdated", "The docs say 500 MB on Starter.")
        page.screenshot(path=screenshot_path("widget-thumbs-down-sent.png"), full_page=True)

        # A thumbs-up, by keyboard: Tab to the button, Enter.
        up_button = page.locator("#answer-0").get_by_role("button", name="Helpful", exact=True)
        up_button.focus()
        with page.expect_request("**/v1/feedback") as request:
            page.keyboard.press("Enter")
        up = posted_event(request.value)
        expect(page.locator("#answer-0").get_by_role("status")).to_have_text(
            "Thank you, your feedback was sent."
        )
        expect(up_button).to_have_attribute("aria-pressed", "true")
        page.screenshot(path=screenshot_path("widget-demo-after-votes.png"), full_page=True)

    assert down["comment"] == "[outdated] The docs say 500 MB on Starter."
    assert (down["rating"], up["rating"]) == ("down", "up")

    def rows() -> list[tuple[str, str, str | None, str]]:
        with psycopg.connect(postgres_dsn, options=f"-c search_path={pg_schema}") as connection:
            try:
                found = connection.execute(
                    "SELECT event_id::text, rating, comment, question FROM feedback ORDER BY rating"
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                return []
        return found if len(found) == 2 else []

    stored = wait_for(rows, timeout=60)
    assert stored == [
        (down["event_id"], "down", "[outdated] The docs say 500 MB on Starter.", down["question"]),
        (up["event_id"], "up", None, up["question"]),
    ]

    def record() -> dict[str, object] | None:
        for dataset in argilla_client.http_client.get("/api/v1/me/datasets").json()["items"]:
            if dataset["workspace_id"] == str(argilla_workspace.id):
                for item in records_of(argilla_client, dataset["id"]):
                    if item["external_id"] == down["event_id"]:
                        return {"dataset": dataset["name"], **item}
        return None

    found = wait_for(record, timeout=90)
    assert "rag" in str(found["dataset"])
    fields = found["fields"]
    assert isinstance(fields, dict)
    assert "[outdated] The docs say 500 MB on Starter." in json.dumps(fields)
    assert down["answer"] in json.dumps(fields)


def test_a_vote_whose_first_post_fails_is_sent_again_once_with_the_same_event_id(
    make_settings: MakeSettings, gateway_topics: GatewayTopics, kafka_bootstrap: str
) -> None:
    attempts: list[dict[str, object]] = []

    def first_fails(route: Route) -> None:
        attempts.append(posted_event(route.request))
        if len(attempts) == 1:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    with running_gateway(make_settings()) as gateway, chromium() as browser:
        page = browser.new_page()
        page.route("**/v1/feedback", first_fails)
        page.goto(f"http://127.0.0.1:{gateway.port}/demo")
        page.locator("#answer-2").get_by_role("button", name="Helpful", exact=True).click()
        expect(page.locator("#answer-2").get_by_role("status")).to_have_text(
            "Thank you, your feedback was sent.", timeout=15_000
        )

    assert len(attempts) == 2
    assert attempts[0]["event_id"] == attempts[1]["event_id"]
    on_topic = read_topic(kafka_bootstrap, gateway_topics.feedback, expect=1)
    assert [m.key for m in on_topic] == [str(attempts[0]["event_id"]).encode()]
