"""`factoryctl skills ...`: the skill files agents are shown (seeded by the deploy, grown by the doctor)."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.core.text import CONTROL
from factoryctl.jobs.context import Context
from factoryctl.state.skills import SkillStore

app = typer.Typer(help="Skill files: techniques learned from work that landed.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="The skill's name (its file name without .md).")]


def plain(text: str, keep_lines: bool = False) -> str:
    """Untrusted text for a terminal: control characters (escape sequences) shown, never obeyed."""
    lines = text.splitlines() if keep_lines else [" ".join(text.split())]
    return "\n".join(CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line) for line in lines)


def _store() -> SkillStore:
    return SkillStore(Context.load().paths.skills_dir)


@app.command("list")
def skills_list(json: JsonOpt = False) -> None:
    """Every skill: name, times shown, where it came from, when to apply it."""
    skills = _store().all()
    if json:
        render.emit_json([{**vars(s), "body": None} for s in skills])
        return
    if not skills:
        render.emit("no skills")
    for s in skills:
        source = s.source_branch or "seeded"
        render.emit(plain(f"{s.name:<32} shown {s.shown:>4}  {source:<28} {s.when}"))


@app.command("show")
def skills_show(name: NameArg, json: JsonOpt = False) -> None:
    """One skill with its front matter."""
    skill = _store().get(name)
    render.emit_json(vars(skill)) if json else render.emit(plain(skill.render(), keep_lines=True))


@app.command("remove")
def skills_remove(name: NameArg) -> None:
    """Delete a skill file (agents stop seeing it at their next cycle)."""
    _store().remove(name)
    render.emit(f"removed skill {name}")


@app.command("path")
def skills_path() -> None:
    """Where the skill files live."""
    render.emit(str(Context.load().paths.skills_dir))
