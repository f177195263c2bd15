"""`factoryctl bot ...`: the Telegram bot, its learning run and its learned skills."""

from __future__ import annotations

from typing import Annotated

import typer

from factoryctl.cli import terminal as render
from factoryctl.cli.options import JsonOpt
from factoryctl.jobs.context import Context

app = typer.Typer(help="The Telegram bot (long polling); `bot improve` and `bot skills` manage what it learned.")
skills_app = typer.Typer(help="The bot's learned skills ($FACTORY_HOME/bot-skills/NAME.md).", no_args_is_help=True)
app.add_typer(skills_app, name="skills")


@app.callback(invoke_without_command=True)
def bot(context: typer.Context) -> None:
    """Run the Telegram bot (TELEGRAM_BOT_TOKEN, telegram.api_url, telegram.allowed_chat_ids) until SIGTERM."""
    if context.invoked_subcommand is not None:
        return
    import logging

    from factoryctl.jobs.bot.app import BotJob

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    BotJob.from_env(Context.load()).run()


@app.command("improve")
def improve(json: JsonOpt = False) -> None:
    """Turn the messages the bot could not handle into bot skills (asks the reviewer model)."""
    from factoryctl.jobs.bot.improve import Improve

    report = Improve(Context.load()).run()
    if json:
        render.emit_json(report.as_event())
        return
    render.emit(f"{report.messages} unhandled message(s), {report.proposed} skill(s) proposed, "
                f"{len(report.accepted)} kept: {', '.join(report.accepted) or '-'}")  # fmt: skip
    for refused in report.refused:
        render.emit(f"  refused {refused['name']}: {refused['reason']}")
    if report.coverage:
        render.emit(f"coverage: {report.coverage['handled']} of {report.coverage['total']} would now be handled")
    if report.note:
        render.emit(report.note)


def _book() -> object:
    from factoryctl.jobs.bot.actions import Actions
    from factoryctl.jobs.bot.skills import SkillBook

    ctx = Context.load()
    return SkillBook(ctx.paths.bot_skills_dir, Actions(ctx).snapshot)


@skills_app.command("list")
def skills_list(json: JsonOpt = False) -> None:
    """The learned skills (and files that no longer validate)."""
    from factoryctl.jobs.bot.skills import SkillBook

    book = _book()
    assert isinstance(book, SkillBook)
    skills, problems = book.load()
    if json:
        rows = [{"name": s.name, "pattern": s.pattern, "action": s.action, "template": s.template,
                 "description": s.description} for s in skills]  # fmt: skip
        render.emit_json({"skills": rows, "invalid": problems})
        return
    if not skills and not problems:
        render.emit("no bot skills yet (`factoryctl bot improve` learns them)")
    for s in skills:
        render.emit(f"{s.name:<24} {('-> /' + s.action) if s.action else 'template'}  /{s.pattern}/")
    for name, why in problems.items():
        render.emit(f"{name:<24} INVALID: {why}")


@skills_app.command("show")
def skills_show(name: Annotated[str, typer.Argument(help="The skill's name.")]) -> None:
    """One skill's file."""
    from factoryctl.jobs.bot.skills import SkillBook

    book = _book()
    assert isinstance(book, SkillBook)
    render.emit(book.show(name).rstrip())


@skills_app.command("remove")
def skills_remove(name: Annotated[str, typer.Argument(help="The skill's name.")]) -> None:
    """Delete a skill; the running bot stops using it at once."""
    from factoryctl.jobs.bot.skills import SkillBook

    book = _book()
    assert isinstance(book, SkillBook)
    book.remove(name)
    render.emit(f"removed bot skill {name}")
