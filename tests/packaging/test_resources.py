"""Run-time files come from the installed package, and a user's own still override them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.relay import relay_spec
from workers.config import Settings
from workers.contracts import Prediction, SchemaRegistryError, avro_schema, packaged_schemas_dir, schema_text
from workers.runtime.loop import Runner
from workers.storage.migrations import available_migrations


def test_defaults_resolve_inside_the_package_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.band_router.policy_file.is_absolute()
    assert settings.band_router.policy_file.is_file()
    assert packaged_schemas_dir().is_absolute()
    assert [m.version for m in available_migrations()][:2] == ["0001", "0002"]


def test_schemas_by_file_name_or_record_name() -> None:
    assert avro_schema("training_example")["name"] == "TrainingExample"
    assert avro_schema("decision.avsc") == avro_schema("io.hitl.events.Decision")
    assert json.loads(schema_text("prediction")) == avro_schema("prediction")
    with pytest.raises(SchemaRegistryError, match="no event schema named 'nope'; known: decision, "):
        schema_text("nope")


def test_a_schema_folder_of_the_users_own_is_what_the_runtime_reads(tmp_path: Path) -> None:
    own = tmp_path / "schemas"
    shutil.copytree(packaged_schemas_dir(), own)
    runner = Runner(relay_spec("in", "out"), Settings(schemas_dir=own))
    try:
        assert runner.codec.registry.current(Prediction).path == own / "prediction.avsc"
    finally:
        runner.consumer.close()
