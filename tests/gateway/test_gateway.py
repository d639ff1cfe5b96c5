"""The gateway over real HTTP, on the real broker: what each status means, and what lands on the topic."""

from __future__ import annotations

import base64
import http.client
import json
import os
import uuid
from pathlib import Path

import pytest

from tests.conftest import TopicFactory
from tests.gateway.conftest import GatewayTopics, MakeSettings, running_gateway
from tests.gateway.events import feedback_json, prediction_json
from tests.support.kafka import Received, read_topic
from tests.support.processes import free_port
from workers.config import Topics
from workers.contracts import Event, Feedback, Prediction, decode
from workers.errors import ConfigError
from workers.gateway.server import GatewayServer


def decoded(messages: list[Received], event_type: type[Feedback] | type[Prediction]) -> dict[str, Event]:
    events: dict[str, Event] = {}
    for message in messages:
        assert message.headers["content-type"] == b"avro/binary"
        assert message.value is not None and message.value[:2] == b"\xc3\x01", "Avro single-object"
        event = decode(message.value, list(message.headers.items()), event_type)
        assert message.key == str(event.event_id).encode()
        events[str(event.event_id)] = event
    return events


def test_a_single_event_and_an_array_are_on_their_topics_when_202_answers(
    make_settings: MakeSettings, gateway_topics: GatewayTopics, kafka_bootstrap: str
) -> None:
    predictions = [prediction_json(item={"id": f"c-{n}", "content_type": "text/plain"}) for n in range(3)]
    with running_gateway(make_settings()) as gateway:
        single = gateway.post("/v1/feedback", feedback_json())
        array = gateway.post("/v1/predictions", predictions)

    assert single.status == 202, single.body
    assert single.body["accepted"] == 1
    (filled,) = single.body["events"]
    uuid.UUID(filled["event_id"])  # generated, since the event had none
    stored = decoded(read_topic(kafka_bootstrap, gateway_topics.feedback, expect=1), Feedback)
    assert list(stored) == [filled["event_id"]]
    feedback = stored[filled["event_id"]]
    assert isinstance(feedback, Feedback)
    assert feedback.comment == "[outdated] the limit changed"
    assert feedback.occurred_at.isoformat() == filled["occurred_at"]

    assert array.status == 202, array.body
    assert [e["event_id"] for e in array.body["events"]] == [p["event_id"] for p in predictions]
    on_topic = decoded(read_topic(kafka_bootstrap, gateway_topics.predictions, expect=3), Prediction)
    assert sorted(on_topic) == sorted(p["event_id"] for p in predictions)
    assert {e.item.id for e in on_topic.values()} == {"c-0", "c-1", "c-2"}  # type: ignore[attr-defined]


def test_422_names_every_failing_field_with_its_path_and_stores_nothing(
    make_settings: MakeSettings, gateway_topics: GatewayTopics, kafka_bootstrap: str
) -> None:
    body = [
        feedback_json(),
        feedback_json(rating="sideways", contexts=[{"doc_id": "kb-1", "text": "x", "score": "high"}]),
        "not an event",
    ]
    with running_gateway(make_settings()) as gateway:
        answer = gateway.post("/v1/feedback", body)
        missing = gateway.post("/v1/feedback", {"rating": "up"})

    assert answer.status == 422
    assert [(d["path"]) for d in answer.body["detail"]] == ["[1].contexts[0].score", "[1].rating", "[2]"]
    assert "Input should be 'up' or 'down'" in answer.body["error"]
    assert missing.status == 422
    assert {d["path"] for d in missing.body["detail"]} == {"session_id", "question", "answer", "model"}
    assert read_topic(kafka_bootstrap, gateway_topics.feedback, expect=0, settle=0.5) == []


def test_413_above_the_size_limit_declared_or_streamed(
    make_settings: MakeSettings, gateway_topics: GatewayTopics, kafka_bootstrap: str
) -> None:
    big = feedback_json(comment="x" * 5000)
    with running_gateway(make_settings(max_body_bytes=4096)) as gateway:
        declared = gateway.post("/v1/feedback", big)
        # Chunked, with no Content-Length: the limit must hold on the bytes as they stream in.
        connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
        payload = json.dumps(big).encode()
        chunks = (payload[i : i + 1000] for i in range(0, len(payload), 1000))
        connection.request(
            "POST",
            "/v1/feedback",
            body=chunks,
            headers={"content-type": "application/json"},
            encode_chunked=True,
        )
        streamed = connection.getresponse()
        streamed_body = json.loads(streamed.read())
        connection.close()
        small = gateway.post("/v1/feedback", feedback_json())

    assert declared.status == 413
    assert "above the limit of 4096" in declared.body["error"]
    assert streamed.status == 413, streamed_body
    assert small.status == 202
    assert len(read_topic(kafka_bootstrap, gateway_topics.feedback, expect=1)) == 1


def test_415_for_a_body_that_is_not_json(make_settings: MakeSettings) -> None:
    with running_gateway(make_settings()) as gateway:
        form = gateway.request(
            "POST", "/v1/feedback", b"rating=up", {"content-type": "application/x-www-form-urlencoded"}
        )
        broken = gateway.request(
            "POST", "/v1/feedback", b'{"rating": "up"', {"content-type": "application/json"}
        )
    assert form.status == 415
    assert broken.status == 415
    assert "not JSON" in broken.body["error"]


def test_401_without_a_valid_token_from_the_settings_or_the_secrets_file(
    make_settings: MakeSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("# one token a line\nfile-token-1234\n")
    settings = make_settings(tokens=["settings-token-5678"], tokens_file=str(tokens_file))
    with running_gateway(settings) as gateway:
        none = gateway.post("/v1/feedback", feedback_json())
        wrong = gateway.post("/v1/feedback", feedback_json(), {"authorization": "Bearer guess"})
        basic = gateway.post("/v1/feedback", feedback_json(), {"authorization": "Basic settings-token-5678"})
        from_settings = gateway.post(
            "/v1/feedback", feedback_json(), {"authorization": "Bearer settings-token-5678"}
        )
        from_file = gateway.post("/v1/feedback", feedback_json(), {"authorization": "Bearer file-token-1234"})
        health = gateway.request("GET", "/healthz")

    assert (none.status, wrong.status, basic.status) == (401, 401, 401)
    assert none.headers["www-authenticate"] == "Bearer"
    assert (from_settings.status, from_file.status, health.status) == (202, 202, 200)
    assert "settings-token-5678" not in caplog.text and "file-token-1234" not in caplog.text


def test_503_with_retry_after_when_kafka_is_unreachable_and_nothing_is_stored(
    make_settings: MakeSettings, gateway_topics: GatewayTopics, kafka_bootstrap: str
) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(kafka=closed, ack_timeout_seconds=1.0, retry_after_seconds=7)
    event = feedback_json(event_id=str(uuid.uuid4()))
    with running_gateway(settings) as gateway:
        answer = gateway.post("/v1/feedback", [event, feedback_json()])
    assert answer.status == 503
    assert answer.headers["retry-after"] == "7"
    assert read_topic(kafka_bootstrap, gateway_topics.feedback, expect=0, settle=2.0) == []


def test_cors_lets_the_configured_origins_post_and_no_other(make_settings: MakeSettings) -> None:
    allowed, other = "https://app.example", "https://evil.example"
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    with running_gateway(make_settings(cors_origins=[allowed])) as gateway:
        ok = gateway.request("OPTIONS", "/v1/feedback", headers={"origin": allowed, **preflight})
        refused = gateway.request("OPTIONS", "/v1/feedback", headers={"origin": other, **preflight})
        posted = gateway.post("/v1/feedback", feedback_json(), {"origin": allowed})
    assert ok.status == 200
    assert ok.headers["access-control-allow-origin"] == allowed
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert refused.status == 400
    assert "access-control-allow-origin" not in refused.headers
    assert posted.status == 202
    assert posted.headers["access-control-allow-origin"] == allowed


def test_docs_health_and_metrics_by_route_and_status(make_settings: MakeSettings) -> None:
    with running_gateway(make_settings()) as gateway:
        gateway.post("/v1/feedback", feedback_json())
        gateway.post("/v1/feedback", {"rating": "up"})
        docs = gateway.request("GET", "/docs")
        schema = gateway.request("GET", "/openapi.json")
        health = gateway.request("GET", "/healthz")
        metrics = gateway.request("GET", "/metrics").body.decode()
    assert docs.status == 200 and b"swagger" in docs.body.lower()
    body = schema.body["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][0] == {"$ref": "#/components/schemas/Feedback"}
    assert "event_id" not in schema.body["components"]["schemas"]["Feedback"]["required"]
    assert health.body == {"status": "ok"}
    assert 'hitl_gateway_requests_total{method="POST",route="/v1/feedback",status="202"} 1.0' in metrics
    assert 'hitl_gateway_requests_total{method="POST",route="/v1/feedback",status="422"} 1.0' in metrics
    assert 'hitl_gateway_request_seconds_count{route="/v1/feedback"} 2.0' in metrics


def test_a_taken_port_is_a_one_line_error_naming_the_setting(make_settings: MakeSettings) -> None:
    with running_gateway(make_settings()) as gateway, pytest.raises(ConfigError) as raised:
        GatewayServer(make_settings(port=gateway.port))
    message = str(raised.value)
    assert message.startswith(f"HITL_GATEWAY__PORT={gateway.port}: cannot listen")
    assert "\n" not in message


def test_an_event_kafka_refuses_for_its_size_is_413_not_503(
    make_settings: MakeSettings, make_topic: TopicFactory, kafka_bootstrap: str
) -> None:
    small = make_topic("small", partitions=1, config={"max.message.bytes": "4096"})
    settings = make_settings().model_copy(update={"topics": Topics(feedback=small)})
    noise = base64.b64encode(os.urandom(30_000)).decode()  # incompressible, unlike "x" * n
    with running_gateway(settings) as gateway:
        answer = gateway.post("/v1/feedback", feedback_json(comment=noise))
        fits = gateway.post("/v1/feedback", feedback_json())
    assert answer.status == 413, answer.body
    assert "Kafka refused event [0]" in answer.body["error"]
    assert fits.status == 202
    assert len(read_topic(kafka_bootstrap, small, expect=1)) == 1
