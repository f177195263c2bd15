"""A session's persistent git worktree, reset to the fresh tip of main every cycle.

Operations that touch what the worktrees share (fetch, worktree add/prune, branch
deletion) run under one repository lock; everything else stays inside the worktree.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from factoryctl.adapters.git import Git, verify_clone_config
from factoryctl.adapters.runner import run
from factoryctl.adapters.sandbox import Launch
from factoryctl.core.errors import FactoryError
from factoryctl.jobs.context import Context


class Workspace:
    def __init__(self, ctx: Context, session: str) -> None:
        self.ctx = ctx
        self.session = session
        self.main = ctx.settings.repo.main
        self.repo = Git(ctx.repo_dir)
        self.path = ctx.paths.worktrees_dir / session
        self.identity = (f"factory {session}", f"{session}@factory.invalid")
        self._git: Git | None = None
        self.origin_main = f"refs/remotes/origin/{self.main}"

    def prepare(self) -> str:
        """Fetch main, make or repair the worktree, reset it to main's tip; return that commit."""
        if not (self.ctx.repo_dir / ".git").exists():
            raise FactoryError(f"no git clone at {self.ctx.repo_dir} (repo.path); the deploy clones it")
        with self.ctx.repo_lock():
            verify_clone_config(self.ctx.repo_dir)  # before the runtime's first git command in it
            self.repo.fetch("origin", f"+refs/heads/{self.main}:{self.origin_main}")
            self._collect_orphans()
            git_dir = ensure_worktree(self.ctx, self.path, self.session, self.origin_main)
            self._git = Git(self.path, identity=self.identity, git_dir=git_dir)
            base = self.repo.rev(self.origin_main)
        self.git.reset_to(base)  # stray files go; ignored ones (node_modules) stay
        self._delete_own_branches()
        self._delete_unqueued_remote_branches()
        return base

    def _collect_orphans(self) -> None:
        """Worktrees of sessions this factory no longer has are removed."""
        keep = {self.ctx.paths.worktrees_dir / s for s in (*self.ctx.settings.session_names, "review")}
        for path in self.repo.worktrees():
            if path.parent == self.ctx.paths.worktrees_dir and path not in keep:
                self.repo.run("worktree", "remove", "--force", str(path))

    def _delete_own_branches(self) -> None:
        prefix = f"{self.ctx.settings.repo.branch_prefix}/{self.session}/"
        stale = self.repo.local_branches(prefix + "*")
        if stale:
            with self.ctx.repo_lock():
                self.repo.run("branch", "-D", *stale)

    def _delete_unqueued_remote_branches(self) -> None:
        """A branch of this session on origin that is not pending review was left by a crash
        between push and queue (only this session, under its cycle lock, makes such branches)."""
        prefix = f"refs/heads/{self.ctx.settings.repo.branch_prefix}/{self.session}/"
        listed = self.repo.run("ls-remote", "--heads", "origin", prefix + "*").stdout.splitlines()
        remote = [line.split("\t", 1)[1] for line in listed if "\t" in line]
        if not remote:
            return
        pending = {f"refs/heads/{e.branch}" for e in self.ctx.review_queue().read().pending()}
        orphans = [ref for ref in remote if ref not in pending]
        if orphans:
            self.repo.push("origin", [f":{ref}" for ref in orphans])

    def start_branch(self, name: str, base: str) -> None:
        self.git.run("checkout", "--quiet", "-b", name, base)

    def drop_branch(self, name: str, base: str, *, remote: bool) -> None:
        """Leave the branch, delete it locally and (if it may be there) on origin."""
        self.git.reset_to(base)
        with self.ctx.repo_lock():
            if self.repo.maybe_rev(f"refs/heads/{name}"):
                self.repo.run("branch", "-D", name)
        if remote and self.repo.remote_branch_exists(name):
            self.repo.push("origin", [f":refs/heads/{name}"])

    @property
    def git(self) -> Git:
        """git in this worktree, through the git dir the main clone records (after `prepare`)."""
        if self._git is None:
            raise FactoryError(f"the worktree of {self.session} is not prepared")
        return self._git

    def launch(self) -> Launch:
        """How the checks start in this worktree: sandboxed, no network, no credential."""
        return self.ctx.launch(self.path, self.session)

    def setup_if_needed(self) -> bool:
        return ensure_setup(self.ctx, self.path, self.session)


class SetupFailed(FactoryError):
    """repo.setup failed in a worktree (a lockfile out of date, a dependency gone)."""


def ensure_worktree(ctx: Context, path: Path, name: str, start: str) -> Path:
    """Make sure `path` is a registered worktree of the main clone (made at `start` if not); its git dir.

    Call it under `ctx.repo_lock()`. The git dir is found from the main clone's records,
    never from the worktree's `.git` file (what runs in the worktree can rewrite that file;
    it is rewritten here for the people and tools that read it). A folder that is not a
    registered worktree is replaced; a new worktree needs its setup.
    """
    repo = Git(ctx.repo_dir)
    repo.run("worktree", "prune")
    git_dir = registered_git_dir(ctx.repo_dir, path)
    if git_dir is None:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        setup_marker(ctx, name).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        repo.run("worktree", "add", "--detach", "--quiet", str(path), start)
        git_dir = registered_git_dir(ctx.repo_dir, path)
        if git_dir is None:
            raise FactoryError(f"git worktree add made no record for {path}")
    gitfile = path / ".git"
    expected = f"gitdir: {git_dir}\n"
    if gitfile.is_symlink() or not gitfile.is_file() or gitfile.read_text(errors="replace") != expected:
        if gitfile.is_dir() and not gitfile.is_symlink():
            shutil.rmtree(gitfile)
        else:
            gitfile.unlink(missing_ok=True)
        gitfile.write_text(expected)
    return git_dir


def registered_git_dir(repo: Path, path: Path) -> Path | None:
    """The main clone's git dir for the worktree at `path` (repo/.git/worktrees/NAME), or None."""
    want = str(path.absolute() / ".git")
    for record in sorted((repo / ".git" / "worktrees").glob("*/gitdir")):
        try:
            if record.read_text().strip() == want:
                return record.parent
        except OSError:
            continue
    return None


def setup_marker(ctx: Context, name: str) -> Path:
    return ctx.paths.state_dir / "setup" / f"{name}.sha256"


def ensure_setup(ctx: Context, path: Path, name: str) -> bool:
    """Run repo.setup (e.g. `npm ci`) in a worktree when it is new or its inputs changed."""
    spec = ctx.settings.repo
    if not spec.setup:
        return False
    digest = hashlib.sha256(" ".join(spec.setup).encode())
    for input_name in spec.setup_inputs:
        input_path = path / input_name
        if input_path.is_file():
            digest.update(input_name.encode() + b"\0" + input_path.read_bytes())
    marker = setup_marker(ctx, name)
    if marker.is_file() and marker.read_text().strip() == digest.hexdigest():
        return False
    launch = ctx.launch(path, name, network=True)  # setup fetches dependencies; it never gets a credential
    with ctx.heavy_slot():
        done = run(launch.argv(spec.setup), cwd=path, timeout=spec.setup_timeout_s, env=dict(launch.env))
    if not done.ok:
        what = "timed out" if done.timed_out else f"exited {done.returncode}"
        raise SetupFailed(f"repo.setup {' '.join(spec.setup)!r} {what}: {done.tail(300).replace(chr(10), ' | ')}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(digest.hexdigest() + "\n")
    return True
