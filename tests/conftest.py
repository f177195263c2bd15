"""Shared fixtures: a FACTORY_HOME in tmp_path with no secrets from the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from factoryctl.jobs.context import Context

pytest_plugins = ["tests.plugins.no_skips_in_ci"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty FACTORY_HOME; secrets are cleared so nothing leaks in from the machine."""
    path = tmp_path / "factory"
    path.mkdir()
    monkeypatch.setenv("FACTORY_HOME", str(path))
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "TELEGRAM_BOT_TOKEN", "FACTORY_HTTP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield path


@pytest.fixture
def ctx(home: Path) -> Context:
    return Context.load(home)
