"""Reading factory.toml (a missing file means all defaults) and writing it back out.

A wrong key or value is one ConfigError naming the file, the key's dotted name, what is wrong
and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from factoryctl.core.config import Settings
from factoryctl.core.errors import ConfigError


def load_settings(path: Path) -> Settings:
    """Read and validate factory.toml; a missing file means all defaults."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: nested too deeply to read; factory.toml needs no nesting past a few levels"
        ) from None
    return settings_from_mapping(data, source=str(path))


def settings_from_mapping(data: Mapping[str, Any], *, source: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {first_problem(exc, Settings)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to validate") from None


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json")


def first_problem(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first problem pydantic found, in words (an unknown key lists the keys its table allows)."""
    err = exc.errors(include_url=False)[0]
    loc = err["loc"]
    key = key_name(loc)
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(root, loc[:-1])
        where = f"in [{key_name(loc[:-1])}]" if loc[:-1] else "at the top level"
        return f"unknown key {key!r} {where}; allowed: {', '.join(allowed)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    msg = msg.replace("Input should be", "must be")
    got = err.get("input")
    # A URL may carry a password: the error says what is wrong with it, never echoes it.
    secret = tuple(loc) == ("state", "url")
    shown = "" if isinstance(got, dict | list) or got is None or secret else f" (got {got!r})"
    return f"{key}: {msg}{shown}"


def key_name(loc: tuple[int | str, ...]) -> str:
    """`checks[0].name` for ("checks", 0, "name")."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def allowed_keys(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at `loc` allows."""
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else annotation  # type: ignore[assignment]
    return list(model.model_fields)
