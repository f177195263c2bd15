"""The deploy's own operations: facts in, commands out, only when something differs.

They exist where pyinfra's built-in operations are not idempotent for us (scoped npm
packages), would print a secret (`files.put` with `--diff`), or where the decision needs
the factory user's view of the host (PM2, tmux, its git clone). Each operation reads its
facts and hands them to a pure `*_commands` function (the unit tests call those).
Restarts take the operations whose change they follow: at planning those report whether
they will change, at run time whether they did, so `--dry` shows what a run would do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shlex
from collections.abc import Generator, Mapping, Sequence

from pyinfra.api.operation import OperationMeta, operation
from pyinfra.context import host
from pyinfra.facts.files import Directory, File, FileContents, Sha1File

from . import layout
from .facts import (
    SANDBOX_PROBE,
    DbRole,
    GitOrigin,
    NpmGlobalPackages,
    Pm2Apps,
    Pm2Saved,
    SandboxWorks,
    TmuxSessions,
    as_user,
    pm2,
)

Commands = Generator[str, None, None]
# An agent's tmux session: factory-s3 on a host alone, factory-w1-s3 on a worker of a fleet.
AGENT_SESSION = re.compile(r"^factory-([a-z][a-z0-9]{0,15}-)?s[1-9][0-9]*$")


def changed(metas: Sequence[OperationMeta]) -> bool:
    """Whether any of these operations changes something: planned (will) or run (did)."""
    return any(m.did_change() if m.is_complete() else m.will_change for m in metas)


# -- decisions (pure) ------------------------------------------------------------------


def npm_commands(installed: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    missing = [f"{name}@{version}" for name, version in wanted.items() if installed.get(name) != version]
    if not missing:
        return []
    return [shlex.join(["npm", "install", "-g", "--no-fund", "--no-audit", "--loglevel=error", *missing])]


def wheel_commands(
    installed_sha256: str | None, wheel: str, sha256: str, venv: str, marker: str, extras: tuple[str, ...] = ()
) -> list[str]:
    """Install the wheel (with `extras`, e.g. "postgres") unless exactly it is installed; the marker
    is written last, so an install that failed halfway is done again next time."""
    installed = sha256 + (f"+{','.join(extras)}" if extras else "")  # new extras: install again
    if installed_sha256 == installed:
        return []
    pip = [f"{venv}/bin/pip", "install", "--quiet", "--disable-pip-version-check"]
    with_extras = f"{wheel}[{','.join(extras)}]" if extras else wheel
    return [
        shlex.join([*pip, with_extras]),  # with its dependencies (and the extras'), from the index
        shlex.join([*pip, "--no-deps", "--force-reinstall", wheel]),  # the version stays while the code changes
        f"echo {shlex.quote(installed)} > {shlex.quote(marker)}",
    ]


def secret_file_commands(info: Mapping[str, object] | None, same_content: bool, dest: str, owner: str) -> list[str]:
    """Nothing when the file holds the secret, 0600, owned by `owner`; else write it whole. The
    content arrives on stdin: never on a command line, in a world-readable temp file, or in
    pyinfra's --diff output; the file is 0600 before it holds a byte. The one command reads its
    stdin: a command that did not (a chown for a wrong owner alone) broke the pipe or the ssh
    channel the secret was written to."""
    if same_content and info and f"{info['user']}:{info['group']}" == owner and info["mode"] == 600:
        return []
    q = shlex.quote
    tmp = q(f"{dest}.tmp")
    return [f"umask 077 && cat > {tmp} && chown {owner} {tmp} && chmod 600 {tmp} && mv -f {tmp} {q(dest)}"]


def clone_commands(
    origin: str | None, url: str, branch: str, dest: str, ssh_command: str | None, git_config: Sequence[str]
) -> list[str]:
    """Clone as the factory user; a clone with another origin gets the new URL. Never a pull:
    main moves only through the factory's review."""
    commands = []
    env = ["env", f"GIT_SSH_COMMAND={ssh_command}"] if ssh_command else []
    if origin is None:
        commands.append(as_user(*env, "git", "clone", "--quiet", "--branch", branch, "--", url, dest))
    elif origin != url:
        commands.append(as_user("git", "-C", dest, "remote", "set-url", "origin", "--", url))
    if ssh_command and f"\tsshCommand = {ssh_command}" not in git_config:
        commands.append(as_user("git", "-C", dest, "config", "core.sshCommand", ssh_command))
    return commands


def sample_origin_commands(exists: bool, src: str, origin: str, branch: str) -> list[str]:
    if exists:
        return []
    q = shlex.quote
    script = (
        "set -e; work=$(mktemp -d); trap 'rm -rf \"$work\"' EXIT; "
        f'cp -R {q(src)}/. "$work"; cd "$work"; '
        f"git init --quiet --initial-branch {q(branch)}; git add -A; "
        "git -c user.name=factory -c user.email=factory@factory.invalid commit --quiet -m 'Sample project'; "
        f"git push --quiet {q(origin)} {q(branch)}"
    )
    return [
        as_user("git", "init", "--quiet", "--bare", "--initial-branch", branch, origin),
        as_user("sh", "-c", script),
    ]


def pm2_commands(
    running: Mapping[str, str] | None,
    saved: Sequence[str] | None,
    ecosystem: str,
    apps: Sequence[str],
    owned: Sequence[str],
    restart: bool,
) -> list[str]:
    """PM2 runs exactly the deployed apps of the factory, online, and has saved that list.

    Starts or reloads only when an app is not online or `restart` (what it reads changed);
    deletes the factory's apps that are no longer deployed; leaves other apps alone.
    """
    running = running or {}
    commands = []
    stale = sorted(name for name in running if name in owned and name not in apps)
    if stale:
        commands.append(pm2("delete", *stale))
    start = bool(apps) and (restart or any(running.get(a) != "online" for a in apps))
    if start:
        commands.append(pm2("startOrReload", ecosystem, "--update-env"))
    expected = sorted((set(running) - set(stale)) | set(apps))
    if stale or start or sorted(saved or []) != expected:
        commands.append(pm2("save", "--force"))
    return commands


def tmux_commands(current: Sequence[str], script: str, sessions: Sequence[str], restart: bool) -> list[str]:
    """The factory's tmux sessions are exactly `sessions`; all restarted when what they read changed."""
    ours = sorted(name for name in current if AGENT_SESSION.match(name))
    if sessions and restart:
        return [as_user(script, "--restart")]
    if ours != sorted(sessions):
        return [as_user(script)]
    return []


def seed_commands(present: Mapping[str, bool], src: str, dest: str, owner: str) -> list[str]:
    """Copy each seed file that is not at `dest` yet: one already there (learned from, counted,
    edited by a person) is never overwritten."""
    user, _, group = owner.partition(":")
    return [
        shlex.join(["install", "-o", user, "-g", group, "-m", "644", f"{src}/{name}", f"{dest}/{name}"])
        for name, there in sorted(present.items())
        if not there
    ]


# -- operations ------------------------------------------------------------------------


@operation()
def npm_global(packages: Mapping[str, str]) -> Commands:
    """Ensure global npm packages at exact versions (scoped ones too)."""
    installed: dict[str, str] = host.get_fact(NpmGlobalPackages)
    yield from npm_commands(installed, packages)


@operation()
def install_wheel(
    wheel: str,
    sha256: str,
    venv: str = layout.VENV,
    marker: str = layout.INSTALLED_MARKER,
    extras: tuple[str, ...] = (),
) -> Commands:
    """Ensure the venv holds exactly this wheel (pip runs only when the wheel or its extras changed)."""
    lines = host.get_fact(FileContents, path=marker) or [""]
    yield from wheel_commands(lines[0].strip() or None, wheel, sha256, venv, marker, extras)


@operation()
def _secret_file(dest: str, sha1: str, owner: str) -> Commands:
    # A fact gets the running operation's arguments, _stdin with them: without _stdin=None the
    # commands that stat and hash the file were sent the secret, and one that exited before the
    # write lost the deploy its ssh channel ("Socket is closed").
    info = host.get_fact(File, path=dest, _stdin=None)
    same = bool(info) and host.get_fact(Sha1File, path=dest, _stdin=None) == sha1
    yield from secret_file_commands(info or None, same, dest, owner)


def secret_file(name: str, content: str, dest: str, owner: str = f"{layout.USER}:{layout.GROUP}") -> OperationMeta:
    """Ensure a 0600 file holding secrets, owned by `owner` (user:group)."""
    sha1 = hashlib.sha1(content.encode()).hexdigest()  # pyinfra's Sha1File fact compares with it
    meta: OperationMeta = _secret_file(name=name, dest=dest, sha1=sha1, owner=owner, _stdin=content)
    return meta


@operation()
def git_clone(url: str, branch: str, dest: str, ssh_command: str | None = None) -> Commands:
    """Ensure the factory's clone of `url` at `dest`, its origin `url`."""
    config = host.get_fact(FileContents, path=f"{dest}/.git/config") if ssh_command else None
    yield from clone_commands(host.get_fact(GitOrigin, path=dest), url, branch, dest, ssh_command, config or [])


@operation()
def sample_origin(src: str, origin: str, branch: str) -> Commands:
    """Ensure the demo's shared remote: a bare repository made once from the bundled sample project."""
    yield from sample_origin_commands(bool(host.get_fact(Directory, path=origin)), src, origin, branch)


@operation()
def pm2_apps(
    ecosystem: str, apps: Sequence[str], owned: Sequence[str], restart_after: Sequence[OperationMeta] = ()
) -> Commands:
    """Ensure PM2 runs the deployed apps, online, and saved (started or reloaded only when needed)."""
    running, saved = host.get_fact(Pm2Apps), host.get_fact(Pm2Saved)
    yield from pm2_commands(running, saved, ecosystem, apps, owned, changed(restart_after))


@operation()
def tmux_layout(script: str, sessions: Sequence[str], restart_after: Sequence[OperationMeta] = ()) -> Commands:
    """Ensure the factory's tmux sessions (restarted only when what they read changed)."""
    current: list[str] = host.get_fact(TmuxSessions)
    yield from tmux_commands(current, script, sessions, changed(restart_after))


@operation()
def seed_files(names: Sequence[str], src: str, dest: str, owner: str = f"{layout.USER}:{layout.GROUP}") -> Commands:
    """Ensure each of `names` exists in `dest`, copied from `src` only when missing."""
    present = {name: bool(host.get_fact(File, path=f"{dest}/{name}")) for name in names}
    yield from seed_commands(present, src, dest, owner)


def gate_key_commands(exists: bool, dest: str) -> list[str]:
    """Make the merge gate's key once (32 random bytes, 0600, the factory user's); never change it."""
    if exists:
        return []
    q = shlex.quote
    make = f"umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {q(dest)}"
    return [as_user("sh", "-c", make)]


@operation()
def gate_key(dest: str) -> Commands:
    """Ensure the merge gate's key: a local origin's update hook lets only pushes carrying it move main."""
    yield from gate_key_commands(bool(host.get_fact(File, path=dest)), dest)


def sandbox_commands(works: str) -> list[str]:
    """Check once that the factory user can run bubblewrap; a host that cannot fails the deploy, saying why."""
    if works == "ok":
        return []
    probe = as_user(*SANDBOX_PROBE)
    why = (
        "the agents' sandbox (bubblewrap) cannot run as the factory user on this host: user namespaces "
        "are disabled (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 the bwrap AppArmor profile)"
    )
    return [f"{probe} || {{ echo {shlex.quote(why)} >&2; exit 1; }}"]


@operation()
def sandbox_works() -> Commands:
    """Ensure the factory user can run the sandbox (planned on a fresh host, checked after apt)."""
    yield from sandbox_commands(str(host.get_fact(SandboxWorks)))


# -- the gate's PostgreSQL -------------------------------------------------------------


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of a scram-sha-256 password (what `rolpassword` holds): the role's
    password is set as this, so the password itself never reaches the server or its logs."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored scram-sha-256 verifier is this password's (with its own salt and iterations)."""
    try:
        method, _, rest = verifier.partition("$")
        params, _, _keys = rest.partition("$")
        iterations, _, salt = params.partition(":")
        if method != "SCRAM-SHA-256":
            return False
        expected = scram_verifier(password, base64.b64decode(salt, validate=True), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, verifier)


def db_role_sql(role: str, database: str, verifier: str) -> str:
    """Idempotent SQL (psql, on stdin) for the factory's role with this password and its own database."""
    return "\n".join([
        "\\set ON_ERROR_STOP on",
        f"SELECT 'CREATE ROLE {role} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec",
        f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{verifier}';",
        f"SELECT 'CREATE DATABASE {database} OWNER {role}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec",
        f"ALTER DATABASE {database} OWNER TO {role};",
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;",
        "",
    ])  # fmt: skip


def db_role_commands(found: Mapping[str, str] | None, password: str, role: str, database: str) -> list[str]:
    """psql as postgres, the SQL on stdin, unless the role has this password and owns the database."""
    if found is not None and scram_matches(found.get("role", ""), password) and found.get("owner") == role:
        return []
    return ["cd / && runuser -u postgres -- psql -X -q -d postgres"]


def db_role(name: str, password: str, role: str = layout.DB_ROLE, database: str = layout.DB_NAME) -> OperationMeta:
    """Ensure the factory's role (scram-sha-256, this password) and its database on the gate."""
    found = host.get_fact(DbRole, role=role, database=database)
    # The password never leaves this machine: the role gets its scram verifier, on psql's stdin.
    commands = db_role_commands(found, password, role, database)
    sql = db_role_sql(role, database, scram_verifier(password, os.urandom(16))) if commands else ""
    meta: OperationMeta = _run_sql(name=name, commands=commands, _stdin=sql)
    return meta


@operation()
def _run_sql(commands: Sequence[str]) -> Commands:
    """Run these commands (decided by db_role from the gate's facts; the SQL arrives on stdin)."""
    yield from commands
