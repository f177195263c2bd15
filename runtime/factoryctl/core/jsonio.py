"""Reading JSON from files anyone may have edited: nesting bombs and overflows are errors, not crashes.

`json.loads` raises RecursionError on a line of 100,000 `[`, and accepts a structure
nested hundreds deep that later code (rendering, re-encoding) then recurses into; numbers
like 1e400 become inf. Every reader of a state file, the log or agent output uses `loads`.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # no state file, event or agent answer is nested deeper than a few levels


def loads(text: str | bytes) -> Any:
    """Parsed JSON, or ValueError for bad JSON, nesting past MAX_DEPTH, NaN or an infinite number."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if depth(value) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is too large a number")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (without recursion: a bomb cannot crash it)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
