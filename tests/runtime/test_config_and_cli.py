"""Settings fail early and by name; the CLI creates and describes topics idempotently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tests.conftest import unique_name
from tests.support.services import REPO_DIR
from workers.config import load_settings
from workers.errors import ConfigError
from workers.runtime.kafka_config import consumer_config, producer_config


def test_a_wrong_setting_fails_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_RUNTIME__BATCH_SIZE", "many")
    monkeypatch.setenv("HITL_KAFKA_SECURITY__PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "HITL_RUNTIME__BATCH_SIZE" in str(raised.value)
    assert "HITL_KAFKA_SECURITY__PROTOCOL" in str(raised.value)


def test_settings_come_from_a_toml_file_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "hitl.toml"
    config.write_text(
        'kafka_bootstrap = "broker-a:9092"\n[runtime]\nbatch_size = 42\nbatch_wait_seconds = 1.5\n'
    )
    monkeypatch.setenv("HITL_CONFIG_FILE", str(config))
    monkeypatch.setenv("HITL_RUNTIME__BATCH_SIZE", "7")
    monkeypatch.delenv("HITL_KAFKA_BOOTSTRAP", raising=False)
    settings = load_settings()
    assert settings.kafka_bootstrap == "broker-a:9092"
    assert settings.runtime.batch_size == 7
    assert settings.runtime.batch_wait_seconds == 1.5


def test_secrets_reach_librdkafka_but_never_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_KAFKA_SECURITY__PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HITL_KAFKA_SECURITY__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("HITL_KAFKA_SECURITY__SASL_USERNAME", "svc-hitl")
    monkeypatch.setenv("HITL_KAFKA_SECURITY__SASL_PASSWORD", "s3cret-value")
    monkeypatch.setenv("HITL_KAFKA_CLIENT_CONFIG", '{"client.rack": "eu-1a"}')
    settings = load_settings()
    assert "s3cret-value" not in repr(settings)
    consumer = consumer_config(settings, "group")
    producer = producer_config(settings)
    for config in (consumer, producer):
        assert config["sasl.password"] == "s3cret-value"
        assert config["security.protocol"] == "SASL_SSL"
        assert config["client.rack"] == "eu-1a"
    assert consumer["enable.auto.commit"] is False
    assert producer["enable.idempotence"] is True


def hitl_workers(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers", *args],
        cwd=REPO_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_reports_a_wrong_setting_and_exits_2() -> None:
    result = hitl_workers("topics", "describe", env={"HITL_TOPICS__PARTITIONS": "0"})
    assert result.returncode == 2
    assert "HITL_TOPICS__PARTITIONS" in result.stderr


def test_cli_creates_topics_idempotently_and_describes_them(
    kafka_bootstrap: str, kafka_admin: AdminClient
) -> None:
    prefix = unique_name("cli").replace("-", "_")
    names = [
        "predictions",
        "feedback",
        "extractions",
        "decisions",
        "extractions_valid",
        "review_tasks",
        "review_resolved",
        "training_examples",
    ]
    env = {f"HITL_TOPICS__{name.upper()}": f"{prefix}.{name}" for name in names}
    env |= {"HITL_KAFKA_BOOTSTRAP": kafka_bootstrap, "HITL_TOPICS__PARTITIONS": "4"}
    try:
        first = hitl_workers("topics", "create", env=env)
        second = hitl_workers("topics", "create", env=env)
        described = hitl_workers("topics", "describe", env=env)
    finally:
        ours = [t for t in kafka_admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if ours:
            for future in kafka_admin.delete_topics(ours).values():
                future.result(timeout=30)

    assert first.returncode == 0, first.stderr
    created = [line.split() for line in first.stdout.splitlines()]
    assert len(created) == 14  # 8 topics and a dead-letter topic for each of the 6 input topics
    assert {state for state, _ in created} == {"created"}
    assert {state for state, _ in (line.split() for line in second.stdout.splitlines())} == {"exists"}
    assert f"{prefix}.predictions.dlq" in described.stdout
    for line in described.stdout.splitlines():
        assert "partitions=4 replication=1" in line, line
