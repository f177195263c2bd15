"""Facts the deploy reads: each a pure pair, `command()` and `process(output)`, the parsing in `parse_*`.

Facts about the factory user's world (PM2, tmux, its git clone) run as root and switch
with `runuser` only when the user exists: on a fresh host, planning must not fail.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyinfra.api.facts import FactBase

from factoryctl.core.paths import tmux_socket
from factoryctl.rules.detect import DIRS as DETECT_DIRS
from factoryctl.rules.detect import FILES as DETECT_FILES

from . import layout

_IF_USER = f"id -u {layout.USER} >/dev/null 2>&1"


def as_user(*argv: str) -> str:
    """A shell line that runs argv as the factory user (the deploy runs as root)."""
    return shlex.join(["runuser", "-u", layout.USER, "--", *argv])


def pm2(*args: str) -> str:
    """A pm2 command run as the factory user in a clean, fixed environment.

    Clean because `pm2 start` copies the caller's environment into every app, and
    `pm2 save` writes it to disk.
    """
    return as_user(
        # The umask reaches the PM2 daemon a first command starts, and so the apps' log files it creates.
        "sh", "-c", f'umask {layout.UMASK} && exec "$@"', "factory-pm2",
        "env", "-i", f"HOME={layout.HOME}", "PATH=/usr/local/bin:/usr/bin:/bin",
        f"PM2_HOME={layout.PM2_HOME}", "pm2", *args,
    )  # fmt: skip


def parse_npm_ls(lines: Iterable[str]) -> dict[str, str]:
    """`npm ls -g --depth=0 --json` -> {package: version}; scoped names (@scope/name) included."""
    text = "\n".join(lines).strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, dict):
        return {}
    return {name: str(info.get("version", "")) for name, info in deps.items() if isinstance(info, dict)}


def parse_pm2_jlist(lines: Iterable[str]) -> dict[str, str]:
    """`pm2 jlist` -> {app name: status}; the JSON is the last line that starts with '['."""
    found: list[Any] = []
    for line in lines:
        if line.startswith("["):
            try:
                found = json.loads(line)
            except ValueError:
                continue
    apps: dict[str, str] = {}
    for app in found if isinstance(found, list) else []:
        if isinstance(app, dict) and "name" in app:
            apps[str(app["name"])] = str((app.get("pm2_env") or {}).get("status", "unknown"))
    return apps


def parse_pm2_dump(lines: Iterable[str]) -> list[str] | None:
    """PM2's dump file (what `pm2 save` wrote) -> the saved app names; None when there is none."""
    text = "\n".join(lines).strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return sorted(str(app.get("name")) for app in data if isinstance(app, dict)) if isinstance(data, list) else None


class NpmGlobalPackages(FactBase[dict[str, str]]):
    """Globally installed npm packages, scoped ones too: {name: version}.

    pyinfra's own NpmPackages parses `npm list`'s tree with a regex that never matches a
    scoped name (@anthropic-ai/claude-code), so its operation reinstalls on every run.
    """

    default = dict

    def requires_command(self) -> str:
        return "npm"

    def command(self) -> str:
        return "npm ls -g --depth=0 --json 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_npm_ls(output)


class Pm2Apps(FactBase[dict[str, str] | None]):
    """The factory user's PM2 apps and their status; None when its PM2 daemon is not running.

    Checks the daemon first: `pm2 jlist` would start one, and a fact must change nothing.
    """

    def command(self) -> str:
        home = shlex.quote(layout.PM2_HOME)
        alive = f'[ -S {home}/rpc.sock ] && kill -0 "$(cat {home}/pm2.pid 2>/dev/null)" 2>/dev/null'
        return f"if {_IF_USER} && command -v pm2 >/dev/null && {alive}; then {pm2('jlist')}; else echo DOWN; fi"

    def process(self, output: list[str]) -> dict[str, str] | None:
        if any(line.strip() == "DOWN" for line in output):
            return None
        return parse_pm2_jlist(output)


class Pm2Saved(FactBase[list[str] | None]):
    """The app names in PM2's dump (what comes back at boot); None when nothing was saved."""

    def command(self) -> str:
        return f"cat {shlex.quote(layout.PM2_HOME)}/dump.pm2 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str] | None:
        return parse_pm2_dump(output)


class TmuxSessions(FactBase[list[str]]):
    """The factory user's tmux sessions (names), empty when none or no tmux server runs."""

    default = list

    def command(self) -> str:
        ls = as_user("tmux", "-L", tmux_socket(Path(layout.FACTORY_HOME)), "list-sessions", "-F", "#{session_name}")
        return f"if {_IF_USER} && command -v tmux >/dev/null; then {ls} 2>/dev/null || true; fi"

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


class GitOrigin(FactBase[str | None]):
    """The origin URL of the factory's clone at `path`; None when there is no clone."""

    def command(self, path: str) -> str:
        get = as_user("git", "-C", path, "remote", "get-url", "origin")
        return f"if {_IF_USER} && [ -d {shlex.quote(path)}/.git ]; then {get} 2>/dev/null || echo; else echo NONE; fi"

    def process(self, output: list[str]) -> str | None:
        text = "\n".join(output).strip()
        return None if text == "NONE" else text


class RepoFiles(FactBase[dict[str, str]]):
    """The files check detection reads (factoryctl.rules.detect.FILES) from the clone's HEAD at `path`.

    Empty when there is no clone yet. Each file is printed as a header line with its name and
    its size, then its bytes, base64-encoded on one line (the text may hold anything).
    """

    default = dict

    def command(self, path: str) -> str:
        q = shlex.quote(path)
        parts = []
        for name in DETECT_FILES:
            obj = f"HEAD:{name.rstrip('/')}"
            exists = as_user("git", "-C", path, "cat-file", "-e", obj)
            show = as_user("git", "-C", path, "cat-file", "-p", obj)
            header = shlex.quote("@@" + name)
            parts.append(f"if {exists} 2>/dev/null; then echo {header}; "
                         f"{show} 2>/dev/null | head -c 1000000 | base64 -w0; echo; fi")  # fmt: skip
        for folder in DETECT_DIRS:  # each CI file in it (at most 50), named by its path
            listing = as_user("git", "-C", path, "ls-tree", "--name-only", "HEAD", "--", folder)
            show = as_user("git", "-C", path, "cat-file", "-p")
            parts.append(f'{listing} 2>/dev/null | head -n 50 | while IFS= read -r f; do echo "@@$f"; '
                         f'{show} "HEAD:$f" 2>/dev/null | head -c 1000000 | base64 -w0; echo; done')  # fmt: skip
        return f"if {_IF_USER} && [ -d {q}/.git ]; then {'; '.join(parts)}; fi"

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_repo_files(output)


def parse_repo_files(output: list[str]) -> dict[str, str]:
    """`@@NAME` lines each followed by one line of base64 (a folder's listing is not needed: "")."""
    out: dict[str, str] = {}
    name = None
    for line in output:
        if line.startswith("@@"):
            name = line[2:].strip()
            out[name] = ""
        elif name is not None:
            try:
                out[name] = "" if name.endswith("/") else base64.b64decode(line.strip()).decode("utf-8", "replace")
            except ValueError:
                out[name] = ""
            name = None
    return out


class HasSystemd(FactBase[bool]):
    """Whether systemd runs the host (PID 1): PM2's boot unit needs it."""

    def command(self) -> str:
        return "if [ -d /run/systemd/system ]; then echo yes; else echo no; fi"

    def process(self, output: list[str]) -> bool:
        return "yes" in (line.strip() for line in output)


# The smallest sandboxed call the runtime makes: a PID namespace, the system read-only.
SANDBOX_PROBE = ("bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                 "--die-with-parent", "--", "true")  # fmt: skip


class SandboxWorks(FactBase[str]):
    """ "ok" when the factory user can run bubblewrap here, else why not (bwrap missing, no namespaces)."""

    def command(self) -> str:
        probe = as_user(*SANDBOX_PROBE)
        return f"{_IF_USER} && command -v bwrap >/dev/null && {probe} >/dev/null 2>&1 && echo ok || echo no"

    def process(self, output: list[str]) -> str:
        return "ok" if "ok" in (line.strip() for line in output) else "no"


def parse_db_role(lines: Iterable[str]) -> dict[str, str] | None:
    """`role|VERIFIER` and `owner|NAME` lines -> {"role": ..., "owner": ...}; None when PostgreSQL
    is not installed or not answering (planning on a fresh gate)."""
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("|")
        if line.strip() in ("NONE", "DOWN"):
            return None
        if sep and key in ("role", "owner"):
            out[key] = value
    return out


class DbRole(FactBase[dict[str, str] | None]):
    """The gate's PostgreSQL: the factory role's stored password verifier (never a password) and
    the owner of its database; keys absent when they do not exist; None when PostgreSQL is not there."""

    def command(self, role: str, database: str) -> str:
        sql = (
            f"SELECT 'role|' || coalesce(rolpassword, '') FROM pg_authid WHERE rolname = '{role}' "
            f"UNION ALL SELECT 'owner|' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}'"
        )
        psql = shlex.join(["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", "postgres", "-c", sql])
        there = "command -v psql >/dev/null && id -u postgres >/dev/null 2>&1"
        return f"if {there}; then cd / && {{ {psql} 2>/dev/null || echo DOWN; }}; else echo NONE; fi"

    def process(self, output: list[str]) -> dict[str, str] | None:
        return parse_db_role(output)
