"""factoryctl reads the deploy's 0600 secrets file for what the environment lacks (a job started by hand)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from factoryctl.core.envfile import fill_environ, read_env_file

TEXT = """# The factory's secrets
ANTHROPIC_API_KEY='sk-ant-123'
ANTHROPIC_BASE_URL='http://127.0.0.1:8082'
FACTORY_HTTP_TOKEN='it'"'"'s secret'
not a line
BAD='unclosed
"""


def test_the_deploys_sh_quoting_is_read_back() -> None:
    assert read_env_file(TEXT) == {
        "ANTHROPIC_API_KEY": "sk-ant-123", "ANTHROPIC_BASE_URL": "http://127.0.0.1:8082",
        "FACTORY_HTTP_TOKEN": "it's secret",
    }  # fmt: skip


def test_only_known_names_the_environment_lacks_are_filled(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text(TEXT)
    path.chmod(0o600)
    env = {"ANTHROPIC_API_KEY": "from-the-environment"}
    assert fill_environ(path, ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"), env) == ["ANTHROPIC_BASE_URL"]
    assert env == {"ANTHROPIC_API_KEY": "from-the-environment", "ANTHROPIC_BASE_URL": "http://127.0.0.1:8082"}


@pytest.mark.parametrize("how", ["readable by others", "a symlink", "missing"])
def test_a_file_others_could_read_or_plant_is_ignored(tmp_path: Path, how: str) -> None:
    real = tmp_path / "real.env"
    real.write_text(TEXT)
    real.chmod(0o644 if how == "readable by others" else 0o600)
    path = tmp_path / "secrets.env"
    if how == "a symlink":
        path.symlink_to(real)
    elif how == "readable by others":
        path = real
    env: dict[str, str] = {}
    assert fill_environ(path, ("ANTHROPIC_API_KEY",), env) == [] and env == {}
    assert os.environ is not env
