"""The learned bot skills on disk: `$FACTORY_HOME/bot-skills/NAME.md`, validated on every load.

The bot reloads them when the folder changes, so `bot improve` and `bot skills remove`
take effect without a restart. A file that no longer validates is skipped (and named in
`problems`), never half-used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from factoryctl.core.defaults import BOT_SKILL_MAX
from factoryctl.core.errors import NotFound, UsageError
from factoryctl.rules.botskills import BotSkill, BotSkillRefused, parse_skill_file
from factoryctl.state.stores import atomic_write_text


class SkillBook:
    def __init__(self, folder: Path, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.folder = folder
        self.snapshot = snapshot
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._skills: list[BotSkill] = []
        self.problems: dict[str, str] = {}

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = sorted(self.folder.glob("*.md"))
        except OSError:
            return ()
        out = []
        for path in files:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            out.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def skills(self) -> list[BotSkill]:
        """The valid skills, re-read only when a file was added, changed or removed."""
        signature = self._signature()
        if signature != self._seen:
            self._skills, self.problems = self.load()
            self._seen = signature
        return list(self._skills)

    def load(self) -> tuple[list[BotSkill], dict[str, str]]:
        skills, problems = [], {}
        snapshot = self.snapshot()
        for path in sorted(self.folder.glob("*.md"))[:BOT_SKILL_MAX] if self.folder.is_dir() else []:
            try:
                skill = parse_skill_file(path.read_text(encoding="utf-8"), snapshot)
            except (BotSkillRefused, OSError, UnicodeDecodeError) as exc:
                problems[path.name] = str(exc)
                continue
            if f"{skill.name}.md" != path.name:
                problems[path.name] = f"its name is {skill.name!r}; the file must be {skill.name}.md"
                continue
            skills.append(skill)
        return skills, problems

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"invalid skill name {name!r}")
        return self.folder / f"{name}.md"

    def save(self, skill: BotSkill) -> Path:
        path = self.path(skill.name)
        atomic_write_text(path, skill.as_front_matter())
        return path

    def show(self, name: str) -> str:
        path = self.path(name)
        if not path.exists():
            raise NotFound(f"no bot skill {name!r} (see `factoryctl bot skills list`)")
        return path.read_text(encoding="utf-8")

    def remove(self, name: str) -> None:
        path = self.path(name)
        if not path.exists():
            raise NotFound(f"no bot skill {name!r} (see `factoryctl bot skills list`)")
        path.unlink()
