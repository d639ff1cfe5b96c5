"""The policy file: which rule gives a label its band and audit rate, and which files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.band_router.conftest import policy_of
from workers.band_router.policy import DIGEST_LENGTH, PolicyError, load_policy, parse_policy
from workers.contracts import Band, ModelInfo

REPO_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policies" / "bands.toml"

LAYERED = """
version = "layered-1"

[tasks.moderation]
audit_rate = 0.01

[tasks.moderation.labels.hate]
low = 0.3
high = 0.7

[tasks.moderation.labels.quiet]
audit_rate = 0.5

[tasks.moderation.models.m]
low = 0.2
high = 0.9
audit_rate = 0.02

[tasks.moderation.models.m.labels.hate]
low = 0.1
high = 0.95

[tasks.moderation.models.m.versions."2"]
low = 0.25
high = 0.75
audit_rate = 0.03

[tasks.moderation.models.m.versions."2".labels.hate]
low = 0.45
high = 0.55
audit_rate = 0.04

[tasks.moderation.models.m.versions."3"]
audit_rate = 0.06

[tasks.moderation.models.n.versions."2"]
low = 0.2
high = 0.6
"""


@pytest.mark.parametrize(
    ("model", "version", "label", "band", "source", "audit_rate"),
    [
        # no override matches: the task's band, defaulting to 0.4 / 0.8
        ("other", "1", "toxic", (0.4, 0.8), "task:moderation", 0.01),
        ("other", "1", "hate", (0.3, 0.7), "task:moderation/label:hate", 0.01),
        ("m", "1", "toxic", (0.2, 0.9), "task:moderation/model:m", 0.02),
        ("m", "2", "toxic", (0.25, 0.75), "task:moderation/model:m@2", 0.03),
        ("m", "1", "hate", (0.1, 0.95), "task:moderation/model:m/label:hate", 0.02),
        ("m", "2", "hate", (0.45, 0.55), "task:moderation/model:m@2/label:hate", 0.04),
        # an override that sets only an audit rate leaves the band to less specific rules
        ("m", "3", "toxic", (0.2, 0.9), "task:moderation/model:m", 0.06),
        # a label's rule comes before the model's, for the audit rate as for the band
        ("m", "2", "quiet", (0.25, 0.75), "task:moderation/model:m@2", 0.5),
    ],
)
def test_the_most_specific_matching_rule_gives_the_band_and_audit_rate(
    model: str, version: str, label: str, band: tuple[float, float], source: str, audit_rate: float
) -> None:
    rule = policy_of(LAYERED).rule_for("moderation", ModelInfo(name=model, version=version), label)

    assert rule is not None
    assert rule.band == Band(low=band[0], high=band[1])
    assert rule.band_source == source
    assert rule.audit_rate == audit_rate


def test_a_label_rule_of_the_task_comes_before_a_model_version_rule() -> None:
    """Precedence: model+version+label > model+label > label > model+version > model > task."""
    policy = policy_of(LAYERED)
    labelled = policy.rule_for("moderation", ModelInfo(name="n", version="2"), "hate")
    other_label = policy.rule_for("moderation", ModelInfo(name="n", version="2"), "toxic")

    assert labelled is not None
    assert other_label is not None
    assert labelled.band_source == "task:moderation/label:hate"
    assert other_label.band_source == "task:moderation/model:n@2"


def test_an_unknown_task_has_no_rule_unless_the_policy_has_a_default() -> None:
    model = ModelInfo(name="m", version="1")
    assert policy_of(LAYERED).rule_for("translation", model, "x") is None

    with_default = policy_of(LAYERED + "\n[default]\nhigh = 0.9\n[default.labels.x]\nlow = 0.1\nhigh = 0.2\n")
    rule = with_default.rule_for("translation", model, "y")
    assert rule is not None
    assert (rule.band, rule.band_source) == (Band(low=0.4, high=0.9), "default")
    labelled = with_default.rule_for("translation", model, "x")
    assert labelled is not None
    assert labelled.band_source == "default/label:x"


def test_the_version_names_the_file_and_its_content() -> None:
    one = policy_of('version = "v1"\n')
    edited = policy_of('version = "v1"\n[tasks.a]\n')

    assert one.version.startswith("v1+")
    assert len(one.version) == len("v1+") + DIGEST_LENGTH
    assert one.version != edited.version
    assert policy_of('version = "v1"\n').version == one.version


def test_the_example_policy_in_the_repository_is_valid() -> None:
    policy = load_policy(REPO_POLICY)
    rule = policy.rule_for("moderation", ModelInfo(name="toxicity-bert", version="3.0.0"), "spam")

    assert rule is not None
    assert rule.band_source == "task:moderation/model:toxicity-bert@3.0.0/label:spam"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "version = 'v'\n[tasks.t]\nlow = 0.9\nhigh = 0.2",
            "tasks.t: Value error, low 0.9 is above high 0.2",
        ),
        ("version = 'v'\n[tasks.t]\nhigh = 1.5", "tasks.t.high: Input should be less than or equal to 1"),
        ("version = 'v'\n[tasks.t]\nlow = -0.1", "tasks.t.low: Input should be greater than or equal to 0"),
        ("version = 'v'\n[tasks.t]\nlow = nan", "tasks.t.low: Input should be a finite number"),
        (
            "version = 'v'\n[tasks.t]\naudit_rate = 2",
            "tasks.t.audit_rate: Input should be less than or equal",
        ),
        ("version = 'v'\n[tasks.t]\nhigh = 'high'", "tasks.t.high: Input should be a valid number"),
        (
            "version = 'v'\n[tasks.t.labels.spam]\nlow = 0.3",
            "tasks.t.labels.spam: Value error, an override sets both low and high, or neither",
        ),
        (
            "version = 'v'\n[tasks.t.models.m.versions.'1'.labels.x]\nlow = 0.8\nhigh = 0.7",
            "tasks.t.models.m.versions.1.labels.x: Value error, low 0.8 is above high 0.7",
        ),
        ("version = 'v'\n[tasks.t]\nhihg = 0.9", "tasks.t.hihg: Extra inputs are not permitted"),
        ("[tasks.t]\nhigh = 0.9", "version: Field required"),
        ("version = ''", "version: String should have at least 1 character"),
        ("version = 'v'\n[tasks.t\n", "not a TOML file"),
        ("version = 'v'\n[default]\nlow = 0.85", "default: Value error, low 0.85 is above high 0.8"),
    ],
)
def test_an_invalid_policy_is_refused_with_where_and_why(text: str, problem: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(text.encode(), "bands.toml")

    assert problem in str(refused.value)
    assert str(refused.value).startswith("bands.toml: ")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "absent.toml")


def test_a_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(PolicyError, match="not a TOML file"):
        parse_policy(b"version = '\xff'", "bands.toml")
