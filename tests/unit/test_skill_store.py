"""The skill store on real files: names never become paths outside it, planted links are ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from factoryctl.core.errors import NotFound, UsageError
from factoryctl.core.skill import Skill
from factoryctl.state.skills import MAX_FILE_BYTES, SkillStore


def test_write_read_count_and_remove(tmp_path: Path) -> None:
    store = SkillStore(tmp_path / "skills")
    store.write(Skill("keep-it-small", "always", "One change."))
    store.mark_shown(["keep-it-small", "no-such-skill", "../escape"], "2026-11-30T10:00:00.000Z")
    skill = store.get("keep-it-small")
    assert (skill.shown, skill.last_shown) == (1, "2026-11-30T10:00:00.000Z")
    store.remove("keep-it-small")
    assert store.all() == []
    with pytest.raises(NotFound):
        store.remove("keep-it-small")


@pytest.mark.parametrize("name", ["../secrets", "/etc/passwd", "a/b", "UPPER", "x", "a" * 61, ""])
def test_a_hostile_name_is_refused_before_it_is_a_path(tmp_path: Path, name: str) -> None:
    store = SkillStore(tmp_path / "skills")
    with pytest.raises(UsageError):
        store.get(name)
    with pytest.raises(UsageError):
        store.remove(name)


def test_planted_links_and_huge_files_are_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "skills"
    folder.mkdir()
    secret = tmp_path / "secrets.env"
    secret.write_text("ANTHROPIC_API_KEY=sk-ant-very-secret\n")
    (folder / "linked.md").symlink_to(secret)
    (folder / "huge.md").write_text("x" * (MAX_FILE_BYTES + 1))
    (folder / "fine.md").write_text("Just a body.\n")
    store = SkillStore(folder)
    assert [s.name for s in store.all()] == ["fine"]
    with pytest.raises(NotFound):
        store.get("linked")
    with pytest.raises(NotFound):
        store.remove("linked")
    store.mark_shown(["linked"], "2026-11-30T10:00:00.000Z")
    assert secret.read_text() == "ANTHROPIC_API_KEY=sk-ant-very-secret\n"  # never rewritten through the link
