"""Who may ask: the bearer token (constant-time), the page's cookie (`allowed` says which), GitHub's HMAC,
the body limit.

The page's cookie holds no token: it is an HMAC of a fixed label under the token, so a
leaked cookie does not reveal the token, and changing the token signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

from factoryctl.core.defaults import HTTP_MAX_BODY
from factoryctl.core.errors import ConfigError
from factoryctl.core.secrets import secret_problem

COOKIE = "factory_session"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def check_token(token: str | None) -> str:
    """The configured token, or a ConfigError: the server never runs open."""
    token = (token or "").strip()
    if not token:
        raise ConfigError("FACTORY_HTTP_TOKEN is not set: `serve` will not run without a token")
    problem = secret_problem("FACTORY_HTTP_TOKEN", token)  # the rule the deploy checks too
    if problem:
        raise ConfigError(problem)
    return token


def bearer_ok(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"factory status page v1", hashlib.sha256).hexdigest()


def cookie_ok(value: str | None, token: str) -> bool:
    return bool(value) and hmac.compare_digest(str(value).encode(), cookie_value(token).encode())


def allowed(request: Request, token: str) -> str | None:
    """How this request proves it may ask: "bearer" (the token), "cookie" (the page's, for a GET), or None."""
    if bearer_ok(request.headers.get("authorization"), token):
        return "bearer"
    if request.method == "GET" and cookie_ok(request.cookies.get(COOKIE), token):
        return "cookie"
    return None


def github_signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """GitHub's `X-Hub-Signature-256: sha256=<hex HMAC of the raw body>`."""
    if not header or not header.startswith("sha256=") or not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256=") :].encode(), expected.encode())


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before the app reads it."""

    def __init__(self, app: ASGIApp, limit: int = HTTP_MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            # Past the limit: answer 413 now and tell the app the client went away.
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not started:
                    refused = True
                    await _too_large(send, self.limit)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out already
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:
                raise


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"detail":"request body too large: at most %d bytes"}' % limit
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
