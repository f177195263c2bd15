"""Settings as TOML text: `factoryctl config show` and the factory.toml `factoryctl init` writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def to_toml(data: Mapping[str, Any]) -> str:
    """Render settings as TOML (tables, arrays of tables); enough for factory.toml's shape."""
    lines: list[str] = []
    for section, values in data.items():
        if isinstance(values, list):
            for item in values:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items() if v is not None]
                lines.append("")
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """One TOML value (bool, number, string, a list or an inline table of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):  # an inline table: [fleet] workers = { w1 = 2 }
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")
