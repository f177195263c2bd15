"""The deploy seeds the repository's starting skills without overwriting any skill on the host."""

from __future__ import annotations

import shlex

from factoryctl.core.skill import NAME, parse_skill
from factoryctl.rules.skills import similarity
from provision import operations
from tests.helpers import REPO_ROOT

SEEDS = sorted((REPO_ROOT / "skills").glob("*.md"))


def test_only_missing_skills_are_copied() -> None:
    present = {"a.md": True, "b c.md": False, "d.md": False}
    commands = operations.seed_commands(
        present, "/opt/factory/skills", "/home/factory/factory/skills", "factory:factory"
    )
    assert [shlex.split(c)[-1] for c in commands] == [
        "/home/factory/factory/skills/b c.md",
        "/home/factory/factory/skills/d.md",
    ]
    assert shlex.split(commands[0])[:7] == ["install", "-o", "factory", "-g", "factory", "-m", "644"]
    assert operations.seed_commands({"a.md": True}, "/s", "/d", "factory:factory") == []


def test_the_starting_skills_are_valid_distinct_skill_files() -> None:
    assert len(SEEDS) >= 3
    skills = [parse_skill(p.read_text(), p.stem) for p in SEEDS]
    for path, skill in zip(SEEDS, skills, strict=True):
        assert skill.name == path.stem and NAME.match(skill.name)
        assert skill.when and skill.body.strip() and len(skill.body) < 2000
    for i, a in enumerate(skills):
        for b in skills[i + 1 :]:
            assert similarity(f"{a.when}\n{a.body}", f"{b.when}\n{b.body}") < 0.6, (a.name, b.name)
