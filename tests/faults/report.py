"""The fault suite's table: one row per scenario, written to artifacts/faults.md and printed at the end."""

from __future__ import annotations

from dataclasses import dataclass

from tests.faults.pipeline import Verdict
from tests.support.services import REPO_DIR

REPORT = REPO_DIR / "artifacts" / "faults.md"
HEADER = (
    "| scenario | events in | outputs by kind | dead letters | lost | duplicated "
    "| redelivered, identical | redelivered, re-stamped | time to recover |"
)
OUTPUT_ORDER = (
    "decisions",
    "valid extractions",
    "feedback rows",
    "review tasks",
    "Argilla records",
    "resolutions",
    "training examples",
    "answers sent back",
)


@dataclass
class Row:
    scenario: str
    verdict: Verdict
    recovered_seconds: float
    note: str = ""

    def markdown(self) -> str:
        v = self.verdict
        outputs = ", ".join(f"{name} {v.outputs[name]}" for name in OUTPUT_ORDER if v.outputs.get(name))
        note = f" ({self.note})" if self.note else ""
        return (
            f"| {self.scenario}{note} | {v.events} | {outputs} | {v.dead_letters} | {len(v.lost)} "
            f"| {len(v.duplicated)} | {v.redelivered_identical} | {v.redelivered_restamped} "
            f"| {self.recovered_seconds:.0f} s |"
        )


ROWS: list[Row] = []


def table() -> str:
    lines = [HEADER, "|" + "---|" * 9]
    lines += [row.markdown() for row in ROWS]
    return "\n".join(lines) + "\n"


def write() -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        "# Fault suite\n\nOne row per scenario; counts are that scenario's own events. "
        "Time to recover: from the end of the fault to every event fed so far settled.\n\n" + table()
    )
