"""`factoryctl bot`: the Telegram bot job, wiring chats to the bot's actions.

A message from an allow-listed chat is a command (`/status`, `/task Fix X`, ...), a
button press (`approve:BRANCH`), or free text matched against the learned skills; what
nothing handles is recorded as `bot_unhandled` for `bot improve`. Every message ends as
one `bot_message` event (chat, command, outcome, latency); a refused chat only as
`bot_refused` (its id, nothing else) and gets no answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from factoryctl.adapters.telegram import DeliveryFailed, Handlers, Incoming, Reply, TelegramBot, sendable
from factoryctl.core.defaults import BOT_TEXT_CHARS
from factoryctl.core.errors import FactoryError
from factoryctl.jobs.bot.actions import Actions, Answer, error
from factoryctl.jobs.bot.notifier import Notifier
from factoryctl.jobs.bot.skills import SkillBook
from factoryctl.jobs.context import Context
from factoryctl.rules.botskills import Action, BotSkillRefused, match, render_template

log = logging.getLogger(__name__)

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"


def parse_command(text: str) -> tuple[Action, str] | None:
    """`/task Fix X` -> (TASK, "Fix X"); `/status@factory_bot` works too; None when not a known command."""
    if not text.startswith("/"):
        return None
    head, _, rest = text.partition(" ")
    name = head[1:].split("@")[0].lower()
    name = "help" if name == "start" else name  # what Telegram clients send first
    try:
        return Action(name), rest.strip()
    except ValueError:
        return None


class BotJob:
    def __init__(self, ctx: Context, client: TelegramBot) -> None:
        self.ctx = ctx
        self.client = client
        self.actions = Actions(ctx, skills=lambda: self.book.skills())
        self.book = SkillBook(ctx.paths.bot_skills_dir, self.actions.snapshot)
        self.notifier = Notifier(ctx, client.send, sorted(client.allowed))
        self.background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_env(cls, ctx: Context) -> BotJob:
        tg = ctx.settings.telegram
        return cls(ctx, TelegramBot(os.environ.get(TOKEN_ENV, ""), tg.api_url, frozenset(tg.allowed_chat_ids)))

    def run(self) -> None:
        self.ctx.log.append("bot", data={"action": "started", "chats": len(self.client.allowed)})
        self.notifier.cursor()  # a first start tells from here on, though its first pass comes later
        try:
            self.client.run(Handlers(self.on_message, self.on_refused, background=[self.notifier.run]))
        finally:
            self.ctx.log.append("bot", data={"action": "stopped"})

    def on_refused(self, chat_id: int) -> None:
        self.ctx.log.append("bot_refused", data={"chat": chat_id})

    async def on_message(self, incoming: Incoming) -> None:
        start = time.monotonic()
        text = sendable(incoming.text)[:BOT_TEXT_CHARS].strip()
        if incoming.callback_id is not None:
            command, answer = await self.on_button(incoming, text)
        else:
            command, answer = await asyncio.to_thread(self.answer, text)
        if incoming.callback_id is None or answer.outcome == "error":
            await self._send(incoming.chat_id, answer.reply)
        latency_ms = round((time.monotonic() - start) * 1000, 1)
        self.ctx.log.append("bot_message", data={"chat": incoming.chat_id, "command": command,
                                                 "outcome": answer.outcome, "latency_ms": latency_ms})  # fmt: skip
        if answer.later is not None:
            self._start_later(incoming, answer)

    def answer(self, text: str) -> tuple[str, Answer]:
        """What the bot says to `text` (a command or free text), and which command it was."""
        parsed = parse_command(text)
        if parsed is not None:
            action, arg = parsed
            return action.value, self.actions.do(action, arg)
        if not text:
            return "empty", error("I only read text messages; /help lists what I can do")
        if text.startswith("/"):
            return "unknown", error(f"I do not know {text.split()[0][:40]}; /help lists what I can do")
        found = match(self.book.skills(), text)
        if found is None:
            self.ctx.log.append("bot_unhandled", data={"text": text})
            return "unhandled", error("I cannot do that yet; /help lists what I can do (I will learn from this)")
        skill = found.skill
        if skill.action is not None:
            return f"skill:{skill.name}", self.actions.do(skill.action, found.arg)
        try:
            said = render_template(skill.template or "", self.actions.snapshot(), skill.name)
        except BotSkillRefused as exc:
            return f"skill:{skill.name}", error(f"Error: {exc}")
        return f"skill:{skill.name}", Answer(Reply.text(said.strip() or "(nothing)"))

    async def on_button(self, incoming: Incoming, data: str) -> tuple[str, Answer]:
        """A press of Approve/Reject under an announcement: act, then edit the announcement to say so."""
        verb, _, branch = data.partition(":")
        await self.client.answer(incoming.callback_id or "", f"{verb} {branch}")
        if verb not in (Action.APPROVE, Action.REJECT) or not branch:
            return "button", error("that button is not mine")
        answer = await asyncio.to_thread(self.actions.do, Action(verb), branch + " rejected from Telegram"
                                         if verb == Action.REJECT else branch)  # fmt: skip
        if incoming.message_id is not None and answer.outcome != "error":
            word = "approving" if verb == Action.APPROVE else "rejected"
            reply = Reply.text(f"{branch}: {word} (by a person)\n" + answer.reply.plain(), title="Review")
            try:
                await self.client.edit(incoming.chat_id, incoming.message_id, reply)
            except DeliveryFailed as exc:
                log.warning("%s", exc)
        return f"button:{verb}", answer

    def _start_later(self, incoming: Incoming, answer: Answer) -> None:
        later = answer.later
        assert later is not None

        async def finish() -> None:
            try:
                reply = await asyncio.to_thread(later)
            except FactoryError as exc:
                reply = Reply.text(f"Error: {exc}")
            await self._send(incoming.chat_id, reply)

        task = asyncio.create_task(finish())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _send(self, chat_id: int, reply: Reply) -> None:
        try:
            await self.client.send(chat_id, reply)
        except DeliveryFailed as exc:
            log.warning("%s", exc)
