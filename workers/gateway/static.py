"""The widget's script and the demo page, read from the package (so they ship in the wheel)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

_STATIC = resources.files("workers.gateway") / "static"


@cache
def widget_script() -> bytes:
    return (_STATIC / "widget.js").read_bytes()


@cache
def demo_page() -> bytes:
    """The demo page, with a few answers of the bundled sample (static/demo_answers.json)."""
    answers = json.loads((_STATIC / "demo_answers.json").read_text(encoding="utf-8"))
    # Inside a <script> element, "</" would end it early.
    embedded = json.dumps(answers, ensure_ascii=False).replace("</", "<\\/")
    return (_STATIC / "demo.html").read_text(encoding="utf-8").replace("__ANSWERS__", embedded).encode()
