"""The HTTP routes, a router per concern: health, triggers, the read API, GitHub's webhook, the page.

Each route reads what it shares with the others (`Served`) from `app.state`; who may ask is
decided before any route runs (`app.py`'s one check, `auth.allowed`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from factoryctl.adapters.runner import Completed
from factoryctl.core.clock import format_ts
from factoryctl.core.defaults import HTTP_EVENTS_LIMIT, TASK_MAX_BODY, TASK_MAX_TITLE
from factoryctl.core.errors import AlreadyRunning, FactoryError, UsageError
from factoryctl.jobs.context import Context
from factoryctl.jobs.launcher import JOBS, Launcher
from factoryctl.jobs.outcomes import since_for_figures
from factoryctl.jobs.serve import auth
from factoryctl.jobs.serve.github import Deliveries, task_from_issue_event
from factoryctl.jobs.serve.page import Page
from factoryctl.jobs.serve.recent import Recent
from factoryctl.state.eventlog import EventFilter


@dataclass(frozen=True)
class Served:
    """What the routes share: the factory, the token, the launcher, the log's recent window, the page."""

    ctx: Context
    token: str
    github_secret: str
    launcher: Launcher
    recent: Recent
    page: Page
    deliveries: Deliveries

    def record(self, request: Request, endpoint: str, outcome: str, **extra: Any) -> None:
        """A `trigger` event: who asked for what, and what came of it."""
        source = request.client.host if request.client else "?"
        self.ctx.log.append("trigger", data={"source_ip": source, "endpoint": endpoint, "outcome": outcome, **extra})


def served(request: Request) -> Served:
    found: Served = request.app.state.served
    return found


Shared = Annotated[Served, Depends(served)]


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

health = APIRouter()
triggers = APIRouter(prefix="/trigger", responses=PROBLEMS)
api = APIRouter(prefix="/api", responses=PROBLEMS)
webhook = APIRouter(prefix="/webhook")
page = APIRouter(include_in_schema=False)


@health.get("/healthz")
def healthz() -> dict[str, Any]:
    """Alive; no token needed, tells nothing about the factory."""
    return {"ok": True}


# -- triggers --------------------------------------------------------------------------------


def ended(ctx: Context, job: str) -> Callable[[Completed | FactoryError], None]:
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


def trigger(job: str) -> Callable[[Request, Served], JSONResponse]:
    def start(request: Request, shared: Shared) -> JSONResponse:
        try:
            shared.launcher.start(job, on_end=ended(shared.ctx, job))
        except AlreadyRunning as exc:
            shared.record(request, f"/trigger/{job}", "already_running")
            return JSONResponse({"detail": f"already running: {exc}"}, status_code=409)
        shared.record(request, f"/trigger/{job}", "started")
        return JSONResponse({"job": job, "started": True}, status_code=202)

    start.__name__ = f"trigger_{job}"
    start.__doc__ = f"Start `factoryctl {job}` in the background under its job lock."
    return start


for _job in JOBS:
    triggers.post(f"/{_job}", status_code=202, response_model=Started,
                  responses={409: {"model": Problem}})(trigger(_job))  # fmt: skip


@triggers.post("/task", status_code=201, response_model=Queued)
def trigger_task(task: TaskIn, request: Request, shared: Shared) -> Queued:
    """Queue a task (title, body, priority, session)."""
    ctx = shared.ctx
    if task.session is not None:
        ctx.session(task.session)
    added = ctx.tasks().add(task.title, body=task.body, priority=task.priority, session=task.session)
    shared.record(request, "/trigger/task", "queued", task=added.id)
    return Queued(id=added.id)


# -- the read API ----------------------------------------------------------------------------


@api.get("/status")
def api_status(shared: Shared) -> dict[str, Any]:
    """What `factoryctl status --json` prints."""
    return shared.recent.status().as_dict()


@api.get("/report")
def api_report(shared: Shared, since: Annotated[str, Query(max_length=40)] = "24h") -> dict[str, Any]:
    """What `factoryctl report --since SINCE --json` prints."""
    return shared.recent.figures(since_for_figures(since, shared.ctx.clock()))


@api.get("/events")
def api_events(
    shared: Shared,
    type: Annotated[list[str] | None, Query(max_length=20)] = None,
    session: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=HTTP_EVENTS_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    """The last events (oldest first), like `factoryctl log tail --json`."""
    types = frozenset(t for t in (type or []) if t)
    if any(len(t) > 40 for t in types):
        raise UsageError("type: at most 40 characters")
    ctx = shared.ctx
    lo = None if since is None else since_for_figures(since, ctx.clock())
    flt = EventFilter(types=types, session=session, since=None if lo is None else format_ts(lo))
    return [e.as_dict() for e in ctx.log.tail(limit, flt)]


@api.get("/queue")
def api_queue(shared: Shared) -> list[dict[str, Any]]:
    """The review queue, every entry (`factoryctl queue list --all --json`)."""
    return [e.as_dict() for e in shared.ctx.review_queue().read().entries]


@api.get("/tasks")
def api_tasks(shared: Shared) -> list[dict[str, Any]]:
    """Every task (`factoryctl task list --all --json`)."""
    return [t.__dict__ for t in sorted(shared.ctx.tasks().all(), key=lambda t: t.sort_key())]


# -- GitHub ----------------------------------------------------------------------------------


@webhook.post("/github", status_code=202, responses={401: {"model": Problem}, 404: {"model": Problem}})
async def webhook_github(request: Request, shared: Shared) -> JSONResponse:
    """GitHub's webhook: an issue labelled `http.github_label` becomes a task; the rest is ignored."""
    if not shared.github_secret:
        return JSONResponse({"detail": "the GitHub webhook is off (no FACTORY_GITHUB_SECRET)"}, status_code=404)
    body = await request.body()
    if not auth.github_signature_ok(body, request.headers.get("x-hub-signature-256"), shared.github_secret):
        return JSONResponse({"detail": "bad or missing X-Hub-Signature-256"}, status_code=401)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"detail": "body is not JSON"}, status_code=422)
    delivery = request.headers.get("x-github-delivery", "")
    if delivery and not shared.deliveries.first_time(delivery):  # a replay: answered, never acted on twice
        await run_in_threadpool(shared.record, request, "/webhook/github", "duplicate", delivery=delivery[:100])
        return JSONResponse({"duplicate": True}, status_code=202)
    kind = request.headers.get("x-github-event", "")
    wanted = task_from_issue_event(kind, payload, shared.ctx.settings.http.github_label)
    if wanted is None:
        await run_in_threadpool(shared.record, request, "/webhook/github", "ignored")
        return JSONResponse({"ignored": True}, status_code=202)

    def add() -> dict[str, Any]:
        task, new = shared.ctx.tasks().add_once(wanted.marker, wanted.title, body=wanted.body, priority="normal")
        shared.record(request, "/webhook/github", "queued" if new else "duplicate", task=task.id, issue=wanted.url)
        return {"queued": task.id} if new else {"duplicate": True, "task": task.id}

    return JSONResponse(await run_in_threadpool(add), status_code=202)


# -- the page --------------------------------------------------------------------------------


@page.get("/", response_class=HTMLResponse)
def index(request: Request, shared: Shared) -> Response:
    if auth.allowed(request, shared.token) is None:
        return HTMLResponse(shared.page.login(), status_code=401)
    try:
        html = shared.page.render()
    except FactoryError as exc:  # e.g. a malformed state file: one line, not a traceback
        return HTMLResponse(f"<!doctype html><title>factory status</title><p>Error: {escape(str(exc))}</p>",
                            status_code=503)  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@page.post("/login")
async def login(request: Request, shared: Shared) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=5)
    given = (form.get("token") or [""])[0]
    if not auth.bearer_ok(f"Bearer {given}", shared.token):
        return HTMLResponse(shared.page.login(failed=True), status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(auth.COOKIE, auth.cookie_value(shared.token), httponly=True, samesite="strict", path="/",
                        max_age=30 * 86400)  # fmt: skip
    return response
