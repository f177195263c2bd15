"""Shared fixtures: a FACTORY_HOME in tmp_path with no secrets from the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from factoryctl.adapters.tmux import Tmux
from factoryctl.core.paths import tmux_socket
from factoryctl.jobs.context import Context
from tests.support.postgres import INSTALL, PgServer, server_bin

pytest_plugins = ["tests.plugins.no_skips_in_ci"]
HOST_TESTS = "tests/host/"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The xdist workers share the tests one by one, but for the host tests: one worker runs them
    all, in order, on its one sandbox host (xdist's own `loadgroup` no longer groups under pytest 9,
    whose node ids it cannot rename)."""
    from xdist.scheduler import LoadScopeScheduling

    class HostTestsTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "host" if nodeid.startswith(HOST_TESTS) else nodeid

    return HostTestsTogether(config, log)


@pytest.fixture
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """pytest's own tmp_path; after the test, the tmux server of any factory home made in it stops.

    A job under test may start sessions (the doctor revives a dead pane, the scheduler starts
    missing ones); left running, their loops would load the rest of the suite for good."""
    yield tmp_path
    for folder in [tmp_path, *tmp_path.glob("*/"), *tmp_path.glob("*/*/")]:
        tmux = Tmux(tmux_socket(folder))
        socket = tmux.socket_file()
        if socket is not None and socket.exists():
            tmux.kill_server()


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the whole session (a cluster in a temp dir, a unix socket)."""
    bindir = server_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL's server binaries (initdb, pg_ctl) are missing: {INSTALL}")
    server = PgServer(bindir).start()
    yield server
    server.remove()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new empty database on the session's server."""
    return pg_server.fresh_database()
