"""A session's persistent git worktree, reset to the fresh tip of main every cycle.

Operations that touch what the worktrees share (fetch, worktree add/prune, branch
deletion) run under one repository lock; everything else stays inside the worktree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from factoryctl.adapters.git import Git, verify_clone_config
from factoryctl.adapters.runner import run
from factoryctl.adapters.sandbox import Launch
from factoryctl.core import jsonio
from factoryctl.core.defaults import BYPRODUCTS, SETUP_PASS_ENV
from factoryctl.core.errors import FactoryError
from factoryctl.jobs.context import Context
from factoryctl.state.stores import atomic_write_text


class Worktree:
    """One of the clone's worktrees under FACTORY_HOME/worktrees (a session's, or the review's):
    the clone's git, the worktree's own git once attached, and main's remote ref."""

    def __init__(self, ctx: Context, name: str, identity: tuple[str, str]) -> None:
        self.ctx = ctx
        self.name = name
        self.main = ctx.settings.repo.main
        self.repo = Git(ctx.repo_dir)
        self.path = ctx.paths.worktrees_dir / name
        self.identity = identity
        self.origin_main = f"refs/remotes/origin/{self.main}"
        self._git: Git | None = None

    def fetch(self, *refspecs: str) -> None:
        """Fetch main (and `refspecs`) from origin; call under the repository lock."""
        if not (self.ctx.repo_dir / ".git").exists():
            raise FactoryError(f"no git clone at {self.ctx.repo_dir} (repo.path); the deploy clones it")
        verify_clone_config(self.ctx.repo_dir)  # before the runtime's first git command in it
        self.repo.fetch("origin", f"+refs/heads/{self.main}:{self.origin_main}", *refspecs)

    def attach(self) -> None:
        """Make or repair the worktree (at main when new); call under the repository lock."""
        git_dir = ensure_worktree(self.ctx, self.path, self.name, self.origin_main)
        self._git = Git(self.path, identity=self.identity, git_dir=git_dir)

    @property
    def git(self) -> Git:
        """git in this worktree, through the git dir the main clone records (after `prepare`)."""
        if self._git is None:
            raise FactoryError(f"the worktree {self.name!r} is not prepared")
        return self._git


class Workspace(Worktree):
    """A session's worktree: reset to main's tip every cycle, its branches, the agent's own git."""

    def __init__(self, ctx: Context, session: str) -> None:
        super().__init__(ctx, session, (f"factory {session}", f"{session}@factory.invalid"))
        self.session = session

    def prepare(self) -> str:
        """Fetch main, make or repair the worktree, reset it to main's tip; return that commit."""
        with self.ctx.repo_lock():
            self.fetch()
            self._collect_orphans()
            self.attach()
            base = self.repo.rev(self.origin_main)
        write_excludes(self.ctx)
        self.git.reset_to(base)  # stray files go; ignored ones (node_modules) stay
        self.clear_byproducts()
        self._delete_own_branches()
        self._delete_unqueued_remote_branches()
        return base

    def _collect_orphans(self) -> None:
        """Worktrees of sessions this host no longer runs are removed."""
        keep = {self.ctx.paths.worktrees_dir / s for s in (*self.ctx.settings.local_sessions, "review")}
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

    def launch(self) -> Launch:
        """How the checks start in this worktree: sandboxed, no network, no credential."""
        return self.ctx.launch(self.path, self.session)

    @contextmanager
    def agent_git(self, branch: str, base: str) -> Iterator[Path]:
        """A private git dir for the agent's own git commands while it works; yields its path.

        Agents run git as developers do (status, diff, add, commit, stash). The clone's git dir is
        read-only in the sandbox, so during the call the worktree's `.git` file points at a fresh
        repository of the session's own: HEAD on `branch` at `base`, main's ref, the index and the
        exclude rules copied, objects borrowed read-only from the clone (alternates), new ones
        written here. Nothing the agent does to git reaches the clone's config, hooks, refs or other
        worktrees; the runtime never runs git with this repository's config, and judges the tree
        the agent leaves (its own commits are squashed into the cycle's one commit).
        """
        scratch = self.ctx.paths.caches_dir / self.session / "agent-git"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.parent.mkdir(parents=True, exist_ok=True)
        env = {"GIT_DIR": str(scratch)}
        name, email = self.identity
        steps = [
            ["git", "init", "--quiet", "--bare", str(scratch)],
            ["git", "config", "core.bare", "false"],
            ["git", "config", "user.name", name],
            ["git", "config", "user.email", email],
            ["git", "update-ref", f"refs/heads/{branch}", base],
            ["git", "update-ref", f"refs/heads/{self.main}", base],
            ["git", "update-ref", self.origin_main, base],
            ["git", "symbolic-ref", "HEAD", f"refs/heads/{branch}"],
        ]
        objects = scratch / "objects" / "info" / "alternates"
        for index, argv in enumerate(steps):
            run(argv, cwd=self.path, env=env, check=True)
            if index == 0:  # before the refs: they name objects that live in the clone
                objects.write_text(f"{self.ctx.repo_dir / '.git' / 'objects'}\n")
        registered = self.git.git_dir
        assert registered is not None
        if (registered / "index").is_file():
            shutil.copyfile(registered / "index", scratch / "index")
        exclude = self.ctx.repo_dir / ".git" / "info" / "exclude"
        if exclude.is_file():
            (scratch / "info").mkdir(exist_ok=True)
            shutil.copyfile(exclude, scratch / "info" / "exclude")
        gitfile = self.path / ".git"
        gitfile.unlink(missing_ok=True)
        gitfile.write_text(f"gitdir: {scratch}\n")
        try:
            yield scratch
        finally:
            if gitfile.is_dir() and not gitfile.is_symlink():
                shutil.rmtree(gitfile)
            else:
                gitfile.unlink(missing_ok=True)
            gitfile.write_text(f"gitdir: {registered}\n")

    def clear_byproducts(self) -> list[str]:
        """Remove the by-products of running code (BYPRODUCTS) from the worktree; return their paths.

        They are excluded from every commit whatever the repository's ignore rules say; they are
        deleted before the agent starts (so what it leaves is its own) and before the checks (so
        they run on what is committed, not on leftovers).
        """
        # The dependency folders are setup's: their bytecode stays, and they are not even walked.
        skip = [f":(exclude,top){d.strip('/')}" for d in self.ctx.settings.repo.dependency_dirs]
        done = self.git.run("ls-files", "--others", "--ignored", "--directory", "--exclude-from",
                            str(byproducts_file(self.ctx)), "-z", "--", ".", *skip, check=False)  # fmt: skip
        paths = sorted(p for p in done.stdout.split("\0") if p and ".." not in Path(p).parts)
        for name in paths:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        return paths

    def setup_if_needed(self) -> bool:
        """Setup after `prepare` (the worktree is at main's tip): with the shared caches."""
        return ensure_setup(self.ctx, self.path, self.session, on_main=True)


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
    return ctx.paths.state_dir / "setup" / f"{name}.json"


def shared_caches(ctx: Context) -> tuple[Path, dict[str, str]]:
    """The package managers' download caches every session shares (uv's, npm's, pnpm's store), and the
    environment that points setup at them.

    Only setup on main's commit writes them (the gate tested and landed it); setup on anything else
    (a merge result, a branch) gets a cache of its own that is gone after it. Agents and checks never
    see them (they live under FACTORY_HOME, which the sandbox hides). Installs copy out of them
    (UV_LINK_MODE=copy, package-import-method=copy): no file in a worktree shares its inode with the
    cache, so code writing into its .venv or node_modules cannot change what the next install gets.
    """
    root = ctx.paths.caches_dir / "shared"
    env = {
        "UV_CACHE_DIR": str(root / "uv"), "UV_LINK_MODE": "copy",
        "npm_config_cache": str(root / "npm"),
        "npm_config_store_dir": str(root / "pnpm-store"), "pnpm_config_store_dir": str(root / "pnpm-store"),
        "npm_config_package_import_method": "copy", "pnpm_config_package_import_method": "copy",
    }  # fmt: skip
    return root, env


def ensure_setup(ctx: Context, path: Path, name: str, *, on_main: bool = False) -> bool:
    """Run repo.setup (e.g. `npm ci`) in a worktree unless its dependencies are known to match.

    The recorded setup state is the digest of the manifests and lockfiles the setup ran
    with, and a fingerprint of the dependency folders it left. Setup runs again when the
    worktree's manifests differ (a new main, another branch in the review worktree) or the
    folders changed since (the agent ran `npm install foo`): what a cycle tests is what
    main's lockfile installs, never what an earlier cycle left behind.
    """
    spec = ctx.settings.repo
    if not spec.setup:
        return False
    write_excludes(ctx)
    wanted = setup_state(path, spec.setup, spec.setup_inputs, spec.dependency_dirs)
    marker = setup_marker(ctx, name)
    if _recorded(marker) == wanted:
        return False
    marker.unlink(missing_ok=True)  # a setup that fails half-way leaves no state that looks good
    # Setup fetches dependencies (the network, never a credential), with a HOME of its own that is gone after it.
    launch = ctx.launch(path, name, network=True).scratch()
    env = {**launch.env, **{k: os.environ[k] for k in SETUP_PASS_ENV if k in os.environ}}
    if on_main:  # main's own dependencies: the shared caches, written by this trusted run
        shared, cache_env = shared_caches(ctx)
        for sub in ("uv", "npm", "pnpm-store"):
            (shared / sub).mkdir(parents=True, exist_ok=True)
        policy = replace(launch.policy, extra_writable=(*launch.policy.extra_writable, shared))
        launch = replace(launch, policy=policy)
        env.update(cache_env)
    launch = replace(launch, env=env)
    with ctx.heavy_slot():
        done = run(launch.argv(spec.setup), cwd=path, timeout=spec.setup_timeout_s, env=dict(launch.env))
    if not done.ok:
        what = "timed out" if done.timed_out else f"exited {done.returncode}"
        raise SetupFailed(f"repo.setup {' '.join(spec.setup)!r} {what}: {done.tail(300).replace(chr(10), ' | ')}")
    state = setup_state(path, spec.setup, spec.setup_inputs, spec.dependency_dirs)
    atomic_write_text(marker, json.dumps(state, indent=2) + "\n")
    return True


def write_excludes(ctx: Context) -> None:
    """Make the dependency folders and the by-products of running code ignored in every worktree
    (the clone's info/exclude), whatever the repository's .gitignore says: installed packages,
    bytecode and tool caches never enter a change, and `git clean` between the checks and the
    agent does not delete the dependency folders."""
    exclude = ctx.repo_dir / ".git" / "info" / "exclude"
    groups = {
        "# factory: dependency folders (repo.dependency_dirs)": [f"/{d.strip('/')}/" for d in
                                                                  ctx.settings.repo.dependency_dirs],
        "# factory: by-products of running code, never part of a change": list(BYPRODUCTS),
    }  # fmt: skip
    with ctx.repo_lock():
        have = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
        lines = list(have)
        for heading, wanted in groups.items():
            missing = [line for line in wanted if line not in lines]
            if missing:
                lines += [heading, *missing]
        if lines != have:
            atomic_write_text(exclude, "\n".join(lines) + "\n")
        byproducts = byproducts_file(ctx)
        text = "\n".join(BYPRODUCTS) + "\n"
        if not byproducts.is_file() or byproducts.read_text(encoding="utf-8") != text:
            atomic_write_text(byproducts, text)


def byproducts_file(ctx: Context) -> Path:
    """The by-product patterns alone, as an exclude file (for listing what a change leaves out)."""
    return ctx.paths.state_dir / "byproducts.exclude"


def setup_state(path: Path, setup: Sequence[str], inputs: Sequence[str], dep_dirs: Sequence[str]) -> dict[str, str]:
    """{"inputs": digest of the setup command and the manifests, "deps": fingerprint of the folders}."""
    digest = hashlib.sha256("\0".join(setup).encode())
    for input_name in inputs:
        input_path = path / input_name
        if input_path.is_file():
            digest.update(input_name.encode() + b"\0" + input_path.read_bytes() + b"\0")
    return {"inputs": digest.hexdigest(), "deps": dependency_fingerprint(path, dep_dirs)}


# Files a package manager rewrites on every install into node_modules (npm, pnpm, yarn).
_INSTALL_STATE = (".package-lock.json", ".modules.yaml", ".yarn-integrity", ".yarn-state.yml")


def dependency_fingerprint(path: Path, dep_dirs: Sequence[str]) -> str:
    """What is installed: package names at the top of each folder (and site-packages of a venv),
    and the package manager's own install record. Tool caches (dot-folders like .vite) are left
    out, so a check writing its cache does not count as a change."""
    digest = hashlib.sha256()
    for dep in dep_dirs:
        root = path / dep
        if not root.is_dir():
            continue
        places = [root, *sorted(root.glob("lib/python*/site-packages"))]
        for place in places:
            names = sorted(p.name for p in place.iterdir() if not p.name.startswith("."))
            digest.update(f"{place.relative_to(path)}\0{chr(0).join(names)}\0".encode())
        for state in _INSTALL_STATE:
            file = root / state
            if file.is_file():
                digest.update(state.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _recorded(marker: Path) -> dict[str, str] | None:
    try:
        data = jsonio.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
