"""A factory over several hosts: session names, where sessions run, the config's fleet rules,
lost sessions, and the waiting line of an outage. Pure: data in, data out."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factoryctl.core.clock import format_ts
from factoryctl.core.config import Settings
from factoryctl.core.configfile import load_settings, settings_as_dict
from factoryctl.core.errors import ConfigError, StateUnreachable
from factoryctl.core.fleet import fleet_sessions, host_of, is_session_name, local_sessions, session_order
from factoryctl.core.tomltext import to_toml
from factoryctl.jobs.outage import Outage
from factoryctl.jobs.sessions import session_of, tmux_name
from factoryctl.rules.lost import lost_reason, lost_sessions
from factoryctl.rules.words import span

URL = "postgresql://factory@gate:5432/factory"
FLEET = f'[state]\nurl = "{URL}"\n[fleet]\nworkers = {{ w1 = 2, w2 = 3 }}\n'


def settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "factory.toml"
    path.write_text(text)
    return load_settings(path)


def test_fleet_sessions_are_named_by_host_and_sorted_by_host_then_number() -> None:
    assert fleet_sessions({"w1": 2, "w2": 1}) == ("w1-s1", "w1-s2", "w2-s1")
    names = ["w2-s1", "w1-s10", "s10", "w1-s9", "s2", "scratch"]
    assert sorted(names, key=session_order) == ["s2", "s10", "w1-s9", "w1-s10", "w2-s1", "scratch"]


@pytest.mark.parametrize(
    ("name", "host", "valid"),
    [("s3", "", True), ("w1-s3", "w1", True), ("gate7-s12", "gate7", True), ("s0", "", False),
     ("W1-s1", "", False), ("w1.s1", "", False), ("w1-s", "", False), ("1w-s1", "", False),
     ("abcdefghijklmnopq-s1", "", False), ("w1-s1-s2", "", False)],
)  # fmt: skip
def test_a_session_name_says_its_host(name: str, host: str, valid: bool) -> None:
    assert is_session_name(name) is valid
    assert host_of(name) == host


def test_tmux_sessions_of_both_forms_belong_to_the_factory() -> None:
    assert session_of(tmux_name("w1-s2")) == "w1-s2" and session_of("factory-s3") == "s3"
    assert session_of("factory-w1-x") is None and session_of("other-s1") is None and session_of("factory-") is None


def test_each_role_runs_its_own_sessions() -> None:
    names = fleet_sessions({"w1": 2, "w2": 1})
    assert local_sessions("worker", "w2", names) == ("w2-s1",)
    assert local_sessions("gate", "gate", names) == ()
    assert local_sessions("all", "", names) == names


def test_a_worker_config_names_every_session_of_the_fleet_and_runs_its_own(tmp_path: Path) -> None:
    s = settings(tmp_path, f'[factory]\nrole = "worker"\nhost = "w2"\n{FLEET}')
    assert s.session_names == ("w1-s1", "w1-s2", "w2-s1", "w2-s2", "w2-s3")
    assert s.local_sessions == ("w2-s1", "w2-s2", "w2-s3")
    assert s.fleet.lost_after_s == 120
    gate = settings(tmp_path, f'[factory]\nrole = "gate"\nhost = "gate"\n{FLEET}')
    assert gate.local_sessions == () and len(gate.session_names) == 5
    one = settings(tmp_path, "[factory]\nsessions = 3\n")
    assert one.session_names == one.local_sessions == ("s1", "s2", "s3") and one.factory.role == "all"


def test_the_fleet_keys_survive_a_round_trip(tmp_path: Path) -> None:
    s = settings(tmp_path, f'[factory]\nrole = "worker"\nhost = "w1"\n{FLEET}')
    text = to_toml(settings_as_dict(s))
    assert "workers = { w1 = 2, w2 = 3 }" in text
    assert tomllib.loads(text)["fleet"]["workers"] == {"w1": 2, "w2": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[factory]\nrole = "worker"\nhost = "w1"\n', "a worker host needs [state] url, [fleet] workers"),
        (f'[factory]\nrole = "gate"\n{FLEET}', "a gate host needs [factory] host"),
        (f'[factory]\nrole = "worker"\nhost = "w9"\n{FLEET}', "worker host 'w9' is not in [fleet] workers (w1, w2)"),
        ('[factory]\nhost = "Web-1"\n', "factory.host: host name 'Web-1' must be lower-case letters and digits"),
        ('[factory]\nhost = "abcdefghijklmnopq"\n', "at most 16 characters"),
        ('[fleet]\nworkers = { "1x" = 2 }\n', "fleet.workers: host name '1x'"),
        ("[fleet]\nworkers = { w1 = 0 }\n", "fleet.workers.w1"),
        ('[factory]\nrole = "boss"\n', "factory.role"),
        ("[fleet]\nlost_after_s = 5\n", "fleet.lost_after_s"),
    ],
)
def test_a_wrong_fleet_config_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, text)
    assert message in str(info.value) and "\n" not in str(info.value)


NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "said"), [(0, "0s"), (45, "45s"), (190, "3m 10s"), (7500, "2h 5m"),
                                               (3 * 86400 + 4 * 3600, "3d 4h")])  # fmt: skip
def test_a_span_reads_as_a_person_says_it(seconds: float, said: str) -> None:
    assert span(seconds) == said


def test_a_session_is_lost_only_past_the_bound_and_never_before_its_first_heartbeat() -> None:
    beat = {"heartbeat": format_ts(NOW - timedelta(seconds=190)), "host": "ip-10-0-0-5"}
    assert lost_reason("w1-s1", beat, NOW, 120) == "no heartbeat from host w1 for 3m 10s"
    assert lost_reason("w1-s1", beat, NOW, 200) is None
    assert lost_reason("s1", beat, NOW, 120) == "no heartbeat from host ip-10-0-0-5 for 3m 10s"
    assert lost_reason("w1-s1", {}, NOW, 120) is None and lost_reason("w1-s1", {"heartbeat": "x"}, NOW, 120) is None
    fresh = {"heartbeat": format_ts(NOW - timedelta(seconds=20))}
    assert lost_sessions({"w1-s1": beat, "w1-s2": fresh}, ["w1-s1", "w1-s2", "w2-s1"], NOW, 120) == {
        "w1-s1": "no heartbeat from host w1 for 3m 10s"
    }


def test_an_outage_is_said_once_with_a_bounded_backoff_and_its_end_once() -> None:
    said: list[str] = []
    outage = Outage("postgresql://factory@gate:5432/factory", said.append, "no cycle runs", cap_s=8)
    down = StateUnreachable(
        "the state database x is unreachable: connection refused", "the state database x is unreachable"
    )
    assert [outage.down(down) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    outage.up()
    outage.up()
    assert said == [
        "waiting for the shared state at postgresql://factory@gate:5432/factory: connection refused; no cycle runs",
        "the shared state at postgresql://factory@gate:5432/factory is back (after 6 tries); going on",
    ]
