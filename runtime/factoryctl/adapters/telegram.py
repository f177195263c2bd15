"""The one door to Telegram: python-telegram-bot (long polling) behind plain values.

The bot job never sees the library: it gets an `Incoming` (chat, text or button press)
and answers with `Reply` values, which this module renders as Telegram HTML with every
piece of text escaped and control characters stripped, split under the 4,096-character
limit. The token goes to the library only; httpx's request log (which prints URLs, and
so the token) is silenced.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field

from factoryctl.core.defaults import BOT_STOP_GRACE_S, TELEGRAM_LIMIT
from factoryctl.core.errors import FactoryError
from factoryctl.core.text import CONTROL

log = logging.getLogger(__name__)


class DeliveryFailed(FactoryError):
    """Telegram (or the network to it) refused a message."""


def sendable(text: str) -> str:
    """Text without control characters (newlines and tabs stay); bidi overrides go too."""
    return CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def escape(text: str) -> str:
    """Untrusted text as Telegram HTML data: it can never open, close or fake a tag."""
    return html.escape(sendable(text), quote=False)


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # Telegram allows at most 64 bytes


@dataclass(frozen=True)
class Reply:
    """One answer: an optional bold title, plain lines (any text: it is escaped), buttons."""

    lines: tuple[str, ...]
    title: str = ""
    buttons: tuple[Button, ...] = ()

    @classmethod
    def text(cls, text: str, title: str = "", buttons: Sequence[Button] = ()) -> Reply:
        return cls(tuple(text.split("\n")), title, tuple(buttons))

    def plain(self) -> str:
        return "\n".join(([self.title] if self.title else []) + list(self.lines))


def chunks(reply: Reply, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The reply as Telegram HTML messages, each at most `limit` characters (of HTML, so also of text).

    Lines are packed whole; a line longer than the limit is cut between characters, never
    inside an escape. Only the title carries markup (<b>), and it is whole in the first message.
    """
    pieces: list[str] = []
    title = sendable(reply.title)
    if title and len(f"<b>{escape(title)}</b>") <= limit:
        pieces.append(f"<b>{escape(title)}</b>")
    elif title:
        pieces.extend(_cut_text(title, limit))
    for line in reply.lines:
        pieces.extend(_cut_text(line, limit))
    out: list[str] = []
    current = ""
    for piece in pieces:
        joined = f"{current}\n{piece}" if current else piece
        if len(joined) <= limit:
            current = joined
            continue
        if current:
            out.append(current)
        current = piece
    if current.strip():
        out.append(current)
    return out or [escape("(nothing)")]


def _cut_text(line: str, limit: int) -> list[str]:
    """One line of untrusted text, escaped, in pieces of at most `limit` characters."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for char in sendable(line):
        escaped = html.escape(char, quote=False)
        if size + len(escaped) > limit:
            out.append("".join(current))
            current, size = [], 0
        current.append(escaped)
        size += len(escaped)
    out.append("".join(current))
    return out


@dataclass(frozen=True)
class Incoming:
    """A message or a button press from one chat."""

    chat_id: int
    text: str = ""
    callback_id: str | None = None  # set for a button press; `text` is then its data
    message_id: int | None = None  # the message the pressed button is under


BackgroundJob = Callable[[asyncio.Event], Coroutine[object, object, None]]


@dataclass
class Handlers:
    """What the bot job does with the world; the adapter only carries messages."""

    on_message: Callable[[Incoming], Awaitable[None]]
    on_refused: Callable[[int], None]
    # Run alongside polling; each is given an event set on SIGTERM, and has BOT_STOP_GRACE_S to
    # end its pass before it is cancelled (a notice sent but not yet recorded is not sent twice).
    background: Sequence[BackgroundJob] = field(default_factory=tuple)


class TelegramBot:
    """A python-telegram-bot Application on `api_url` that answers only `allowed` chats."""

    def __init__(self, token: str, api_url: str, allowed: frozenset[int], *, poll_timeout_s: int = 30) -> None:
        if not token:
            raise FactoryError("TELEGRAM_BOT_TOKEN is not set; the bot needs it (the deploy's secrets file has it)")
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.allowed = allowed
        self.poll_timeout_s = poll_timeout_s
        self._app: object = None

    def run(self, handlers: Handlers) -> None:
        """Poll until SIGTERM/SIGINT; network errors back off inside the library and never end this."""
        from telegram import Update
        from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, TypeHandler

        logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the URL, with the token
        tasks: list[asyncio.Task[None]] = []
        stop = asyncio.Event()

        async def started(app: Application) -> None:  # type: ignore[type-arg]
            async def once_running(job: BackgroundJob) -> None:
                # A stop signal while the application bootstraps skips post_stop, so a job started
                # then could be cut mid-pass: the jobs begin once it runs.
                while not app.running:
                    await asyncio.sleep(0.05)
                await job(stop)

            tasks.extend(asyncio.create_task(once_running(job)) for job in handlers.background)

        async def stopping(app: Application) -> None:  # type: ignore[type-arg]
            stop.set()
            if tasks:
                await asyncio.wait(tasks, timeout=BOT_STOP_GRACE_S)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        async def dispatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            incoming = _incoming(update)
            if incoming is None:
                return
            if incoming.chat_id not in self.allowed:  # an empty list answers no one
                handlers.on_refused(incoming.chat_id)
                return
            await handlers.on_message(incoming)

        app = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(f"{self.api_url}/bot")
            .base_file_url(f"{self.api_url}/file/bot")
            .rate_limiter(AIORateLimiter(max_retries=3))
            .concurrent_updates(8)
            .post_init(started)
            .post_stop(stopping)
            .build()
        )
        app.add_handler(TypeHandler(Update, dispatch))
        self._app = app
        app.run_polling(
            allowed_updates=["message", "callback_query"],
            timeout=self.poll_timeout_s,
            drop_pending_updates=False,
            bootstrap_retries=-1,  # Telegram unreachable at boot: keep trying, backing off; a bad token ends it
            close_loop=True,
        )

    def _bot(self) -> object:
        bot = getattr(self._app, "bot", None)
        if bot is None:
            raise DeliveryFailed("the bot is not running")
        return bot

    async def send(self, chat_id: int, reply: Reply) -> list[int]:
        """Send `reply` (split as needed); the buttons go under the last message. Returns message ids."""
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
        from telegram.error import TelegramError

        bot = self._bot()
        parts = chunks(reply)
        ids = []
        for i, part in enumerate(parts):
            markup = None
            if reply.buttons and i == len(parts) - 1:
                markup = InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data)
                                                for b in reply.buttons]])  # fmt: skip
            try:
                sent = await bot.send_message(  # type: ignore[attr-defined]
                    chat_id, part, parse_mode="HTML", reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )  # fmt: skip
            except TelegramError as exc:
                raise DeliveryFailed(f"sendMessage to {chat_id}: {exc}") from exc
            ids.append(int(sent.message_id))
        return ids

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> None:
        """Replace a message's text (and drop its buttons): e.g. an announcement once decided."""
        from telegram.error import TelegramError

        try:
            await self._bot().edit_message_text(  # type: ignore[attr-defined]
                chunks(reply)[0], chat_id=chat_id, message_id=message_id, parse_mode="HTML"
            )
        except TelegramError as exc:
            raise DeliveryFailed(f"editMessageText in {chat_id}: {exc}") from exc

    async def answer(self, callback_id: str, text: str = "") -> None:
        from telegram.error import TelegramError

        try:
            await self._bot().answer_callback_query(callback_id, text=sendable(text)[:190])  # type: ignore[attr-defined]
        except TelegramError as exc:
            log.warning("answerCallbackQuery failed: %s", exc)


def _incoming(update: object) -> Incoming | None:
    query = getattr(update, "callback_query", None)
    if query is not None and query.message is not None:
        return Incoming(query.message.chat.id, str(query.data or ""), str(query.id), query.message.message_id)
    message = getattr(update, "message", None)
    if message is None or message.chat is None:
        return None
    return Incoming(message.chat.id, str(message.text or ""))
