"""The sandbox for everything untrusted: the agent, the reviewer model's CLI, repo.setup and every check.

Bubblewrap (`bwrap`), as the user running the factory, with:
- the system read-only, a fresh /tmp, its own /dev and /proc, a new PID namespace: no
  process outlives the call (when the first one dies the kernel kills the rest), and the
  parent's environment under /proc is out of sight;
- the user's home and FACTORY_HOME hidden (config, state, prompts, secrets, ~/.ssh, other
  worktrees, a local origin), then exactly what the call needs bound back: its worktree
  (read-write, or read-only for the reviewer), the clone's git dir read-only (git log and
  diff work, its config and refs cannot be changed), a per-name cache as HOME;
- no network for checks unless a check asks for it;
- an environment built from an allow-list by the caller (`env=`), never inherited.

`Sandbox.wrap(argv, policy)` returns the argv to run through the one runner. With
`sandbox.enabled = false` it returns argv as it is, and `status` says so loudly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from factoryctl.adapters.runner import run
from factoryctl.core.defaults import SANDBOX_PASS_ENV, SANDBOX_PROBE_TIMEOUT_S, SANDBOX_SET_ENV
from factoryctl.core.errors import FactoryError

SCRATCH_HOME = "/tmp/home"  # inside the sandbox's own fresh /tmp: the same path every call, empty every call


class SandboxUnavailable(FactoryError):
    """The sandbox is on but cannot run here (bwrap missing, user namespaces off): never run unsandboxed."""


@dataclass(frozen=True)
class Policy:
    """What one sandboxed call may see and do."""

    workdir: Path  # the worktree: the call's cwd
    writable: bool = True  # False: the worktree is read-only (the reviewer)
    network: bool = False
    home: Path | None = None  # a per-name cache, read-write, that becomes HOME
    read_only: tuple[Path, ...] = ()  # bound back read-only (the clone's git dir)
    extra_writable: tuple[Path, ...] = ()  # bound back read-write (sandbox.writable)
    scratch_home: bool = False  # HOME is an empty folder in the call's own /tmp, gone with it (instead of `home`)


@dataclass(frozen=True)
class Sandbox:
    enabled: bool
    hide: tuple[Path, ...]  # hidden behind an empty tmpfs: the user's home, FACTORY_HOME
    bwrap: str = "bwrap"
    # Hidden last, so no bind of the call (its worktree, a writable folder) shows them again: the
    # shared state's socket folders (an agent must never reach the database).
    sealed: tuple[Path, ...] = ()

    def wrap(self, argv: Sequence[str], policy: Policy) -> list[str]:
        if not self.enabled:
            return list(argv)
        return [*self.bwrap_args(policy), "--", *argv]

    def bwrap_args(self, policy: Policy) -> list[str]:
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if not policy.network:
            args.append("--unshare-net")
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for path in self.hide:
            if path.exists():
                args += ["--tmpfs", str(path)]
        for path in policy.read_only:
            if path.exists():
                args += ["--ro-bind", str(path), str(path)]
        for path in policy.extra_writable:
            if path.exists():
                args += ["--bind", str(path), str(path)]
        if policy.scratch_home:
            args += ["--dir", SCRATCH_HOME]
        elif policy.home is not None:
            args += ["--bind", str(policy.home), str(policy.home)]
        mode = "--bind" if policy.writable else "--ro-bind"
        args += [mode, str(policy.workdir), str(policy.workdir)]
        for path in self.sealed:
            if path.exists():
                args += ["--tmpfs", str(path)]
        return [*args, "--chdir", str(policy.workdir)]

    def check(self) -> None:
        """Raise SandboxUnavailable (one line, what to do) unless a sandboxed call works here."""
        if not self.enabled:
            return
        if shutil.which(self.bwrap) is None:
            raise SandboxUnavailable(
                "the sandbox is on but bubblewrap is missing: apt-get install bubblewrap "
                "(or set sandbox.enabled = false, for development only)"
            )
        probe = self.wrap(["true"], Policy(workdir=Path("/"), writable=False))
        done = run(probe, timeout=SANDBOX_PROBE_TIMEOUT_S, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        if not done.ok:
            raise SandboxUnavailable(
                f"the sandbox is on but bubblewrap cannot run here ({done.tail(160).strip() or 'no output'}); "
                "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or an AppArmor "
                "profile for bwrap on Ubuntu 24.04)"
            )


def allowed_env(source: Mapping[str, str], home: Path | None, extra: Sequence[str] = ()) -> dict[str, str]:
    """The environment of a sandboxed call: an allow-list, HOME pointing at its cache, nothing else."""
    env = {k: source[k] for k in (*SANDBOX_PASS_ENV, *extra) if k in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(SANDBOX_SET_ENV)
    if home is not None:
        env["HOME"] = str(home)
    return env


@dataclass(frozen=True)
class Launch:
    """How untrusted commands of one call start: in which sandbox, with what policy and environment."""

    sandbox: Sandbox
    policy: Policy
    env: Mapping[str, str]

    def fresh(self, home: Path, verdict: Path) -> Launch:
        """This launch with an empty `home` of its own as HOME (one check run: nothing persists to
        the next), bytecode neither written nor read from the worktree, tool caches inside it, and
        `verdict` (the folder of its report's named pipe) read-only."""
        caches = home / ".cache"
        env = {**self.env, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPYCACHEPREFIX": str(home / ".pycache"), "PYTHONNOUSERSITE": "1",
               "XDG_CACHE_HOME": str(caches), "XDG_CONFIG_HOME": str(home / ".config"),
               # Tools' own caches out of the worktree (a cache there would void the run):
               "MYPY_CACHE_DIR": str(caches / "mypy"), "RUFF_CACHE_DIR": str(caches / "ruff"),
               "PYTEST_ADDOPTS": "-p no:cacheprovider"}  # fmt: skip
        policy = replace(self.policy, home=home, read_only=(*self.policy.read_only, verdict))
        return Launch(self.sandbox, policy, env)

    def scratch(self) -> Launch:
        """This launch with an empty HOME that lives and dies with the call (repo.setup): nothing the
        agent left in its HOME (a ~/.npmrc, a pip.conf) steers it, nothing it leaves reaches the next
        call. Always at the same path, so a package manager's store location never changes. (Without
        the sandbox, for development only, the launch is returned as it is.)"""
        if not self.sandbox.enabled:
            return self
        policy = replace(self.policy, home=None, scratch_home=True)
        return Launch(self.sandbox, policy, {**self.env, "HOME": SCRATCH_HOME})

    def argv(self, argv: Sequence[str], *, cwd: Path | None = None, network: bool | None = None) -> list[str]:
        """`argv` wrapped; `cwd` a folder inside the workdir, `network` this command's own need."""
        policy = self.policy
        if network is not None and network != policy.network:
            policy = replace(policy, network=network)
        wrapped = self.sandbox.wrap(argv, policy)
        if cwd is not None and self.sandbox.enabled and cwd != policy.workdir:
            at = wrapped.index("--chdir")
            wrapped[at + 1] = str(cwd)
        return wrapped
