"""The HTTP server's app: triggers, the read API, the GitHub webhook and the status page.

`create_app(ctx, token=...)` builds a FastAPI app over one factory home from the routers of
`routes.py`, with what they share on `app.state`. Who may ask is checked in one place, before
any route reads the body: everything but `/healthz`, `/`, `/login` and `/webhook/github` (which
check their own) needs the bearer token, or for a GET the page's cookie (`auth.allowed`).
Bodies over 64 KiB get 413, bad input 422 with one line, unknown fields are refused. Every
accepted trigger writes a `trigger` event (source ip, endpoint, outcome); a refused request
changes nothing. Start-up work (reading the recent log for the page) runs in the lifespan.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from factoryctl import __version__
from factoryctl.core.errors import AlreadyRunning, FactoryError, NotFound, UsageError
from factoryctl.jobs.context import Context
from factoryctl.jobs.launcher import Launcher, UnknownJob
from factoryctl.jobs.serve import auth, routes
from factoryctl.jobs.serve.github import Deliveries
from factoryctl.jobs.serve.page import Page
from factoryctl.jobs.serve.recent import Recent

DENIED = "a valid `Authorization: Bearer <FACTORY_HTTP_TOKEN>` is required"
# Paths that answer without the token: they check their own (the page, the login form, GitHub's HMAC).
OPEN_PATHS = frozenset({"/healthz", "/", "/login", "/webhook/github"})
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def one_line(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return f"body: malformed JSON ({first.get('ctx', {}).get('error', 'JSON decode error')})"[:300]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid input')}"[:300]


def create_app(
    ctx: Context, *, token: str, github_secret: str = "", launcher: Launcher | None = None, warm: bool = False
) -> FastAPI:
    token = auth.check_token(token)
    recent = Recent(ctx)
    shared = routes.Served(ctx, token, github_secret, launcher or Launcher(ctx), recent, Page(ctx, recent),
                           Deliveries(ctx.clock))  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:  # read the last two weeks of the log in the background while the server starts
            threading.Thread(target=shared.page.warm, name="warm-up", daemon=True).start()
        yield

    app = FastAPI(title="agent factory", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.served = shared
    for router in (routes.health, routes.triggers, routes.api, routes.webhook, routes.page):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": one_line(exc)}, status_code=422)

    @app.exception_handler(FactoryError)
    async def _factory_error(request: Request, exc: FactoryError) -> JSONResponse:
        status = {UsageError: 422, NotFound: 404, AlreadyRunning: 409, UnknownJob: 404}.get(type(exc), 400)
        return JSONResponse({"detail": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__},
                            status_code=status)  # fmt: skip

    @app.middleware("http")
    async def who_may_ask(request: Request, call_next: Any) -> Response:
        """The token is checked before anything reads the body; then the page's safety headers."""
        if request.url.path not in OPEN_PATHS and auth.allowed(request, token) is None:
            return JSONResponse({"detail": DENIED}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        response: Response = await call_next(request)
        response.headers.update(SAFETY_HEADERS)
        return response

    app.add_middleware(auth.BodyLimit)
    return app
