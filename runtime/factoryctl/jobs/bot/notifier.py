"""Deliver alerts to the allow-listed chats, at least once, across restarts.

A cursor (the `bot-notifier.json` document: a position in the experiment log, see
`EventLog.read_after`, and when each alert key was last delivered) says how far the bot has
told. Each poll reads the complete events after it, asks `rules.notices.decide` what to say, sends it (each notice
retried BOT_SEND_TRIES times, then recorded as `alert_undelivered`), and only then moves
the cursor: a crash in between means a repeat, never a loss. With no cursor yet the bot
starts at the end of the log (it does not replay history). On SIGTERM the pass under way
is finished first, so a clean restart repeats nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from factoryctl.adapters.telegram import Button, DeliveryFailed, Reply
from factoryctl.core.defaults import BOT_READ_BYTES, BOT_SEND_BACKOFF_S, BOT_SEND_TRIES
from factoryctl.core.records import as_dict
from factoryctl.jobs.context import Context
from factoryctl.rules.notices import Notice, NoticeRules, decide
from factoryctl.state.eventlog import Event, EventLog

log = logging.getLogger(__name__)

Send = Callable[[int, Reply], Awaitable[object]]


@dataclass
class Cursor:
    offset: int
    sent: dict[str, str] = field(default_factory=dict)


def read_new(log: EventLog, offset: int, limit: int = BOT_READ_BYTES) -> tuple[list[Event], int]:
    """The complete events after the cursor `offset` and the cursor after them."""
    if log.kind == "files":
        return log.read_after(offset, limit)
    return log.read_after(offset)


class Notifier:
    def __init__(self, ctx: Context, send: Send, chats: Sequence[int]) -> None:
        self.ctx = ctx
        self.send = send
        self.chats = list(chats)
        self.store = ctx.state.document("bot-notifier.json", dict)
        self.rules = NoticeRules(
            landings=ctx.settings.telegram.notify_landings, quiet=timedelta(seconds=ctx.settings.alerts.quiet_s)
        )

    def cursor(self) -> Cursor:
        raw = as_dict(self.store.read())
        offset = raw.get("offset")
        if not isinstance(offset, int) or offset < 0:
            offset = self.ctx.log.end_cursor()
            self.save(Cursor(offset))
        sent = {str(k): str(v) for k, v in as_dict(raw.get("sent")).items()}
        return Cursor(offset, sent)

    def save(self, cursor: Cursor) -> None:
        with self.store.update() as doc:
            doc.clear()
            doc.update({"offset": cursor.offset, "sent": cursor.sent})

    async def poll(self) -> int:
        """One pass: deliver what is new; returns how many notices went out."""
        cursor = self.cursor()
        events, offset = read_new(self.ctx.log, cursor.offset)
        if offset == cursor.offset:
            return 0
        decision = decide(events, cursor.sent, self.ctx.clock(), self.rules)
        delivered = 0
        for notice in decision.notices:
            for chat in self.chats:
                delivered += await self.deliver(chat, notice)
        self.save(Cursor(offset, dict(decision.sent)))
        return delivered

    async def deliver(self, chat: int, notice: Notice) -> int:
        reply = as_reply(notice)
        error = ""
        for attempt in range(BOT_SEND_TRIES):
            try:
                await self.send(chat, reply)
                return 1
            except DeliveryFailed as exc:
                error = str(exc)
                await asyncio.sleep(BOT_SEND_BACKOFF_S * 2**attempt)
        data: dict[str, Any] = {"key": notice.key, "chat": chat, "tries": BOT_SEND_TRIES, "error": error[:300]}
        self.ctx.log.append("alert_undelivered", data=data)
        return 0

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `telegram.notify_poll_s` until `stop` is set; a failed pass is logged and retried.

        A pass under way when `stop` is set is finished, its cursor saved: a notice sent but not
        yet recorded would be sent again by the next bot."""
        while not stop.is_set():
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # the notifier must outlive a bad pass (disk, a torn cursor)
                log.exception("notifier pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.ctx.settings.telegram.notify_poll_s)


def as_reply(notice: Notice) -> Reply:
    buttons: tuple[Button, ...] = ()
    if notice.branch:
        buttons = (Button("Approve", f"approve:{notice.branch}"), Button("Reject", f"reject:{notice.branch}"))
        if any(len(b.data.encode()) > 64 for b in buttons):  # Telegram's limit: use /approve instead
            buttons = ()
    return Reply.text(notice.text, title=notice.title, buttons=buttons)
