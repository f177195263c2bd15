"""A skill file: a short technique and when to apply it, with where it came from.

Markdown with front matter (one `key: value` a line between `---` lines): its name, when
to apply it, the branch and commit it was learned from, when it was made, how often and
when it was last shown to an agent, and the sessions' discard rate when it appeared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{2,59}$")
FIELDS = ("name", "when", "source_branch", "source_commit", "created", "shown", "last_shown", "discard_rate")


@dataclass(frozen=True)
class Skill:
    name: str
    when: str
    body: str
    source_branch: str = ""
    source_commit: str = ""
    created: str = ""
    shown: int = 0
    last_shown: str = ""
    discard_rate: float | None = None  # the sessions' discard rate when it was made

    def render(self) -> str:
        values = {
            "name": self.name,
            "when": " ".join(self.when.split()),
            "source_branch": self.source_branch,
            "source_commit": self.source_commit,
            "created": self.created,
            "shown": str(self.shown),
            "last_shown": self.last_shown,
            "discard_rate": "" if self.discard_rate is None else f"{self.discard_rate:.3f}",
        }
        head = "\n".join(f"{k}: {values[k]}" for k in FIELDS)
        return f"---\n{head}\n---\n{self.body.strip()}\n"

    def prompt_text(self) -> str:
        """What an agent reads: when to apply it, then the technique."""
        when = " ".join(self.when.split())
        return f"When: {when}\n\n{self.body.strip()}" if when else self.body.strip()

    def marked_shown(self, ts: str) -> Skill:
        return replace(self, shown=self.shown + 1, last_shown=ts)


def parse_skill(text: str, fallback_name: str) -> Skill:
    """A skill file's front matter and body; a file without front matter is all body."""
    meta: dict[str, str] = {}
    body = text
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end > 0:
            for line in text[4:end].splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip() in FIELDS:
                    meta[key.strip()] = value.strip()
            body = text[end + 4 :].lstrip("\n")
    shown = meta.get("shown", "0")
    try:
        rate: float | None = float(meta["discard_rate"]) if meta.get("discard_rate") else None
    except ValueError:
        rate = None
    return Skill(
        name=meta.get("name") or fallback_name,
        when=meta.get("when", ""),
        body=body,
        source_branch=meta.get("source_branch", ""),
        source_commit=meta.get("source_commit", ""),
        created=meta.get("created", ""),
        shown=int(shown) if shown.isdigit() else 0,
        last_shown=meta.get("last_shown", ""),
        discard_rate=rate,
    )
