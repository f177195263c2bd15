"""The HTTP server's routes: triggers, the read API, the GitHub webhook and the status page.

`create_app(ctx, token=...)` builds a FastAPI app over one factory home (tests run it
under uvicorn on 127.0.0.1). Everything but `/healthz` needs the bearer token (the page
and the read API also take the page's cookie); bodies over 64 KiB get 413, bad input 422
with one line, unknown fields are refused. Every accepted trigger writes a `trigger`
event (source ip, endpoint, outcome); a refused request changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from factoryctl import __version__
from factoryctl.adapters.runner import Completed
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import HTTP_EVENTS_LIMIT, TASK_MAX_BODY, TASK_MAX_TITLE
from factoryctl.core.errors import AlreadyRunning, FactoryError, NotFound, UsageError
from factoryctl.jobs.context import Context
from factoryctl.jobs.launcher import JOBS, Launcher, UnknownJob
from factoryctl.jobs.outcomes import parse_since
from factoryctl.jobs.serve import auth
from factoryctl.jobs.serve.github import Deliveries, task_from_issue_event
from factoryctl.jobs.serve.page import Page
from factoryctl.jobs.serve.recent import Recent
from factoryctl.state.eventlog import EventFilter


class TaskIn(BaseModel):
    """`POST /trigger/task`: a task to queue."""

    model_config = ConfigDict(extra="forbid", strict=True)
    title: Annotated[str, Field(min_length=1, max_length=TASK_MAX_TITLE)]
    body: Annotated[str, Field(max_length=TASK_MAX_BODY)] = ""
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    session: Annotated[str, Field(min_length=1, max_length=20)] | None = None


class Started(BaseModel):
    job: str
    started: bool


class Queued(BaseModel):
    id: int


class Problem(BaseModel):
    detail: str


PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no or wrong token"},
    413: {"model": Problem, "description": "body over 64 KiB"},
    422: {"model": Problem, "description": "malformed input, one line"},
}


DENIED = "a valid `Authorization: Bearer <FACTORY_HTTP_TOKEN>` is required"
# Paths that answer without the token: they check their own (the page, the login form, GitHub's HMAC).
OPEN_PATHS = frozenset({"/healthz", "/", "/login", "/webhook/github"})


def one_line(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return f"body: malformed JSON ({first.get('ctx', {}).get('error', 'JSON decode error')})"[:300]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid input')}"[:300]


def create_app(
    ctx: Context,
    *,
    token: str,
    github_secret: str = "",
    launcher: Launcher | None = None,
    warm: bool = False,
) -> FastAPI:
    token = auth.check_token(token)
    jobs = launcher or Launcher(ctx)
    recent = Recent(ctx)
    page = Page(ctx, recent)
    if warm:  # read the last two weeks of the log in the background while the server starts
        threading.Thread(target=page.warm, name="warm-up", daemon=True).start()
    app = FastAPI(title="agent factory", version=__version__, docs_url=None, redoc_url=None)
    deliveries = Deliveries(ctx.clock)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": one_line(exc)}, status_code=422)

    @app.exception_handler(FactoryError)
    async def _factory_error(request: Request, exc: FactoryError) -> JSONResponse:
        status = {UsageError: 422, NotFound: 404, AlreadyRunning: 409, UnknownJob: 404}.get(type(exc), 400)
        return JSONResponse({"detail": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__},
                            status_code=status)  # fmt: skip

    def bearer(request: Request) -> None:
        if not auth.bearer_ok(request.headers.get("authorization"), token):
            raise HTTPException(401, DENIED, headers={"WWW-Authenticate": "Bearer"})

    def reader(request: Request) -> None:
        """The read API: the bearer token, or the page's cookie (a browser signed in)."""
        if not auth.cookie_ok(request.cookies.get(auth.COOKIE), token):
            bearer(request)

    def record(request: Request, endpoint: str, outcome: str, **extra: Any) -> None:
        source = request.client.host if request.client else "?"
        ctx.log.append("trigger", data={"source_ip": source, "endpoint": endpoint, "outcome": outcome, **extra})

    Bearer = Depends(bearer)
    Reader = Depends(reader)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Alive; no token needed, tells nothing about the factory."""
        return {"ok": True}

    def ended(job: str) -> Callable[[Completed | FactoryError], None]:
        """The job's end, a `trigger` event like its start."""

        def record_end(done: Completed | FactoryError) -> None:
            data: dict[str, Any] = {"endpoint": f"/trigger/{job}", "job": job}
            if isinstance(done, FactoryError):
                data |= {"outcome": "failed", "reason": str(done)[:300]}
            else:
                outcome = "timed_out" if done.timed_out else ("finished" if done.returncode == 0 else "failed")
                data |= {"outcome": outcome, "exit_code": done.returncode, "duration_s": round(done.duration_s, 3)}
            ctx.log.append("trigger", data=data)

        return record_end

    def trigger(job: str) -> Any:
        def start(request: Request) -> JSONResponse:
            try:
                jobs.start(job, on_end=ended(job))
            except AlreadyRunning as exc:
                record(request, f"/trigger/{job}", "already_running")
                return JSONResponse({"detail": f"already running: {exc}"}, status_code=409)
            record(request, f"/trigger/{job}", "started")
            return JSONResponse({"job": job, "started": True}, status_code=202)

        start.__name__ = f"trigger_{job}"
        start.__doc__ = f"Start `factoryctl {job}` in the background under its job lock."
        return start

    for name in JOBS:
        app.post(
            f"/trigger/{name}", status_code=202, response_model=Started, dependencies=[Bearer],
            responses={**PROBLEMS, 409: {"model": Problem}},
        )(trigger(name))  # fmt: skip

    @app.post("/trigger/task", status_code=201, response_model=Queued, dependencies=[Bearer], responses=PROBLEMS)
    def trigger_task(task: TaskIn, request: Request) -> Queued:
        """Queue a task (title, body, priority, session)."""
        if task.session is not None:
            ctx.session(task.session)
        added = ctx.tasks().add(task.title, body=task.body, priority=task.priority, session=task.session)
        record(request, "/trigger/task", "queued", task=added.id)
        return Queued(id=added.id)

    @app.get("/api/status", dependencies=[Reader], responses=PROBLEMS)
    def api_status() -> dict[str, Any]:
        """What `factoryctl status --json` prints."""
        return recent.status().as_dict()

    @app.get("/api/report", dependencies=[Reader], responses=PROBLEMS)
    def api_report(since: Annotated[str, Query(max_length=40)] = "24h") -> dict[str, Any]:
        """What `factoryctl report --since SINCE --json` prints."""
        return recent.report(parse_since(since, ctx.clock()))

    @app.get("/api/events", dependencies=[Reader], responses=PROBLEMS)
    def api_events(
        type: Annotated[list[str] | None, Query(max_length=20)] = None,
        session: Annotated[str | None, Query(max_length=20)] = None,
        since: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=HTTP_EVENTS_LIMIT)] = 100,
    ) -> list[dict[str, Any]]:
        """The last events (oldest first), like `factoryctl log tail --json`."""
        types = frozenset(t for t in (type or []) if t)
        if any(len(t) > 40 for t in types):
            raise UsageError("type: at most 40 characters")
        lo = None if since is None else parse_since(since, ctx.clock())
        flt = EventFilter(types=types, session=session, since=None if lo is None else format_ts(lo))
        return [e.as_dict() for e in ctx.log.tail(limit, flt)]

    @app.get("/api/queue", dependencies=[Reader], responses=PROBLEMS)
    def api_queue() -> list[dict[str, Any]]:
        """The review queue, every entry (`factoryctl queue list --all --json`)."""
        return [e.as_dict() for e in ctx.review_queue().read().entries]

    @app.get("/api/tasks", dependencies=[Reader], responses=PROBLEMS)
    def api_tasks() -> list[dict[str, Any]]:
        """Every task (`factoryctl task list --all --json`)."""
        return [t.__dict__ for t in sorted(ctx.tasks().all(), key=lambda t: t.sort_key())]

    @app.post("/webhook/github", status_code=202, responses={401: {"model": Problem}, 404: {"model": Problem}})
    async def webhook_github(request: Request) -> JSONResponse:
        """GitHub's webhook: an issue labelled `http.github_label` becomes a task; the rest is ignored."""
        if not github_secret:
            return JSONResponse({"detail": "the GitHub webhook is off (no FACTORY_GITHUB_SECRET)"}, status_code=404)
        body = await request.body()
        if not auth.github_signature_ok(body, request.headers.get("x-hub-signature-256"), github_secret):
            return JSONResponse({"detail": "bad or missing X-Hub-Signature-256"}, status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"detail": "body is not JSON"}, status_code=422)
        delivery = request.headers.get("x-github-delivery", "")
        if delivery and not deliveries.first_time(delivery):  # a replay: answered, never acted on twice
            await run_in_threadpool(record, request, "/webhook/github", "duplicate", delivery=delivery[:100])
            return JSONResponse({"duplicate": True}, status_code=202)
        kind = request.headers.get("x-github-event", "")
        wanted = task_from_issue_event(kind, payload, ctx.settings.http.github_label)
        if wanted is None:
            await run_in_threadpool(record, request, "/webhook/github", "ignored")
            return JSONResponse({"ignored": True}, status_code=202)

        def add() -> dict[str, Any]:
            task, new = ctx.tasks().add_once(wanted.marker, wanted.title, body=wanted.body, priority="normal")
            record(request, "/webhook/github", "queued" if new else "duplicate", task=task.id, issue=wanted.url)
            return {"queued": task.id} if new else {"duplicate": True, "task": task.id}

        return JSONResponse(await run_in_threadpool(add), status_code=202)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        signed_in = auth.cookie_ok(request.cookies.get(auth.COOKIE), token) or auth.bearer_ok(
            request.headers.get("authorization"), token
        )
        if not signed_in:
            return HTMLResponse(page.login(), status_code=401)
        try:
            html = page.render()
        except FactoryError as exc:  # e.g. a malformed state file: one line, not a traceback
            return HTMLResponse(f"<!doctype html><title>factory status</title><p>Error: {escape(str(exc))}</p>",
                                status_code=503)  # fmt: skip
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=5)
        given = (form.get("token") or [""])[0]
        if not auth.bearer_ok(f"Bearer {given}", token):
            return HTMLResponse(page.login(failed=True), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(auth.COOKIE, auth.cookie_value(token), httponly=True, samesite="strict", path="/",
                            max_age=30 * 86400)  # fmt: skip
        return response

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        """The token is checked before anything reads the body; then the page's safety headers."""
        path = request.url.path
        if path not in OPEN_PATHS:
            cookie = request.method == "GET" and auth.cookie_ok(request.cookies.get(auth.COOKIE), token)
            if not cookie and not auth.bearer_ok(request.headers.get("authorization"), token):
                return JSONResponse({"detail": DENIED}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        response: Response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    app.add_middleware(auth.BodyLimit)
    return app
