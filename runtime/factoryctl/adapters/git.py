"""The git adapter: every git command the factory runs, as argv through the runner.

Branch and path names reach git only as separate argv items, after `--` where git
would otherwise read them as options; nothing goes through a shell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from factoryctl.adapters.runner import CommandFailed, Completed, run
from factoryctl.core.defaults import GIT_TIMEOUT_S, MAX_CAPTURE_BYTES
from factoryctl.core.errors import FactoryError, UsageError

# Git must never stop to ask a person anything.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_EDITOR": "true", "LC_ALL": "C"}
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def check_branch_name(name: str) -> str:
    """A branch name the factory accepts: plain characters only, no git or shell tricks."""
    if (
        not _BRANCH.match(name)
        or ".." in name
        or "//" in name
        or name.endswith(("/", ".", ".lock"))
        or "/." in name
        or "@{" in name
    ):
        raise UsageError(f"invalid branch name {name!r}: use letters, digits and . _ - /")
    return name


@dataclass(frozen=True)
class DiffStat:
    files: tuple[str, ...]
    added: int
    deleted: int


# Whatever a repository's config says, the runtime's git runs none of its programs: no
# hooks, no fsmonitor, no ext:: transport. (The config itself is checked by `config_problems`.)
SAFE_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "protocol.ext.allow=never",
               "advice.detachedHead=false")  # fmt: skip


class Git:
    """git in one directory (a clone or a worktree).

    A worktree is named by its git dir explicitly (`git_dir`): the `.git` file in a worktree
    is writable by what runs there, and must never choose the config the runtime's git reads.
    """

    def __init__(self, cwd: Path, *, identity: tuple[str, str] | None = None, git_dir: Path | None = None) -> None:
        self.cwd = cwd
        self.identity = identity
        self.git_dir = git_dir

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = GIT_TIMEOUT_S,
        env: dict[str, str] | None = None,
        limit: int | None = MAX_CAPTURE_BYTES,
    ) -> Completed:
        argv = ["git"]
        if self.git_dir is not None:
            argv += ["--git-dir", str(self.git_dir), "--work-tree", str(self.cwd)]
        if self.identity is not None:
            name, email = self.identity
            argv += ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        for setting in SAFE_CONFIG:
            argv += ["-c", setting]
        environ = {**os.environ, **GIT_ENV, **(env or {})}
        done = run([*argv, *args], cwd=self.cwd, timeout=timeout, env=environ, limit=limit)
        if check and not done.ok:
            raise GitError(done)
        return done

    def out(self, *args: str) -> str:
        """What a git command printed, all of it: a fact read from a cut output would be a wrong fact."""
        done = self.run(*args)
        if done.cut:
            raise FactoryError(f"git {' '.join(args[:3])} printed more than {MAX_CAPTURE_BYTES:,} bytes; not trusted")
        return done.stdout.strip()

    # -- facts ---------------------------------------------------------------------

    def rev(self, ref: str) -> str:
        return self.out("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def maybe_rev(self, ref: str) -> str | None:
        done = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return done.stdout.strip() if done.ok else None

    def current_branch(self) -> str | None:
        done = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return done.stdout.strip() if done.ok else None

    def local_branches(self, pattern: str) -> list[str]:
        text = self.out("for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
        return [line for line in text.splitlines() if line]

    def diffstat(self, base: str, head: str) -> DiffStat:
        """Files changed and lines added/deleted; -z keeps unusual file names unquoted."""
        files: list[str] = []
        added = deleted = 0
        # Read whole (no capture limit): a list cut short hides the files past the cut (sensitive ones too).
        listing = self.run("diff", "--numstat", "-z", "--no-renames", base, head, "--", limit=None).stdout
        for record in listing.split("\0"):
            if not record:
                continue
            plus, minus, path = record.split("\t", 2)
            files.append(path)
            added += int(plus) if plus.isdigit() else 0
            deleted += int(minus) if minus.isdigit() else 0
        return DiffStat(tuple(files), added, deleted)

    def added(self, base: str, head: str) -> list[str]:
        """Files `head` has and `base` has not (read whole, like `diffstat`)."""
        listing = self.run("diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", base, head, "--", limit=None)
        return [path for path in listing.stdout.split("\0") if path]

    def top_level(self, commit: str) -> list[str]:
        """The names at the top of a commit's tree."""
        return [
            name for name in self.run("ls-tree", "--name-only", "-z", commit, limit=None).stdout.split("\0") if name
        ]

    def worktrees(self) -> list[Path]:
        out = []
        for line in self.out("worktree", "list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                out.append(Path(line.removeprefix("worktree ")))
        return out

    def unchanged(self, head: str) -> bool:
        """HEAD is still `head` and no tracked file differs from it (untracked caches aside)."""
        status = self.run("status", "--porcelain=v2", "--branch", "--untracked-files=no", "--ignored=no", check=False)
        lines = status.stdout.splitlines()
        return status.ok and f"# branch.oid {head}" in lines and all(line.startswith("# ") for line in lines)

    def strays(self, keep: Sequence[str]) -> list[str]:
        """Files in the worktree that the commit does not have, ignored ones included, outside the
        `keep` folders (the dependency folders setup made): what a check left behind."""
        args = ["ls-files", "--others", "-z", "--directory", "--no-empty-directory"]
        args += [f"--exclude=/{folder.strip('/')}" for folder in keep]
        return [path for path in self.run(*args, limit=None).stdout.split("\0") if path]

    def clean_all(self, keep: Sequence[str]) -> None:
        """Remove every file the commit does not have, ignored ones included (caches, bytecode, a
        config a test wrote), except the `keep` folders (tracked files are left as they are: a
        change to one is for `unchanged` to see)."""
        self.run("clean", "-ffdxq", *(f"--exclude=/{folder.strip('/')}" for folder in keep))

    def is_ancestor(self, commit: str, of: str) -> bool:
        """Whether `commit` is `of` or in its history."""
        return self.run("merge-base", "--is-ancestor", commit, of, check=False).returncode == 0

    def remote_branch_exists(self, branch: str, remote: str = "origin") -> bool:
        done = self.run("ls-remote", "--exit-code", "--heads", remote, f"refs/heads/{branch}", check=False)
        return done.returncode == 0

    # -- actions -------------------------------------------------------------------

    def fetch(self, remote: str, *refspecs: str) -> None:
        self.run("fetch", "--quiet", "--prune", remote, *refspecs)

    def reset_to(self, commit: str) -> None:
        """Detached at `commit`, tracked files as committed, untracked ones gone (ignored ones stay)."""
        self.run("checkout", "--detach", "--force", "--quiet", commit)
        self.run("reset", "--hard", "--quiet", commit)
        self.run("clean", "-ffd", "--quiet")

    def commit_all(self, message: str) -> bool:
        """Stage everything and commit; False when there was nothing to commit."""
        self.run("add", "--all")
        if not self.run("diff", "--cached", "--quiet", check=False).returncode:
            return False
        self.run("commit", "--quiet", "--no-verify", "-m", message)
        return True

    def push(self, remote: str, refspecs: Sequence[str]) -> None:
        self.run("push", "--quiet", "--porcelain", remote, *refspecs)


# A clone's own config may hold only these (names as `git config --list` prints them).
_ALLOWED_CONFIG = re.compile(
    r"^(core\.(repositoryformatversion|filemode|bare|logallrefupdates|symlinks|ignorecase|precomposeunicode)"
    r"|remote\.origin\.(url|fetch)|branch\.[^=]+\.(remote|merge)|extensions\.worktreeconfig"
    r"|user\.(name|email)|gc\.auto|fetch\.prune)$"
)
# The deploy's `core.sshCommand` (its deploy key): plain ssh options only, since git runs it through a shell.
_SSH_COMMAND = re.compile(r"^ssh( -[A-Za-z] [A-Za-z0-9_./=:@-]+)*$")


def config_problems(listing: str) -> list[str]:
    """Keys of `git config --list -z` output that could make git run something, one line each."""
    problems = []
    for record in listing.split("\0"):
        if not record:
            continue
        name, _, value = record.partition("\n")
        name = name.lower()
        if name == "core.sshcommand" and _SSH_COMMAND.match(value):
            continue
        if not _ALLOWED_CONFIG.match(name):
            problems.append(f"{name} = {value[:80]!r}")
    return problems


def verify_clone_config(repo: Path) -> None:
    """Refuse a clone whose own git config (or a worktree's) holds anything beyond the plain keys.

    Keys like core.fsmonitor, core.pager, diff.external, filter.*, alias.*, url.*.insteadOf,
    *.uploadpack or include.path make git run programs or fetch elsewhere: nothing the
    deploy writes, and nothing the runtime may run with.
    """
    git_dir = repo / ".git"
    files = [git_dir / "config", *sorted((git_dir / "worktrees").glob("*/config.worktree"))]
    problems: list[str] = []
    for path in files:
        if not path.is_file():
            continue
        argv = ["git", "config", "--file", str(path), "--list", "-z"]
        done = run(argv, cwd=repo, timeout=GIT_TIMEOUT_S, env={**os.environ, **GIT_ENV})
        if not done.ok:
            problems.append(f"{path} cannot be read: {done.tail(120)}")
            continue
        problems += [f"{path.relative_to(repo)}: {p}" for p in config_problems(done.stdout)]
    if problems:
        raise UnsafeRepository(
            "the clone's git config holds keys that could run programs or fetch elsewhere "
            f"({'; '.join(problems[:3])}); remove them (git config --unset) and try again"
        )


class UnsafeRepository(FactoryError):
    """The clone was changed so that the runtime's git could run someone else's program."""


class GitError(CommandFailed):
    """A git command that had to succeed did not."""
