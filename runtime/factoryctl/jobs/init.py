"""`factoryctl init REPO`: a new factory home for a repository, with its checks detected.

Clones the repository into HOME/repo and writes a commented factory.toml whose checks and
repo.setup come from `rules/detect.py`. A local path is first cloned bare into
HOME/origin.git, which becomes the factory's shared remote: the factory never pushes into
a person's working repository. An existing, non-empty home is never touched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factoryctl.adapters.git import GIT_ENV, Git, GitError
from factoryctl.adapters.runner import run
from factoryctl.core.configfile import load_settings
from factoryctl.core.defaults import GIT_TIMEOUT_S
from factoryctl.core.errors import FactoryError, UsageError
from factoryctl.core.paths import Paths
from factoryctl.core.tomltext import toml_value
from factoryctl.jobs.proof import resolve
from factoryctl.rules.detect import DIRS, FILES, Detected, detect

MAX_FILE_BYTES = 1_000_000  # a manifest bigger than this is not read (it says nothing more)
MAX_CI_FILES = 50  # workflow files read from one folder
_URL_PREFIXES = ("https://", "http://", "ssh://", "git://", "file://")


@dataclass(frozen=True)
class InitReport:
    home: Path
    repo: Path
    origin: str
    main: str
    detected: Detected

    def as_dict(self) -> dict[str, Any]:
        return {"home": str(self.home), "repo": str(self.repo), "origin": self.origin, "main": self.main,
                **self.detected.as_dict()}  # fmt: skip


def source_of(repo: str) -> tuple[str, bool]:
    """(what to clone, whether it is a local path); a UsageError for anything else."""
    path = Path(repo).expanduser()
    if path.exists():
        if not (path / ".git").exists() and not (path / "HEAD").is_file():
            raise UsageError(f"{repo} is not a git repository")
        return str(path.resolve()), True
    scp_like = "@" in repo.split(":", 1)[0] and ":" in repo
    if repo.startswith("-") or not (repo.startswith(_URL_PREFIXES) or scp_like):
        raise UsageError(f"{repo!r} is neither an existing local path nor a git URL (https://, ssh://, git@host:path)")
    return repo, False


def init(repo: str, home: Path, *, agent: Sequence[str] = ()) -> InitReport:
    """Make the factory home: clone, detect, write factory.toml; on failure leave no half-made home."""
    source, local = source_of(repo)
    if home.exists() and any(home.iterdir()):
        raise UsageError(f"{home} exists and is not empty; refusing to overwrite it (choose another --home)")
    agent = absolute_agent(agent)
    created = not home.exists()
    home.mkdir(parents=True, exist_ok=True)
    paths = Paths(home)
    try:
        clone = home / "repo"
        origin = source
        if local:
            origin = str(home / "origin.git")
            _git(home, "clone", "--quiet", "--bare", "--", source, origin)
        _git(home, "clone", "--quiet", "--", origin, str(clone))
        main = Git(clone).run("symbolic-ref", "--short", "HEAD").stdout.strip()
        detected = detect(read_telling_files(clone))
        paths.config_file.write_text(render_config(detected, main=main, agent=agent, origin=origin), encoding="utf-8")
        load_settings(paths.config_file)  # what init writes must load: a bug here is ours, said at once
    except BaseException:
        if created:
            shutil.rmtree(home, ignore_errors=True)
        else:
            for child in home.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return InitReport(home, clone, origin, main, detected)


def absolute_agent(agent: Sequence[str]) -> list[str]:
    """The agent's command with its program as an absolute path, so it runs from any cwd; a UsageError
    (one line, what to do) when it cannot be found."""
    if not agent:
        return []
    path = resolve(agent[0])
    if path is None:
        raise UsageError(f"--agent: {agent[0]!r} is not an executable file or a program on PATH; "
                         "give its absolute path")  # fmt: skip
    return [path, *agent[1:]]


def _git(cwd: Path, *args: str) -> None:
    argv = ["git", "-c", "core.hooksPath=/dev/null", *args]
    done = run(argv, cwd=cwd, timeout=GIT_TIMEOUT_S, env={**os.environ, **GIT_ENV})
    if not done.ok:
        raise FactoryError(f"git {args[0]} failed: {done.tail(300)}")


def read_telling_files(clone: Path) -> dict[str, str]:
    """The files `detect` reads, from the committed tree (never through a symlink in the worktree)."""
    git = Git(clone)
    out: dict[str, str] = {}
    for name in FILES:
        if name.endswith("/"):
            listed = git.run("ls-tree", "--name-only", "HEAD", "--", name.rstrip("/"), check=False)
            if listed.ok and listed.stdout.strip():
                out[name] = ""
            continue
        try:
            kind = git.run("cat-file", "-t", f"HEAD:{name}", check=False).stdout.strip()
            if kind != "blob":
                continue
            size = int(git.run("cat-file", "-s", f"HEAD:{name}").stdout.strip() or 0)
            out[name] = "" if size > MAX_FILE_BYTES else git.run("show", f"HEAD:{name}").stdout
        except (GitError, ValueError):
            continue
    for folder in DIRS:
        listed = git.run("ls-tree", "--name-only", "HEAD", "--", folder, check=False)
        for name in listed.stdout.splitlines()[:MAX_CI_FILES] if listed.ok else []:
            try:
                if git.run("cat-file", "-t", f"HEAD:{name}", check=False).stdout.strip() == "blob":
                    size = int(git.run("cat-file", "-s", f"HEAD:{name}").stdout.strip() or 0)
                    out[name] = "" if size > MAX_FILE_BYTES else git.run("show", f"HEAD:{name}").stdout
            except (GitError, ValueError):
                continue
    return out


def render_config(detected: Detected, *, main: str, agent: Sequence[str], origin: str) -> str:
    """factory.toml as init writes it: the detected keys, with comments saying where they came from."""
    lines = [
        "# factory.toml written by `factoryctl init`; `factoryctl config show --defaults` lists every key.",
        f"# The shared remote (origin of repo/): {origin}",
        "",
        "[repo]",
        f"main = {toml_value(main)}",
    ]
    if detected.setup:
        lines += ["# run in every worktree whose manifests or installed packages differ from main's",
                  f"setup = {toml_value(list(detected.setup))}"]  # fmt: skip
    else:
        lines.append("# setup = [] (nothing to install was detected)")
    if agent:
        lines += [
            "",
            "[agent]",
            f"command = {toml_value(list(agent))}",
            "",
            "[reviewer]",
            f"command = {toml_value(list(agent))}",
        ]
    lines += ["", "# Detected from the repository's files:"]
    lines += [f"#   {line}" for line in detected.found] or ["#   nothing"]
    for note in detected.notes:
        lines.append(f"# CHECK: {note}")
    for check in detected.checks:
        lines += ["", "[[checks]]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in check.items()]
    if not detected.checks:
        lines += ["", "# No [[checks]]: nothing measures a change, and the gate waits for a person",
                  "# unless [review] allow_without_checks = true."]  # fmt: skip
    return "\n".join(lines) + "\n"
