"""The reviewer's answer: one JSON object in a fixed schema, parsed strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from factoryctl.core import jsonio

RISKS = ("low", "medium", "high")
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


class InvalidVerdict(ValueError):
    """The reviewer's answer does not fit the schema; the message says how."""


@dataclass(frozen=True)
class ReviewerVerdict:
    approve: bool
    reasons: tuple[str, ...]
    risk: str
    issues: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "approve" if self.approve else "reject", "reasons": list(self.reasons),
                "risk": self.risk, "issues": list(self.issues)}  # fmt: skip


def _candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        found.append(text[start : end + 1])
    return found


def parse_verdict(text: str) -> ReviewerVerdict:
    """The verdict in a reviewer's result text (bare JSON, or JSON in a ``` fence)."""
    obj: Any = None
    for candidate in _candidates(text.strip()):
        try:
            obj = jsonio.loads(candidate)
            break
        except ValueError:
            continue
    if not isinstance(obj, dict):
        raise InvalidVerdict("no JSON object in the answer")
    verdict = obj.get("verdict")
    if verdict not in ("approve", "reject"):
        raise InvalidVerdict(f"verdict must be 'approve' or 'reject', got {verdict!r}")
    reasons = obj.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise InvalidVerdict("reasons must be a list of strings")
    if verdict == "reject" and not reasons:
        raise InvalidVerdict("a rejection needs at least one reason")
    risk = obj.get("risk", "medium")
    if risk not in RISKS:
        raise InvalidVerdict(f"risk must be one of {', '.join(RISKS)}, got {risk!r}")
    issues = obj.get("issues", [])
    if not isinstance(issues, list) or not all(isinstance(i, dict) for i in issues):
        raise InvalidVerdict("issues must be a list of objects")
    clean = tuple(
        {"file": str(i.get("file", "")), "line": i.get("line") if isinstance(i.get("line"), int) else None,
         "text": str(i.get("text", ""))[:500]}
        for i in issues[:50]
    )  # fmt: skip
    return ReviewerVerdict(verdict == "approve", tuple(r[:500] for r in reasons[:20]), risk, clean)
