"""Build the runtime's wheel from this checkout, byte for byte the same while the code is the same.

The deploy uploads the wheel and installs it only when its hash changed, so the build must
be reproducible: SOURCE_DATE_EPOCH pins the timestamps inside the zip. It builds from a
copy of the sources (the checkout gets no build/ or egg-info debris), and keeps the result
in a cache keyed by the sources' hash: a redeploy of unchanged code builds nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("pyproject.toml", "README.md", "runtime")
IGNORED_SUFFIXES = ("__pycache__", ".egg-info", ".pyc")
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip can hold
BUILD_TIMEOUT_S = 300


class WheelBuildFailed(Exception):
    """pip could not build the runtime's wheel."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "factory-deploy" / "wheels"


def source_files(repo: Path) -> Iterator[Path]:
    """The files the wheel is built from, in a stable order."""
    for name in SOURCES:
        path = repo / name
        if path.is_file():
            yield path
            continue
        for found in sorted(path.rglob("*")):
            if found.is_file() and not any(p.endswith(IGNORED_SUFFIXES) for p in found.relative_to(repo).parts):
                yield found


def sources_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for path in source_files(repo):
        digest.update(str(path.relative_to(repo)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_wheel(repo: Path, cache: Path | None = None) -> Wheel:
    """The runtime's wheel for the sources in `repo`, built once per version of them."""
    repo = repo.resolve()
    folder = (cache or cache_root()) / sources_digest(repo)[:24]
    wheels = sorted(folder.glob("factoryctl-*.whl"))
    if len(wheels) != 1:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _build(repo, folder)
        wheels = sorted(folder.glob("factoryctl-*.whl"))
    return Wheel(wheels[0], hashlib.sha256(wheels[0].read_bytes()).hexdigest())


def _build(repo: Path, folder: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="factory-wheel-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        for path in source_files(repo):
            dest = src / path.relative_to(repo)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
             "--wheel-dir", str(out), str(src)],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH},
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        wheels = sorted(out.glob("factoryctl-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            tail = (done.stderr.strip() or done.stdout.strip())[-800:]
            raise WheelBuildFailed(f"pip wheel {repo} failed (exit {done.returncode}): {tail}")
        staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
        shutil.move(str(wheels[0]), staged / wheels[0].name)
        shutil.rmtree(folder, ignore_errors=True)
        staged.rename(folder)
