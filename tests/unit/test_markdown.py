"""Untrusted text in transcripts and reports stays data."""

from __future__ import annotations

import re

from factoryctl.jobs.markdown import escape, fence


def test_escape_neutralises_markdown_and_html() -> None:
    text = "<img src=x onerror=alert(1)> [link](http://evil) **bold** `code` # heading\nnext & more"
    out = escape(text)
    for special in "<>[]*`#&":
        assert re.search(rf"(?<!\\){re.escape(special)}", out) is None, special  # every one escaped
    assert "\n" not in out


def test_a_fence_cannot_be_closed_from_inside() -> None:
    block = fence("before\n```\n# not a heading\n````\nafter")
    opening = block.splitlines()[0]
    assert opening.startswith("`````") and block.endswith("\n" + opening.removesuffix("text"))
