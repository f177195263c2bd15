"""The HTTP app with a real factory home: the token, the triggers (one review at a time), tasks in
and out, refused bodies, the GitHub webhook. In-process through TestClient; the login cookie and a
chunked body over the limit go through the real `factoryctl serve` (uvicorn), whose wire they are about."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from factoryctl.jobs.context import Context
from factoryctl.jobs.launcher import Launcher
from factoryctl.state.eventlog import EventFilter
from factoryctl.state.locks import job_lock
from tests.factories import make_factory
from tests.helpers import run_cli, wait_for
from tests.serving import GITHUB_SECRET, TOKEN, InProcess, Server, in_process, serving, update_toml

APPROVE = json.dumps({"verdict": "approve", "reasons": ["small and tested"], "risk": "low", "issues": []})
PASSING_TEST = "def test_more() -> None:\n    assert 2 * 2 == 4\n"

ENDPOINTS = [
    ("POST", "/trigger/review"), ("POST", "/trigger/standup"), ("POST", "/trigger/doctor"),
    ("POST", "/trigger/task"), ("GET", "/api/status"), ("GET", "/api/report"), ("GET", "/api/events"),
    ("GET", "/api/queue"), ("GET", "/api/tasks"),
]  # fmt: skip


def state_of(home: Path) -> dict[str, Any]:
    """What a refused request must leave untouched."""
    state = home / "state"
    files = ("tasks.json", "review-queue.json", "experiment-log.jsonl")
    return {name: (state / name).read_bytes() if (state / name).exists() else None for name in files}


def triggers(home: Path) -> list[dict[str, Any]]:
    return [dict(e.data) for e in Context.load(home).log.tail(1000, EventFilter(types=frozenset({"trigger"})))]


@pytest.fixture
def server(home: Path) -> Any:
    with in_process(home) as srv:
        yield srv


@pytest.fixture
def uvicorn_server(home: Path) -> Any:
    with serving(home) as srv:
        yield srv


def test_without_the_token_nothing_but_healthz_answers(server: InProcess) -> None:
    before = state_of(server.home)
    for method, path in ENDPOINTS:
        for token in (None, "wrong-token-0123456789abc", TOKEN + "x", TOKEN[:-1], ""):
            body = {"title": "sneak in"} if method == "POST" else None
            got = server.request(method, path, token=token, json_body=body)
            assert got.status == 401, (method, path, token, got.body)
            assert got.headers.get("www-authenticate") == "Bearer"
    assert state_of(server.home) == before
    assert server.request("GET", "/healthz", token=None).json() == {"ok": True}


def test_the_page_asks_for_the_token_and_sets_a_strict_httponly_cookie(uvicorn_server: Server) -> None:
    server = uvicorn_server
    assert server.request("GET", "/", token=None).status == 401
    wrong = server.request("POST", "/login", b"token=nope", token=None,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert wrong.status == 401 and b"not right" in wrong.body
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    conn.request("POST", "/login", body=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    assert resp.status == 303
    cookie = resp.getheader("set-cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and TOKEN not in cookie
    value = cookie.split(";")[0]
    page = server.request("GET", "/", token=None, headers={"Cookie": value})
    assert page.status == 200 and b"<svg" in page.body
    # The cookie reads, but never triggers: a trigger needs the bearer token itself.
    assert server.request("GET", "/api/tasks", token=None, headers={"Cookie": value}).status == 200
    assert server.request("POST", "/trigger/review", token=None, headers={"Cookie": value}).status == 401


def test_the_page_and_the_status_api_say_what_holds_new_cycles_back(home: Path, server: InProcess) -> None:
    ctx = Context.load(home)
    why = "RAM 91% (limit 85%)"
    day = f"{ctx.clock():%Y-%m-%d}"
    ctx.holds_document().write({"day": day, "closed": {"resources": why}, "sessions": {"s2": "budget"}})
    holds = server.request("GET", "/api/status").json()["holds"]
    assert holds["closed"] == {"resources": why} and list(holds["sessions"]) == ["s2"]
    page = server.request("GET", "/").body.decode()
    assert "new cycles held back:" in page and why in page and "held: s2" in page


def test_a_task_posted_is_listed_by_the_api_and_the_cli(server: InProcess) -> None:
    got = server.request("POST", "/trigger/task", json_body={"title": "Fix the flaky login test", "body": "CI 812",
                                                             "priority": "high", "session": "s1"})  # fmt: skip
    assert got.status == 201, got.body
    task_id = got.json()["id"]
    listed = server.request("GET", "/api/tasks").json()
    assert [(t["id"], t["title"], t["priority"], t["session"]) for t in listed] == [
        (task_id, "Fix the flaky login test", "high", "s1")
    ]
    cli = run_cli("task", "list", "--json", home=server.home)
    assert [t["id"] for t in json.loads(cli.stdout)] == [task_id]
    assert triggers(server.home) == [
        {"source_ip": "127.0.0.1", "endpoint": "/trigger/task", "outcome": "queued", "task": task_id}
    ]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"title": "x"' + b" " * 70_000 + b"}", 413, "too large"),
        (b'{"title": ', 422, "malformed JSON"),
        (b"[1, 2]", 422, "body"),
        (json.dumps({"title": "x", "owner": "root"}).encode(), 422, "owner: Extra inputs are not permitted"),
        (json.dumps({"title": "x", "priority": "asap"}).encode(), 422, "priority"),
        (json.dumps({"title": "x", "session": "s99"}).encode(), 422, "unknown session 's99'"),
        (json.dumps({"title": "   "}).encode(), 422, "a task needs a title"),
        (json.dumps({"title": "x" * 201}).encode(), 422, "title"),
        (json.dumps({"title": 5}).encode(), 422, "title"),
        (json.dumps({}).encode(), 422, "title: Field required"),
    ],
)
def test_bad_task_bodies_are_refused_in_one_line_and_change_nothing(
    server: InProcess, body: bytes, status: int, detail: str
) -> None:
    before = state_of(server.home)
    got = server.request("POST", "/trigger/task", body, headers={"Content-Type": "application/json"})
    assert got.status == status, got.body
    assert detail in got.json()["detail"] and "\n" not in got.json()["detail"]
    assert state_of(server.home) == before


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(uvicorn_server: Server) -> None:
    server = uvicorn_server
    before = state_of(server.home)
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    chunks = (b'{"title": "' + b"a" * 8192 for _ in range(12))  # 96 KiB, no Content-Length
    conn.request("POST", "/trigger/task", body=chunks, encode_chunked=True,
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})  # fmt: skip
    assert conn.getresponse().status == 413
    assert state_of(server.home) == before


def test_review_trigger_starts_the_gate_and_a_second_one_while_it_runs_gets_409(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, sessions=1)
    factory.script([
        {"match": "You are s1,", "actions": [{"write": "tests/test_more.py", "content": PASSING_TEST}],
         "result": "Add a test", "usage": {"input_tokens": 1500, "output_tokens": 400}, "cost_usd": 0.12},
        {"match": "by session s1", "actions": [{"sleep": 3}], "result": APPROVE, "cost_usd": 0.03},
    ])  # fmt: skip
    assert run_cli("cycle", "s1", home=factory.home).returncode == 0
    start = factory.main_sha()
    with in_process(factory.home) as srv:
        first = srv.request("POST", "/trigger/review")
        assert (first.status, first.json()) == (202, {"job": "review", "started": True})
        second = srv.request("POST", "/trigger/review")
        assert second.status == 409 and "already running" in second.json()["detail"]
        wait_for(lambda: any(t.get("outcome") == "finished" for t in triggers(factory.home)), 60, "the review's end")
        third = srv.request("POST", "/trigger/review")  # the gate is free again
        assert third.status == 202
        wait_for(lambda: sum(t.get("outcome") == "finished" for t in triggers(factory.home)) == 2, 60, "its end")
        report = srv.request("GET", "/api/report?since=1h").json()
    assert factory.main_sha() != start  # the triggered review landed the branch
    outcomes = [t["outcome"] for t in triggers(factory.home)]
    assert outcomes == ["started", "already_running", "finished", "started", "finished"]
    # The second review found nothing pending: not a review run.
    assert report["landed"] == 1 and report["review_runs"] == 1 and report["verdicts"]["pushed"] == 1
    assert report["tokens"] == {"input": 1500, "output": 400, "total": 1900}
    assert report["usd_per_landed"] == 0.15 and report["push_to_land_s"]["median"] is not None
    assert "review" in (factory.home / "logs" / "trigger-review.log").read_text()
    assert (factory.home / "logs" / "trigger-review.log").stat().st_mode & 0o777 == 0o640  # the factory user's alone


def test_a_job_whose_process_ended_is_not_running_while_its_end_is_recorded(ctx: Context) -> None:
    """The trigger's "finished" event is written by the launcher's thread after the process ends; a
    caller who saw it and starts the job again must not get "already running" (CI once did)."""
    launcher = Launcher(ctx)
    recording, release = threading.Event(), threading.Event()

    def on_end(ended: object) -> None:
        recording.set()
        release.wait(30)

    first = launcher.start("standup", on_end=on_end)
    assert recording.wait(60), "the standup's process did not end"
    try:
        assert first.thread.is_alive() and not launcher.running("standup")
        second = launcher.start("standup")
    finally:
        release.set()
    assert second.result(60).returncode == first.result(60).returncode


def test_a_job_locked_by_another_process_is_already_running(server: InProcess) -> None:
    ctx = Context.load(server.home)
    with job_lock(ctx.paths.locks_dir, "review"):
        got = server.request("POST", "/trigger/review")
    assert got.status == 409 and "already running" in got.json()["detail"]
    assert triggers(server.home)[-1]["outcome"] == "already_running"


@pytest.mark.parametrize("job", ["standup", "doctor"])
def test_standup_and_doctor_triggers_start_the_job_and_log_its_end(server: InProcess, job: str) -> None:
    got = server.request("POST", f"/trigger/{job}")
    assert (got.status, got.json()) == (202, {"job": job, "started": True})
    wait_for(lambda: len(triggers(server.home)) == 2, 60, f"the end of the triggered {job}")
    start, end = triggers(server.home)
    assert start == {"source_ip": "127.0.0.1", "endpoint": f"/trigger/{job}", "outcome": "started"}
    assert end["endpoint"] == f"/trigger/{job}" and end["outcome"] in ("finished", "failed"), end
    assert f"exit {end['exit_code']}" in (server.home / "logs" / f"trigger-{job}.log").read_text()
    assert server.request("POST", "/trigger/nosuch").status == 404  # only the three jobs have a trigger


def delivery(payload: dict[str, Any], secret: str | None = GITHUB_SECRET, event: str = "issues") -> dict[str, Any]:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"body": body, "headers": headers, "token": None}


ISSUE = {"title": "Add CSV export", "body": "<script>x</script>", "html_url": "https://github.com/o/r/issues/3"}
LABELLED = {"action": "labeled", "label": {"name": "factory"}, "issue": ISSUE}


def test_github_webhook_good_signature_becomes_a_task_bad_one_changes_nothing(server: InProcess) -> None:
    before = state_of(server.home)
    for bad in (delivery(LABELLED, secret="wrong"), delivery(LABELLED, secret=None)):
        assert server.request("POST", "/webhook/github", **bad).status == 401
    tampered = delivery(LABELLED)
    tampered["body"] = tampered["body"].replace(b"CSV", b"RCE")
    assert server.request("POST", "/webhook/github", **tampered).status == 401
    assert state_of(server.home) == before
    ignored = server.request("POST", "/webhook/github", **delivery({**LABELLED, "label": {"name": "bug"}}))
    assert (ignored.status, ignored.json()) == (202, {"ignored": True})
    assert server.request("POST", "/webhook/github", **delivery(LABELLED, event="push")).status == 202
    got = server.request("POST", "/webhook/github", **delivery(LABELLED))
    assert got.status == 202
    tasks = server.request("GET", "/api/tasks").json()
    assert [(t["id"], t["title"]) for t in tasks] == [(got.json()["queued"], "Add CSV export")]
    assert tasks[0]["body"].startswith("<script>x</script>") and "issues/3" in tasks[0]["body"]
    assert [t["outcome"] for t in triggers(server.home)] == ["ignored", "ignored", "queued"]


def test_a_replayed_delivery_or_the_same_issue_again_queues_one_task(server: InProcess) -> None:
    first = delivery(LABELLED)
    first["headers"]["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    answers = [server.request("POST", "/webhook/github", **first) for _ in range(3)]  # the same signed delivery
    assert [a.status for a in answers] == [202, 202, 202]
    again = delivery(LABELLED)  # a new delivery of the same issue (relabelled): still one task while it is live
    again["headers"]["X-GitHub-Delivery"] = "8f1a0c4e-cc78-11e3-81ab-4c9367dc0958"
    assert server.request("POST", "/webhook/github", **again).json() == {"duplicate": True, "task": 1}
    tasks = json.loads((server.home / "state" / "tasks.json").read_text())["tasks"]
    assert len(tasks) == 1 and tasks[0]["body"].endswith("From GitHub issue https://github.com/o/r/issues/3")
    events = (server.home / "state" / "experiment-log.jsonl").read_text()
    assert events.count('"outcome":"duplicate"') == 3 and events.count('"outcome":"queued"') == 1


def test_without_a_github_secret_the_webhook_is_off(home: Path) -> None:
    with in_process(home, github=False) as srv:
        assert srv.request("POST", "/webhook/github", **delivery(LABELLED)).status == 404


def test_events_api_is_bounded_and_filters(server: InProcess) -> None:
    server.request("POST", "/trigger/task", json_body={"title": "one"})
    server.request("POST", "/trigger/task", json_body={"title": "two"})
    got = server.request("GET", "/api/events?type=task&limit=1").json()
    assert len(got) == 1 and got[0]["type"] == "task" and got[0]["data"]["title"] == "two"
    assert server.request("GET", "/api/events?limit=100000").status == 422
    assert server.request("GET", "/api/events?since=yesterday").status == 422
    assert server.request("GET", "/api/report?since=1000d").status == 422


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("", {"FACTORY_HTTP_TOKEN": ""}, "FACTORY_HTTP_TOKEN is not set"),
        ("", {"FACTORY_HTTP_TOKEN": "short"}, "too short"),
        ('[http]\nbind = "0.0.0.0:18999"', {"FACTORY_HTTP_TOKEN": TOKEN}, "allow_public"),
    ],
)
def test_serve_refuses_to_start_open_or_public_by_accident(home: Path, toml: str, env: dict[str, str], message: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    update_toml(home, toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = run_cli("serve", home=home)
    assert done.returncode == 1 and done.stderr.startswith("Error: ") and message in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
