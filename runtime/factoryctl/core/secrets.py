"""What each secret must look like: one rule, used by the deploy (before it changes anything)
and by the jobs that read the secret (`serve` refuses a short token at start).

A value that breaks its rule would be written to the host and fail there later (a `serve`
restarting forever under PM2, a bot that never connects); the deploy says so up front, in
one line naming the secret and the rule, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from factoryctl.core.defaults import HTTP_MIN_TOKEN, SECRET_ENV

_ONE_WORD = re.compile(r"^[!-~]+$")  # printable ASCII, no spaces
_TELEGRAM = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")


def secret_problem(name: str, value: str) -> str | None:
    """Why `value` cannot be the secret `name` (one line naming the secret and the rule), or None."""
    if any(c in value for c in "\n\r\0"):
        return f"{name} contains a line break or NUL: it cannot be an environment variable"
    match name:
        case "ANTHROPIC_API_KEY" | "CLAUDE_CODE_OAUTH_TOKEN" if not _ONE_WORD.match(value):
            return f"{name} must be one word of printable ASCII (no spaces or quotes around it), as Anthropic gives it"
        case "TELEGRAM_BOT_TOKEN" if not _TELEGRAM.match(value):
            return (f"{name} must look like 123456789:AAE... (the bot's id, a colon, then letters, digits, - and _), "
                    "as @BotFather gives it")  # fmt: skip
        case "FACTORY_HTTP_TOKEN":
            token = value.strip()
            if len(token) < HTTP_MIN_TOKEN:
                return f"{name} is too short: use at least {HTTP_MIN_TOKEN} random characters (it has {len(token)})"
            if not _ONE_WORD.match(token):
                return f"{name} must be printable ASCII without spaces: it is sent in an HTTP header"
    return None


def secret_problems(environ: Mapping[str, str]) -> list[str]:
    """The problems of every factory secret set in `environ` (a blank one counts as unset)."""
    found = (secret_problem(name, environ[name]) for name in SECRET_ENV if environ.get(name, "").strip())
    return [p for p in found if p]
