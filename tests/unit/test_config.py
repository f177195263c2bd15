"""factory.toml: defaults, round trip, and one clear line for every kind of mistake."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from factoryctl.core.config import Settings, default_heavy_slots
from factoryctl.core.configfile import load_settings, settings_as_dict
from factoryctl.core.errors import ConfigError
from factoryctl.core.tomltext import to_toml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "factory.toml"
    path.write_text(text)
    return path


def test_missing_file_means_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "factory.toml")
    assert settings.factory.sessions == 8
    assert settings.session_names[0] == "s1" and settings.session_names[-1] == "s8"
    assert settings.agent.command[:3] == ["claude", "-p", "--model"]
    assert settings.agent.timeout_s == 1200
    assert settings.reviewer.timeout_s == 600
    assert settings.cycle.interval_s == 900
    assert settings.scheduler.max_ram_percent == 85
    assert settings.scheduler.heavy_slots == default_heavy_slots() == max(1, (os.cpu_count() or 2) // 2)
    assert settings.budget.daily_usd == 20.0
    assert settings.review.mode == "auto"
    assert settings.telegram.allowed_chat_ids == []
    assert settings.http.bind == "127.0.0.1:8787"


def test_design_example_loads_and_survives_a_round_trip(tmp_path: Path) -> None:
    text = """
[factory]
sessions = 3
[repo]
main = "trunk"
[[checks]]
name = "tsc"
command = ["npx", "tsc", "--noEmit"]
parser = "tsc"
heavy = true
[[checks]]
name = "todo"
command = ["grep", "-c", "TODO", "-r", "src"]
parser = "regex"
pattern = "(?P<errors>\\\\d+)"
[budget]
daily_usd = 5
[telegram]
allowed_chat_ids = [12345]
"""
    settings = load_settings(write(tmp_path, text))
    assert settings.factory.sessions == 3
    assert settings.checks[0].heavy and settings.checks[0].timeout_s == 900
    assert settings.budget.daily_usd == 5.0
    rendered = to_toml(settings_as_dict(settings))
    assert Settings.model_validate(tomllib.loads(rendered)) == settings


BAD = [
    ("[factory]\nsessions = 0\n", "factory.sessions: must be greater than or equal to 1 (got 0)"),
    ('[factory]\nsessions = "8"\n', "factory.sessions: must be a valid integer (got '8')"),
    ("[factory]\nsesions = 8\n", "unknown key 'factory.sesions' in [factory]; allowed: sessions"),
    ("[fatcory]\n", "unknown key 'fatcory' at the top level; allowed: factory, repo, agent"),
    ("[agent]\ncommand = []\n", "agent.command: List should have at least 1 item"),
    ("[agent]\ntimeout_s = -5\n", "agent.timeout_s: must be greater than 0 (got -5)"),
    ('[review]\nmode = "yolo"\n', "review.mode: must be 'auto' or 'human' (got 'yolo')"),
    ('[http]\nbind = "8787"\n', "http.bind: must be HOST:PORT, like 127.0.0.1:8787 (got '8787')"),
    ('[repo]\nbranch_prefix = "a b;rm"\n', "repo.branch_prefix: must be a plain git branch name"),
    ('[repo]\npath = "../elsewhere"\n', "repo.path: must be a path inside FACTORY_HOME"),
    (
        '[[checks]]\nname = "x"\ncommand = ["true"]\nparser = "nope"\n',
        "checks[0].parser: unknown parser 'nope'; allowed: tsc, vitest, jest, pytest, eslint, ruff, mypy, exitcode",
    ),
    ('[[checks]]\nname = "x"\ncommand = ["true"]\nparser = "regex"\n', "checks[0]: parser 'regex' needs a pattern"),
    (
        '[[checks]]\nname = "x"\ncommand = ["true"]\nparser = "exitcode"\n'
        '[[checks]]\nname = "x"\ncommand = ["false"]\nparser = "exitcode"\n',
        "checks: check names must be unique; repeated: x",
    ),
    (
        '[[checks]]\nname = "x"\ncommand = ["true"]\nparser = "regex"\npattern = "(?P<errors>\\\\d+"\n',
        "checks[0]: invalid regex pattern",
    ),
    ("[factory\nsessions = 8\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_config_is_one_line_naming_file_key_and_what_is_allowed(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
