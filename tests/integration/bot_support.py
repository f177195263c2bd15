"""Run the real `factoryctl bot` against the local Bot API stand-in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import stop_process, tool
from tests.support.telegram_standin import StandIn

TOKEN = "123456:test-token-abcdefghijklmnop"
CHAT = 111
STRANGER = 666


def bot_config(standin: StandIn, chats: tuple[int, ...] = (CHAT,)) -> str:
    return (
        f"\n[telegram]\nallowed_chat_ids = [{', '.join(map(str, chats))}]\n"
        f'api_url = "{standin.url}"\nnotify_poll_s = 0.2\n'
    )


@contextmanager
def running_bot(home: Path, log_path: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`factoryctl bot` as PM2 would start it; SIGTERM at the end, its output kept in bot.log."""
    out = open(log_path or home / "bot.log", "ab")  # noqa: SIM115
    env = {**os.environ, "FACTORY_HOME": str(home), "TELEGRAM_BOT_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([tool("factoryctl"), "bot"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, 20)
        out.close()
