"""What the team's memory puts into a cycle's prompt: the skill files and the standup's advice.

Skills that match the task or the files at hand come first, within the prompt's skill
budget; each one shown is counted in its front matter (the doctor retires unused ones).
The advice is what the last standup found: files another session is changing too.
"""

from __future__ import annotations

from collections.abc import Sequence

from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import PROMPT_BUDGET_SKILLS
from factoryctl.core.errors import FactoryError
from factoryctl.jobs.context import Context
from factoryctl.jobs.prompting import TextFile, fit
from factoryctl.rules.skills import rank
from factoryctl.state.skills import SkillStore


def skills_for_prompt(ctx: Context, at_hand: str, cuts: list[str]) -> list[TextFile]:
    """The skills to show, best match for `at_hand` (task text, file names) first; counted as shown."""
    store = SkillStore(ctx.paths.skills_dir)
    ranked = rank(store.all(), at_hand)
    files = [TextFile(f"{s.name}.md", s.prompt_text()) for s in ranked]
    shown = fit(files, PROMPT_BUDGET_SKILLS, "skill file", cuts)
    if shown:
        store.mark_shown([f.name.removesuffix(".md") for f in shown], format_ts(ctx.clock()))
    return shown


def advice_for(ctx: Context, session: str, limit: int = 10) -> list[str]:
    """The last standup's advice for this session (overlaps with other sessions' work)."""
    try:  # a document of the state: the standup on the gate writes it, cycles on every host read it
        doc = ctx.state.document(ctx.paths.advice_file.name, dict).read()
    except (FactoryError, RecursionError):
        return []
    lines = doc.get("sessions", {}).get(session, []) if isinstance(doc, dict) else []
    return [str(line)[:300] for line in lines[:limit]] if isinstance(lines, list) else []


def at_hand(task_text: str, files: Sequence[str]) -> str:
    """The words a skill is matched against: the task, and the path parts of the files in play."""
    return " ".join([task_text, *(f.replace("/", " ").replace(".", " ").replace("_", " ") for f in files)])
