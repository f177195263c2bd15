"""The skill files under $FACTORY_HOME/skills/: read, written whole and atomically, under one lock.

Names are checked before they become paths (no `../`), and a file that is not a regular
file (a symlink an agent planted) is never read or written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from factoryctl.core.errors import NotFound, UsageError
from factoryctl.core.skill import NAME, Skill, parse_skill
from factoryctl.state.locks import exclusive
from factoryctl.state.stores import atomic_write_text

MAX_FILE_BYTES = 64 * 1024  # a hand-made skill file larger than this is not read into prompts


class SkillStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def lock(self) -> Path:
        return self.folder / ".skills.lock"

    def path(self, name: str) -> Path:
        if not NAME.match(name):
            raise UsageError(f"invalid skill name {name!r}: 3-60 of a-z, 0-9 and '-'")
        return self.folder / f"{name}.md"

    def all(self) -> list[Skill]:
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.md")):
            skill = self._read(path)
            if skill is not None:
                out.append(skill)
        return out

    def _read(self, path: Path) -> Skill | None:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        skill = parse_skill(path.read_text(encoding="utf-8", errors="replace"), path.stem)
        return skill if skill.name == path.stem else replace(skill, name=path.stem)  # the file names it

    def get(self, name: str) -> Skill:
        skill = self._read(self.path(name))
        if skill is None:
            raise NotFound(f"no skill {name!r} (see `factoryctl skills list`)")
        return skill

    def write(self, skill: Skill) -> Path:
        path = self.path(skill.name)
        with exclusive(self.lock):
            atomic_write_text(path, skill.render())
        return path

    def remove(self, name: str) -> None:
        path = self.path(name)
        with exclusive(self.lock):
            if not path.is_file() or path.is_symlink():
                raise NotFound(f"no skill {name!r} (see `factoryctl skills list`)")
            path.unlink()

    def mark_shown(self, names: Iterable[str], ts: str) -> None:
        """Count one more showing to an agent in each skill's front matter."""
        with exclusive(self.lock):
            for name in names:
                if not NAME.match(name):
                    continue
                path = self.path(name)
                skill = self._read(path) if path.exists() else None
                if skill is not None:
                    atomic_write_text(path, skill.marked_shown(ts).render())
