"""Fixtures for the integration tests: a private tmux server per test."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator

import psutil
import pytest

from factoryctl.adapters.tmux import Tmux
from factoryctl.core.defaults import TMUX_SOCKET_ENV
from tests.support.messages_standin import Server, client_env


def stop_all(server: Tmux) -> None:
    """SIGTERM every loop (they end their cycle cleanly), wait, then kill the server."""
    procs = []
    for pane in server.panes().values():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pane.pid)
            proc.terminate()
            procs.append(proc)
    psutil.wait_procs(procs, timeout=20)
    server.kill_server()


@pytest.fixture
def tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tmux]:
    """A private tmux server for this test; its loops are stopped and the server killed after."""
    server = Tmux(f"factory-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv(TMUX_SOCKET_ENV, server.socket or "")
    yield server
    stop_all(server)


@pytest.fixture
def messages_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The Messages API stand-in on 127.0.0.1, and the environment that points the real `claude` at it."""
    if shutil.which("claude") is None:
        pytest.skip("the real `claude` CLI is not installed: npm install -g @anthropic-ai/claude-code (.ci/run does)")
    server = Server(0, {"plays": []}).start()
    for name, value in client_env(server.url).items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()
