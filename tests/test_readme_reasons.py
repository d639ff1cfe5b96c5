"""The README's table of dead-letter reasons is the registry's, reason for reason."""

from __future__ import annotations

import re

from tests.support.services import REPO_DIR
from workers.reasons import DESCRIPTIONS, Reason


def test_the_readme_lists_every_dead_letter_reason_with_its_description() -> None:
    text = (REPO_DIR / "README.md").read_text()
    table = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (.+?) \|$", text, flags=re.MULTILINE))
    assert {reason.value: DESCRIPTIONS[reason] for reason in Reason}.items() <= table.items()
    assert set(DESCRIPTIONS) == set(Reason)
