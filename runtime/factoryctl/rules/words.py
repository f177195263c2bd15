"""Words for values a person reads: money, durations, counts, times, check results.

Shared by the event sentences (`rules/sentences.py`) and the screens that print figures
(`status`, `report`, `queue show`, the bot). Values come from files a person may have
edited, so each field is read with its type checked, and nothing prints `None`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# -- reading fields -----------------------------------------------------------------------


def field_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def field_num(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def field_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def field_map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def field_strs(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list | tuple):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


# -- saying numbers -----------------------------------------------------------------------


def money(usd: float | None) -> str:
    """`$0.12`; a cost under a cent is `$0.004` (under a tenth of one: `<$0.001`), not `$0.00`."""
    if usd is None:
        return ""
    if usd == 0 or usd >= 0.01:
        return f"${usd:.2f}"
    return f"${usd:.3f}" if usd >= 0.001 else "<$0.001"


def seconds(s: float | None) -> str:
    """A duration read at a glance: `0.1 s`, `14 s`, `3.5 min`, `2.0 h`."""
    if s is None or s < 0:
        return ""
    if s < 10:
        return f"{s:.1f} s"
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def span(s: float) -> str:
    """A longer duration as a person says it: `45s`, `3m 10s`, `2h 5m`, `3d 4h`."""
    s = max(0, int(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def when(ts: str) -> str:
    """`2026-12-05T10:55:06.123Z` -> `2026-12-05 10:55:06` (UTC)."""
    return f"{ts[:10]} {ts[11:19]}" if len(ts) >= 19 and ts[10:11] == "T" else ts


# -- checks --------------------------------------------------------------------------------


def check_counts(name: str, counts: Mapping[str, Any]) -> str:
    """One check's result in words: `pytest 3 passed, 1 failed`, `tsc no errors`, `mypy crashed (...)`."""
    if counts.get("crashed") is True:
        note = short(field_str(counts, "note"), 60)
        return f"{name} crashed" + (f" ({note})" if note else "")
    errors, failed = field_int(counts, "errors") or 0, field_int(counts, "failed") or 0
    passed, total = field_int(counts, "passed") or 0, field_int(counts, "total") or 0
    if total or passed or failed:
        return f"{name} {passed:,} passed" + (f", {failed:,} failed" if failed else "")
    return f"{name} " + (plural(errors, "error") if errors else "no errors")


def check_change(name: str, before: Mapping[str, Any], after: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """`pytest: failed 0 -> 1, tests 5 -> 6` (a count a run did not give: `none`)."""

    def count(counts: object, key: str) -> str:
        value = field_int(counts, key) if isinstance(counts, Mapping) else None
        return "none" if value is None else f"{value:,}"

    words = {"total": "tests"}
    return f"{name}: " + ", ".join(f"{words.get(k, k)} {count(before, k)} -> {count(after, k)}" for k in keys)


def checks_text(results: Mapping[str, Any]) -> str:
    """Every check's result in one phrase (what held or changed reads at a glance)."""
    return ", ".join(check_counts(str(n), c) for n, c in results.items() if isinstance(c, Mapping))


def short(text: str, limit: int = 80) -> str:
    """One line of at most `limit` characters (an ellipsis where it was cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
