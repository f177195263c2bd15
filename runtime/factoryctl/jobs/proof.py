"""`factoryctl init` proves what it wrote (and `init --check` proves an existing home).

Facts first: every command factory.toml names (setup, checks, agent, reviewer) resolves on
PATH to a place the sandbox can see; then setup and every check run once on main, in the
first session's worktree and sandbox, exactly as a cycle runs them (the baseline they make
is the one the first cycle reuses). The result is a list of problems, each one line with its
fix, and main's baseline.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factoryctl.adapters.checks import Pristine, run_checks
from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.errors import FactoryError
from factoryctl.jobs.context import RUNTIME_PYTHON, Context
from factoryctl.jobs.workspace import SetupFailed, Workspace
from factoryctl.rules.detect import HOW_TO_GET


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str

    def line(self) -> str:
        return f"{self.what}: {self.fix}"


@dataclass(frozen=True)
class Proof:
    problems: tuple[Problem, ...] = ()
    baseline: Mapping[str, Counts] = field(default_factory=dict)
    commit: str = ""
    python: str = ""  # the Python the worktrees use, when the repository is a Python one

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "commit": self.commit, "python": self.python,
                "problems": [{"what": p.what, "fix": p.fix} for p in self.problems],
                "baseline": {name: vars(c) for name, c in self.baseline.items()}}  # fmt: skip


def resolve(argv0: str, *, cwd: Path | None = None) -> str | None:
    """The absolute path `argv0` runs (a bare name looked up on PATH, a relative path from `cwd`)."""
    if "/" in argv0:
        path = (cwd or Path.cwd()) / argv0
        return str(path.resolve()) if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which(argv0)
    return str(Path(found).absolute()) if found else None


def sandbox_hides(path: str, hidden: Sequence[Path], shown: Sequence[Path]) -> bool:
    """Whether `path` is out of sight in the sandbox: under a hidden folder and not bound back."""
    place = Path(path)
    return any(place.is_relative_to(h) for h in hidden) and not any(place.is_relative_to(s) for s in shown)


def tool_problems(
    commands: Mapping[str, Sequence[str]], hidden: Sequence[Path], shown: Sequence[Path] = ()
) -> list[Problem]:
    """One problem per command whose program is missing, or lives where the sandbox hides it."""
    out: list[Problem] = []
    seen: set[str] = set()
    for what, argv in commands.items():
        if not argv or argv[0] in seen:
            continue
        seen.add(argv[0])
        name = Path(argv[0]).name
        path = resolve(argv[0])
        if path is None:
            how = HOW_TO_GET.get(name, f"install {name} so that it is on PATH")
            out.append(Problem(f"{what} needs `{argv[0]}`, which is not installed", how))
            continue
        for place in (path, str(Path(path).resolve())):
            if sandbox_hides(place, hidden, shown):
                out.append(Problem(f"{what} runs {place}, inside a folder the sandbox hides",
                                   f"install {name} system-wide (e.g. /usr/local/bin) or list its folder "
                                   "in sandbox.readable"))  # fmt: skip
                break
    return out


def commands_of(ctx: Context) -> dict[str, Sequence[str]]:
    s = ctx.settings
    named: dict[str, Sequence[str]] = {"repo.setup": s.repo.setup}
    named.update({f"check {c.name}": c.command for c in s.checks})
    named.update({"agent.command": s.agent.command, "reviewer.command": s.reviewer.command})
    return named


def python_of(worktree: Path, hidden: Sequence[Path], shown: Sequence[Path]) -> str:
    """Which Python the worktree's checks get: its .venv's (as setup made it) or python3 on PATH."""
    cfg = worktree / ".venv" / "pyvenv.cfg"
    if cfg.is_file():
        values = dict(line.split(" = ", 1) for line in cfg.read_text().splitlines() if " = " in line)
        version = values.get("version_info") or values.get("version") or "?"
        return f"Python {version} from {values.get('home', '?')} (the worktree's .venv, made by setup)"
    found = shutil.which("python3")
    if found and sandbox_hides(str(Path(found).resolve()), hidden, shown):
        return f"python3 on PATH is {found}, which the sandbox hides: checks get /usr/bin/python3 instead"
    return f"python3 on PATH: {found or 'none'}"


def prove(ctx: Context) -> Proof:
    """Check the tools, then run setup and every check once on main in the sandbox."""
    hidden = (Path.home(), ctx.paths.home, Path("/tmp"))  # the sandbox's /tmp is its own, empty
    shown = (*RUNTIME_PYTHON, *map(Path, ctx.settings.sandbox.readable))  # bound back read-only
    problems = tool_problems(commands_of(ctx), hidden, shown)
    try:
        ctx.require_sandbox()
    except FactoryError as exc:
        return Proof((*problems, Problem("the sandbox cannot run", str(exc))))
    if any(p.what.startswith("repo.setup") for p in problems):
        return Proof(tuple(problems))  # no setup, no checks worth running
    session = ctx.settings.session_names[0]
    with ctx.job_lock(f"cycle-{session}"):  # a running factory's cycle there: "already running"
        return _measure(ctx, session, problems, hidden, shown)


def _measure(ctx: Context, session: str, problems: list[Problem], hidden: Sequence[Path],
             shown: Sequence[Path]) -> Proof:  # fmt: skip
    """Setup and every check once on main, in `session`'s worktree, as its cycle runs them."""
    ws = Workspace(ctx, session)
    commit = ws.prepare()
    try:
        ws.setup_if_needed()
    except SetupFailed as exc:
        fix = "fix it (a proxy's certificate: export SSL_CERT_FILE; see the README), then factoryctl init --check"
        return Proof((*problems, Problem(str(exc)[:300], fix)), commit=commit)
    specs = ctx.settings.checks
    baselines = ctx.baselines()
    pristine = Pristine(ws.git, tuple(ctx.settings.repo.dependency_dirs))

    def measure() -> dict[str, CheckRun]:
        return run_checks(specs, ws.launch(), heavy_slot=ctx.heavy_slot, clock=ctx.clock, pristine=pristine)

    baseline, _ = baselines.get(commit, specs, measure, session=session)
    for name, counts in baseline.items():
        if counts.crashed:
            problems.append(Problem(f"check {name} crashed on main ({counts.note or 'no reason given'})",
                                    "run its command by hand in the worktree, fix factory.toml, then "
                                    "factoryctl init --check"))  # fmt: skip
    python = python_of(ws.path, hidden, shown) if any(c.parser in ("pytest", "mypy", "ruff") for c in specs) else ""
    return Proof(tuple(problems), baseline, commit, python)
