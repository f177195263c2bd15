"""Run the HTTP server: loopback unless `http.allow_public`, a token or no start at all."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable

import uvicorn

from factoryctl.core.defaults import GITHUB_SECRET_ENV, HTTP_TOKEN_ENV
from factoryctl.core.errors import ConfigError
from factoryctl.jobs.context import Context
from factoryctl.jobs.serve.app import create_app
from factoryctl.jobs.serve.auth import check_token

log = logging.getLogger(__name__)


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def where(ctx: Context) -> tuple[str, int, bool]:
    """(host, port, public) from `http.bind`; a public bind without `http.allow_public` is refused."""
    host, port = split_bind(ctx.settings.http.bind)
    public = not is_loopback(host)
    if public and not ctx.settings.http.allow_public:
        raise ConfigError(
            f"http.bind = {ctx.settings.http.bind!r} is not loopback; set http.allow_public = true to serve "
            "beyond this host (and put TLS in front), or bind 127.0.0.1"
        )
    return host, port, public


def serve(ctx: Context, *, say: Callable[[str], None]) -> None:
    token = check_token(os.environ.get(HTTP_TOKEN_ENV))
    host, port, public = where(ctx)
    secret = os.environ.get(GITHUB_SECRET_ENV, "").strip()
    app = create_app(ctx, token=token, github_secret=secret, warm=True)
    if public:
        say(f"WARNING: serving on {host}:{port}, reachable beyond this host (http.allow_public = true)")
    say(f"serving http://{ctx.settings.http.bind}/ (GitHub webhook {'on' if secret else 'off'})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
