"""A local stand-in for Telegram's Bot API, for the tests, the bench and the demo.

    python -m tests.support.telegram_standin --port 8081 --token TOKEN   (serves; prints its URL)
    python -m tests.support.telegram_standin --port 8081 --token TOKEN --say "/status"
                                                  (as chat 111, prints the bot's reply)

It speaks the part of the Bot API the factory's bot uses (getMe, getUpdates with long
polling, deleteWebhook, sendMessage, editMessageText, answerCallbackQuery, setMyCommands)
on 127.0.0.1 (stdlib only, so it runs on a bare host too), checks the token, and is as
strict as Telegram where it matters to us: a message over 4,096 characters or with HTML it
cannot parse is refused with 400. What the bot sent is kept as the text a person would
see (entities parsed), with the raw HTML and the inline buttons. Tests push messages and
button presses in with `say` and `press`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

LIMIT = 4096
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "blockquote"}
BOT_USER = {"id": 7000001, "is_bot": True, "first_name": "factory", "username": "factory_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}  # fmt: skip


class BadRequest(Exception):
    """What Telegram answers with 400."""


class _Visible(HTMLParser):
    """Telegram's HTML mode: only its tags, balanced; the visible text is what remains."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise BadRequest(f"can't parse entities: unsupported start tag {tag!r}")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise BadRequest(f"can't parse entities: can't find end tag corresponding to start tag {tag!r}")
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode is None:
        return text
    if parse_mode != "HTML":
        raise BadRequest(f"unsupported parse_mode {parse_mode!r} in this stand-in")
    parser = _Visible()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise BadRequest(f"can't parse entities: unclosed tag {parser.open[-1]!r}")
    if parser.rawdata:
        raise BadRequest("can't parse entities: unfinished tag")
    return "".join(parser.text)


@dataclass
class Sent:
    """One message the bot sent, as it stands now (after edits)."""

    chat_id: int
    message_id: int
    text: str  # what a person sees
    html: str  # what the bot sent
    buttons: list[dict[str, str]] = field(default_factory=list)
    edits: int = 0


class StandIn:
    """The server's state: the updates waiting for the bot, and what the bot sent."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.cond = threading.Condition()
        self.updates: list[dict[str, Any]] = []
        self.sent: list[Sent] = []
        self.calls: list[str] = []
        self.answered: list[str] = []
        self.fail_sends = 0  # the next N sendMessage calls fail with 500 (a flaky network)
        self.send_delay_s = 0.0  # a sendMessage is recorded on arrival and answered this much later
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self.server: ThreadingHTTPServer | None = None

    # -- what tests do ------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, port: int = 0) -> StandIn:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def say(self, chat_id: int, text: str) -> int:
        """A person in chat `chat_id` sends `text`; returns the message id."""
        message_id = next(self._message_ids)
        message = {"message_id": message_id, "date": int(time.time()), "text": text,
                   "chat": {"id": chat_id, "type": "private"}, "from": _user(chat_id)}  # fmt: skip
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._push({"message": message})
        return message_id

    def press(self, sent: Sent, data: str) -> str:
        """A person presses the inline button with `data` under message `sent`."""
        callback_id = str(next(self._callback_ids))
        message = {"message_id": sent.message_id, "date": int(time.time()), "text": sent.text,
                   "chat": {"id": sent.chat_id, "type": "private"}, "from": BOT_USER}  # fmt: skip
        query = {"id": callback_id, "from": _user(sent.chat_id), "chat_instance": str(sent.chat_id),
                 "data": data, "message": message}  # fmt: skip
        self._push({"callback_query": query})
        return callback_id

    def messages(self, chat_id: int) -> list[Sent]:
        with self.cond:
            return [m for m in self.sent if m.chat_id == chat_id]

    def wait_messages(self, chat_id: int, count: int, timeout: float = 30.0, after: int = 0) -> list[Sent]:
        """The chat's messages once it has at least `count` after the first `after`; fails on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [m for m in self.sent if m.chat_id == chat_id][after:]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = [m.text[:200] for m in got]
                    raise TimeoutError(f"chat {chat_id}: {len(got)} of {count} messages after {timeout}s: {shown}")
                self.cond.wait(left)

    def wait_for(self, check: Any, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not check():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
                self.cond.wait(min(left, 0.2))

    def _push(self, update: dict[str, Any]) -> None:
        with self.cond:
            self.updates.append({"update_id": next(self._update_ids), **update})
            self.cond.notify_all()

    # -- the Bot API ------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> Any:
        with self.cond:
            self.calls.append(method)
        handler = getattr(self, "api_" + method, None)
        if handler is None:
            raise BadRequest(f"method {method} is not in this stand-in")
        return handler(params)

    def api_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    def api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    def api_setMyCommands(self, params: dict[str, Any]) -> Any:
        return True

    def api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 30.0)
        deadline = time.monotonic() + timeout
        with self.cond:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            return list(self.updates[:100])

    def api_sendMessage(self, params: dict[str, Any]) -> Any:
        with self.cond:
            if self.fail_sends > 0:
                self.fail_sends -= 1
                raise ServerError("stand-in told to fail this send")
        text = str(params.get("text", ""))
        shown = visible_text(text, params.get("parse_mode"))
        if not shown.strip():
            raise BadRequest("message text is empty")
        if len(shown) > LIMIT:
            raise BadRequest("message is too long")
        chat_id = int(params["chat_id"])
        markup = params.get("reply_markup") or {}
        buttons = [
            {"text": b["text"], "callback_data": b.get("callback_data", "")}
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]
        for b in buttons:
            if len(b["callback_data"].encode()) > 64:
                raise BadRequest("BUTTON_DATA_INVALID")
        with self.cond:
            sent = Sent(chat_id, next(self._message_ids), shown, text, buttons)
            self.sent.append(sent)
            self.cond.notify_all()
            delay = self.send_delay_s
        time.sleep(delay)
        return _message_json(sent)

    def api_editMessageText(self, params: dict[str, Any]) -> Any:
        text = str(params.get("text", ""))
        shown = visible_text(text, params.get("parse_mode"))
        if len(shown) > LIMIT:
            raise BadRequest("message is too long")
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        with self.cond:
            for sent in self.sent:
                if sent.chat_id == chat_id and sent.message_id == message_id:
                    sent.text, sent.html, sent.edits = shown, text, sent.edits + 1
                    markup = params.get("reply_markup") or {}
                    sent.buttons = [
                        {"text": b["text"], "callback_data": b.get("callback_data", "")}
                        for row in markup.get("inline_keyboard", [])
                        for b in row
                    ]
                    self.cond.notify_all()
                    return _message_json(sent)
        raise BadRequest("message to edit not found")

    # Control methods for a person or a script driving the stand-in from outside (the demo, the
    # host test): not part of the Bot API, behind the same token.
    def api_standinSay(self, params: dict[str, Any]) -> Any:
        return self.say(int(params["chat_id"]), str(params["text"]))

    def api_standinMessages(self, params: dict[str, Any]) -> Any:
        return [{"message_id": m.message_id, "text": m.text, "buttons": m.buttons}
                for m in self.messages(int(params["chat_id"]))]  # fmt: skip

    def api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        with self.cond:
            self.answered.append(str(params.get("callback_query_id")))
            self.cond.notify_all()
        return True


class ServerError(Exception):
    """What Telegram answers with 500 (the stand-in's injected failures)."""


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": f"person{chat_id}"}


def _message_json(sent: Sent) -> dict[str, Any]:
    out: dict[str, Any] = {"message_id": sent.message_id, "date": int(time.time()), "text": sent.text,
                           "chat": {"id": sent.chat_id, "type": "private"}, "from": BOT_USER}  # fmt: skip
    if sent.buttons:
        out["reply_markup"] = {"inline_keyboard": [[b] for b in sent.buttons]}
    return out


def _params(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        loaded = json.loads(body)
        return loaded if isinstance(loaded, dict) else {}
    out: dict[str, Any] = {}
    for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
        value: Any = values[-1]
        if value[:1] in "{[":  # PTB sends nested objects as JSON inside form fields
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[key] = value
    return out


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            token, _, method = self.path.removeprefix("/bot").partition("/")
            if token != standin.token:
                return self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            try:
                result = standin.call(method.split("?")[0], _params(body, self.headers.get("Content-Type", "")))
            except BadRequest as exc:
                return self._reply(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            except ServerError as exc:
                return self._reply(500, {"ok": False, "error_code": 500, "description": str(exc)})
            self._reply(200, {"ok": True, "result": result})

        def _reply(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the bot stopped mid-poll
                self.wfile.write(data)

    return Handler


def _call(url: str, token: str, method: str, params: dict[str, Any]) -> Any:
    from urllib.request import Request, urlopen

    body = json.dumps(params).encode()
    request = Request(f"{url}/bot{token}/{method}", body, {"Content-Type": "application/json"})
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read())["result"]


# The first lines of what the bot's notifier sends on its own (rules/notices.py; a unit test keeps
# them in step): `converse` passes over them, since they may arrive between a command and its reply.
NOTICE_TITLES = ("INFO: ", "WARNING: ", "CRITICAL: ", "Review waits for you\n", "Landed on main\n", "Standup\n",
                 "Session doctor\n")  # fmt: skip


def converse(url: str, token: str, chat_id: int, text: str, replies: int = 1, timeout: float = 60) -> list[str]:
    """Send `text` as chat `chat_id` to a running stand-in; return the bot's next `replies` messages
    (the notifier's notices in between are not replies)."""
    before = len(_call(url, token, "standinMessages", {"chat_id": chat_id}))
    _call(url, token, "standinSay", {"chat_id": chat_id, "text": text})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = _call(url, token, "standinMessages", {"chat_id": chat_id})[before:]
        got = [m for m in sent if not str(m["text"]).startswith(NOTICE_TITLES)]
        if len(got) >= replies:
            return [str(m["text"]) for m in got]
        time.sleep(0.3)
    raise TimeoutError(f"no reply to {text!r} within {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for Telegram's Bot API.")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", required=True)
    parser.add_argument("--say", metavar="TEXT", help="talk to a running stand-in's bot instead of serving")
    parser.add_argument("--chat", type=int, default=111, help="with --say: the chat id")
    parser.add_argument("--replies", type=int, default=1, help="with --say: how many replies to wait for")
    args = parser.parse_args()
    if args.say is not None:
        for reply in converse(f"http://127.0.0.1:{args.port}", args.token, args.chat, args.say, args.replies):
            print(reply, end="\n\n", flush=True)
        return
    standin = StandIn(args.token).start(args.port)
    print(standin.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
