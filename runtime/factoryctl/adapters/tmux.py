"""The tmux adapter: list, start and kill sessions on one tmux server.

Each factory has its own tmux server: the socket named after its FACTORY_HOME
(`Paths.tmux_socket`), so two factories on one machine never see each other's sessions.
FACTORY_TMUX_SOCKET names another: a plain name is a socket name (`tmux -L NAME`),
anything with a slash a socket path (`tmux -S PATH`). Tests give every test its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from factoryctl.adapters.runner import Completed, run
from factoryctl.core.defaults import TMUX_SOCKET_ENV, TMUX_TIMEOUT_S
from factoryctl.core.errors import FactoryError
from factoryctl.core.facts import Pane

_FORMAT = "#{session_name}\t#{pane_pid}\t#{pane_dead}\t#{session_created}"
# No server, or one whose last session just ended (it says "no current target" while it exits).
_NO_SERVER = (
    "no server running",
    "error connecting to",
    "no sessions",
    "no current target",
    "server exited unexpectedly",
)


def parse_panes(text: str) -> dict[str, Pane]:
    """`list-panes -a -F _FORMAT` output as {session name: its first pane}."""
    out: dict[str, Pane] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        name, pid, dead, created = parts
        pane = Pane(name, int(pid) if pid.isdigit() else 0, dead == "1", int(created) if created.isdigit() else 0)
        out.setdefault(name, pane)
    return out


def socket_args(socket: str | None) -> list[str]:
    if not socket:
        return []
    return ["-S", socket] if "/" in socket else ["-L", socket]


class Tmux:
    def __init__(self, socket: str | None = None, *, runner: Callable[..., Completed] = run) -> None:
        self.socket = socket
        self.runner = runner

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, default: str | None = None) -> Tmux:
        """FACTORY_TMUX_SOCKET's server if set, else `default` (the factory's own socket name)."""
        env = os.environ if environ is None else environ
        return cls(env.get(TMUX_SOCKET_ENV, "").strip() or default)

    def argv(self, *args: str) -> list[str]:
        return ["tmux", *socket_args(self.socket), *args]

    def _run(self, *args: str) -> Completed:
        return self.runner(self.argv(*args), timeout=TMUX_TIMEOUT_S)

    def panes(self) -> dict[str, Pane]:
        """Every session on the server (none when no server runs)."""
        done = self._run("list-panes", "-a", "-F", _FORMAT)
        if not done.ok:
            if any(marker in done.stderr for marker in _NO_SERVER):
                return {}
            raise FactoryError(f"tmux list-panes failed: {done.tail(200)}")
        return parse_panes(done.stdout)

    def new_session(self, name: str, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> bool:
        """Start `argv` (no shell) in a detached session; False if the session already exists."""
        extra = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        done = self._run("new-session", "-d", "-s", name, "-c", str(cwd), "-x", "200", "-y", "50", *extra,
                         "--", *argv)  # fmt: skip
        if done.ok:
            return True
        if "duplicate session" in done.stderr:
            return False
        raise FactoryError(f"tmux could not start session {name}: {done.tail(200)}")

    def capture(self, name: str, lines: int) -> str:
        """The last `lines` lines of a session's first pane ("" when it has none)."""
        done = self._run("capture-pane", "-p", "-J", "-t", f"={name}:", "-S", f"-{max(1, lines)}")
        if not done.ok:
            return ""
        return "\n".join(done.stdout.rstrip("\n").splitlines()[-lines:]) if lines > 0 else ""

    def kill_session(self, name: str) -> None:
        self._run("kill-session", "-t", f"={name}")

    def attach_argv(self, name: str) -> list[str]:
        """The command a person runs to watch a session (detach again with Ctrl-b d)."""
        return self.argv("attach-session", "-t", f"={name}")

    def socket_file(self) -> Path | None:
        """Where this server's socket lives (tmux's own rule for -L names); None for the default."""
        if not self.socket:
            return None
        if "/" in self.socket:
            return Path(self.socket)
        return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / self.socket

    def kill_server(self) -> None:
        """Stop a private server and remove its socket file (tmux leaves it behind).

        Never the default server: that one holds people's own sessions too.
        """
        path = self.socket_file()
        if path is None:
            raise FactoryError("refusing to kill the default tmux server; name a private one (FACTORY_TMUX_SOCKET)")
        self._run("kill-server")
        path.unlink(missing_ok=True)
