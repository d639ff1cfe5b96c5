"""The routing policy: review bands and audit rates per task, overridable per model, version and label.

A policy is a TOML file (see `deploy/policies/bands.toml`):

    version = "2026-03-01.1"

    [tasks.moderation]                  # the task's band and audit rate
    low = 0.4
    high = 0.8
    audit_rate = 0.02

    [tasks.moderation.labels.self_harm]                         # a label, whatever the model
    [tasks.moderation.models.toxicity-bert]                     # a model, any version
    [tasks.moderation.models.toxicity-bert.labels.spam]         # a label of that model
    [tasks.moderation.models.toxicity-bert.versions."2.3.1"]    # one version of the model
    [tasks.moderation.models.toxicity-bert.versions."2.3.1".labels.spam]

    [default]                           # optional: tasks not listed; without it they are dead-lettered

A task's band defaults to low 0.4, high 0.8, its audit rate to 0. An override sets a band (both
`low` and `high`, so that the band a decision reports was written in one place), an `audit_rate`,
or both. For a label of a prediction, the band comes from the first of these rules that sets one,
and the audit rate likewise:

    1. model + version + label
    2. model + label
    3. label
    4. model + version
    5. model
    6. the task (or `[default]`)

Rules naming the label come first: a label's band states what an error on that label costs, and an
override that recalibrates a whole model must not silently loosen it. To change a label's band for
one model, write the model + label rule.

A score at or above `high` is accepted, at or below `low` rejected, strictly between them reviewed.
When low == high there is no grey zone, and a score equal to both is accepted.

The version that decisions carry is the file's `version` plus the first 12 hex digits of the file's
SHA-256, so two different files never report the same policy version.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workers.contracts import Band, ModelInfo
from workers.contracts.base import Probability
from workers.contracts.plain import PlainBand
from workers.errors import ConfigError
from workers.validation_errors import describe

DEFAULT_LOW = 0.4
DEFAULT_HIGH = 0.8
DIGEST_LENGTH = 12


class PolicyError(ConfigError):
    """A policy file that cannot be read or is not a valid policy; the message says where and why."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_band(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"low {low} is above high {high}")


class Override(_Frozen):
    """A rule that overrides the task's band, its audit rate, or both."""

    low: Probability | None = None
    high: Probability | None = None
    audit_rate: Probability | None = None

    @model_validator(mode="after")
    def _whole_band(self) -> Self:
        if (self.low is None) != (self.high is None):
            raise ValueError("an override sets both low and high, or neither")
        _check_band(self.low, self.high)
        return self

    @property
    def band(self) -> Band | None:
        if self.low is None or self.high is None:
            return None
        return Band(low=self.low, high=self.high)


class LabelledOverride(Override):
    labels: dict[str, Override] = Field(default_factory=dict)


class ModelOverride(LabelledOverride):
    versions: dict[str, LabelledOverride] = Field(default_factory=dict)


class TaskPolicy(_Frozen):
    low: Probability = DEFAULT_LOW
    high: Probability = DEFAULT_HIGH
    audit_rate: Probability = 0.0
    labels: dict[str, Override] = Field(default_factory=dict)
    models: dict[str, ModelOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        _check_band(self.low, self.high)
        return self


class PolicyFile(_Frozen):
    """The policy file as written."""

    version: str = Field(min_length=1)
    default: TaskPolicy | None = None
    tasks: dict[str, TaskPolicy] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LabelRule:
    """What the policy says about one label of one prediction, and which rule said it."""

    band: Band
    band_source: str
    audit_rate: float
    plain_band: PlainBand = field(init=False, repr=False, compare=False)
    """The band as the fast path's decisions carry it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "plain_band", PlainBand(self.band.low, self.band.high))


@dataclass(frozen=True)
class Policy:
    """A validated policy, with the version decisions report and a memo of its lookups."""

    version: str
    spec: PolicyFile
    digest: str
    _memo: dict[tuple[str, str, str, str], LabelRule | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def rule_for(self, task: str, model: ModelInfo, label: str) -> LabelRule | None:
        """The rule for `label` of a `task` prediction by `model`; None for an unknown task and no default."""
        return self.rule_by_name(task, model.name, model.version, label)

    def rule_by_name(self, task: str, model: str, version: str, label: str) -> LabelRule | None:
        """`rule_for` with the model given by its name and version."""
        key = (task, model, version, label)
        try:
            return self._memo[key]
        except KeyError:
            pass
        rule = self._resolve(task, model, version, label)
        # Producers choose labels and versions: keep the memo from growing without bound.
        if len(self._memo) >= 100_000:
            self._memo.clear()
        self._memo[key] = rule
        return rule

    def _resolve(self, task: str, model: str, version: str, label: str) -> LabelRule | None:
        task_policy = self.spec.tasks.get(task)
        prefix = f"task:{task}"
        if task_policy is None:
            if self.spec.default is None:
                return None
            task_policy, prefix = self.spec.default, "default"
        band, band_source = Band(low=task_policy.low, high=task_policy.high), prefix
        audit_rate = task_policy.audit_rate
        for where, override in reversed(_overrides(task_policy, model, version, label)):
            # From least to most specific, so the most specific rule that sets a value wins.
            if override.band is not None:
                band, band_source = override.band, f"{prefix}/{where}"
            if override.audit_rate is not None:
                audit_rate = override.audit_rate
        return LabelRule(band, band_source, audit_rate)


def _overrides(task: TaskPolicy, model: str, version: str, label: str) -> list[tuple[str, Override]]:
    """The overrides that match, most specific first, each with its name for `band_source`."""
    model_rule = task.models.get(model)
    version_rule = model_rule.versions.get(version) if model_rule else None
    named_model, named_version = f"model:{model}", f"model:{model}@{version}"
    ordered: list[tuple[str, Override | None]] = [
        (f"{named_version}/label:{label}", version_rule.labels.get(label) if version_rule else None),
        (f"{named_model}/label:{label}", model_rule.labels.get(label) if model_rule else None),
        (f"label:{label}", task.labels.get(label)),
        (named_version, version_rule),
        (named_model, model_rule),
    ]
    return [(where, rule) for where, rule in ordered if rule is not None]


def parse_policy(content: bytes, origin: str = "policy") -> Policy:
    """A policy from the bytes of a TOML file; `origin` names the file in error messages."""
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(f"{origin}: not a TOML file: {error}") from error
    try:
        spec = PolicyFile.model_validate(data)
    except ValidationError as error:
        problems = describe(error, root="(file)")
        raise PolicyError(f"{origin}: invalid policy: {problems}") from error
    digest = hashlib.sha256(content).hexdigest()
    return Policy(version=f"{spec.version}+{digest[:DIGEST_LENGTH]}", spec=spec, digest=digest)


def load_policy(path: Path) -> Policy:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file: {error}") from error
    return parse_policy(content, str(path))
