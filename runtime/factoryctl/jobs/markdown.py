"""Untrusted text in the standup transcripts and doctor reports: shown as data, never as Markdown.

Agent answers, pane lines and reasons may hold Markdown, HTML or fences of their own; these
helpers escape a line, or fence a block with a fence longer than any inside it.
"""

from __future__ import annotations

import re

# Inline Markdown and HTML; our lines start with our own "- " so list markers need no escape.
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def escape(text: str) -> str:
    """One line of plain text: Markdown and HTML characters escaped, line breaks flattened."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def fence(text: str, info: str = "text") -> str:
    """A fenced block that no backtick run inside `text` can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"
