"""The state contract: what every state backend must do, run against the files and a real PostgreSQL.

Each test takes `state` (one backend per parameter): the file backend under a temp
FACTORY_HOME, and a fresh database on the session's PostgreSQL server. Writers in other
processes open the backend from `state.arg` (a home folder or a URL), as the jobs do.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from factoryctl.core.checks import CheckRun, Counts
from factoryctl.core.config import CheckSpec
from factoryctl.core.errors import AlreadyRunning, FactoryError, UsageError
from factoryctl.core.paths import Paths
from factoryctl.core.records import Alert, QueueStatus, ReviewEntry
from factoryctl.state.alerts import Alerts
from factoryctl.state.backend import StateBackend, open_backend
from factoryctl.state.baselines import Baselines
from factoryctl.state.eventlog import EventFilter
from factoryctl.state.heartbeats import Heartbeats
from factoryctl.state.reviewqueue import ReviewQueue
from factoryctl.state.reviewqueue import empty as empty_queue
from factoryctl.state.spend import spend_since
from factoryctl.state.window import Window

PY = sys.executable
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

OPEN = """
import sys
from pathlib import Path
from factoryctl.core.paths import Paths
from factoryctl.state.backend import open_backend
arg = sys.argv[1]
state = open_backend(arg if arg.startswith("postgresql") else "", Paths(Path(arg)))
"""


@dataclass
class State:
    kind: str
    arg: str  # what a process opens the backend from: a FACTORY_HOME or a URL
    backend: StateBackend
    clock: list[datetime]

    def now(self) -> datetime:
        return self.clock[0]

    def log(self, secrets: tuple[str, ...] = ()) -> Any:
        log = self.backend.event_log(self.now)
        log._secrets = secrets
        return log

    def corrupt(self, name: str, text: str) -> None:
        """Put `text` where document `name` lives, as a person's hand edit would (tasks: rows of their own)."""
        if self.kind == "postgresql" and name == "tasks.json":
            with psycopg.connect(self.arg, autocommit=True) as conn:
                for i, record in enumerate(json.loads(text)["tasks"]):
                    conn.execute("INSERT INTO factory_tasks (id, body) VALUES (%s, %s::jsonb)", (i, json.dumps(record)))
            return
        if self.kind == "files":
            path = Path(self.arg) / "state" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        else:
            with psycopg.connect(self.arg, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO factory_documents (name, body) VALUES (%s, %s::jsonb) "
                    "ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body",
                    (name, text),
                )

    def raw(self, name: str) -> str:
        if self.kind == "postgresql" and name == "tasks.json":
            with psycopg.connect(self.arg, autocommit=True) as conn:
                rows = conn.execute("SELECT body FROM factory_tasks ORDER BY id").fetchall()
            return json.dumps({"tasks": [r[0] for r in rows]})
        if self.kind == "files":
            return (Path(self.arg) / "state" / name).read_text()
        with psycopg.connect(self.arg, autocommit=True) as conn:
            row = conn.execute("SELECT body::text FROM factory_documents WHERE name = %s", (name,)).fetchone()
        assert row is not None
        return str(row[0])


@pytest.fixture(params=["files", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[State]:
    if request.param == "files":
        home = tmp_path / "factory"
        home.mkdir()
        arg = str(home)
    else:
        arg = request.getfixturevalue("pg_url")
    backend = open_backend("" if request.param == "files" else arg, Paths(Path(arg)))
    backend.check()  # PostgreSQL: the tables exist from here on
    yield State(request.param, arg, backend, [T0])
    backend.close()


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PY, "-c", OPEN + code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- the event log --------------------------------------------------------------------------


def test_the_log_reads_newest_first_with_filters_and_keeps_secrets_out(state: State) -> None:
    log = state.log(secrets=("sk-secret-123456",))
    for i in range(30):
        state.clock[0] = T0 + timedelta(minutes=i)
        log.append("ralph_cycle" if i % 3 else "task", session=f"s{i % 2 + 1}", data={"i": i})
    log.append("alert", data={"message": "key sk-secret-123456 leaked?"})
    assert [e.data["i"] for e in log.tail(3, EventFilter(types=frozenset({"ralph_cycle"})))] == [26, 28, 29]
    since = EventFilter(session="s1", since="2026-12-05T12:20:00.000Z", until="2026-12-05T12:24:00.000Z")
    assert [e.data["i"] for e in log.iter_reverse(since)] == [24, 22, 20]
    assert log.tail(1)[0].data == {"message": "key *** leaked?"}
    assert len(log.tail(10**6)) == 31
    with pytest.raises(FactoryError, match="needs a type"):
        log.append("")


def test_text_the_log_cannot_hold_as_it_is_is_kept_readable(state: State) -> None:
    log = state.log()
    log.append("bot_message", session="s1", data={"text": "before\0after", "nested": {"k\0": ["é", 1.5]}})
    event = log.tail(1)[0]
    assert event.data["text"].startswith("before") and event.data["text"].endswith("after")
    assert event.data["nested"][next(iter(event.data["nested"]))] == ["é", 1.5]


def test_a_cursor_reader_sees_each_new_event_once_in_order(state: State) -> None:
    log = state.log()
    log.append("old")
    cursor = log.end_cursor()
    assert log.read_after(cursor) == ([], cursor)  # starting at the end: nothing old is replayed
    for i in range(5):
        log.append("alert", data={"i": i})
    events, after = log.read_after(cursor)
    assert [e.data["i"] for e in events] == list(range(5)) and after != cursor
    log.append("alert", data={"i": 5})
    events, _ = log.read_after(after)
    assert [e.data["i"] for e in events] == [5]
    assert [e.type for e in log.iter_forward()] == ["old"] + ["alert"] * 6


def test_following_the_log_yields_only_new_events_as_they_come(state: State) -> None:
    log = state.log()
    log.append("alert", data={"i": -1})  # before: not replayed
    seen: list[int] = []
    following = threading.Event()  # follow() has its position once it first asks whether to stop

    def later() -> None:
        assert following.wait(30)
        for i in range(3):
            log.append("alert" if i != 1 else "task", data={"i": i})

    def stop() -> bool:
        following.set()
        if time.monotonic() > deadline:
            raise TimeoutError(f"follow() yielded {seen} in 30 s")
        return len(seen) >= 2

    writer = threading.Thread(target=later)
    writer.start()
    deadline = time.monotonic() + 30
    for event in log.follow(EventFilter(types=frozenset({"alert"})), poll_s=0.05, stop=stop):
        seen.append(event.data["i"])
    writer.join()
    assert seen == [0, 2]


def test_the_pages_window_follows_the_log(state: State) -> None:
    log = state.log()
    log.append("ralph_cycle", data={"i": 0})
    window = Window(log, frozenset({"ralph_cycle"}), timedelta(hours=1))
    assert [e.data["i"] for e in window.events(T0)] == [0]
    state.clock[0] = T0 + timedelta(minutes=40)
    log.append("task", data={})
    log.append("ralph_cycle", data={"i": 1})
    assert [e.data["i"] for e in window.events(state.now())] == [0, 1]
    assert [e.data["i"] for e in window.events(T0 + timedelta(minutes=90))] == [1]  # the first fell out


def test_spend_is_summed_from_the_log(state: State) -> None:
    log = state.log()
    log.append("agent_call", session="s1", data={"cost_usd": 0.5, "purpose": "cycle"})
    log.append("agent_call", data={"cost_usd": 0.25, "purpose": "review"})
    spend = spend_since(log, T0 - timedelta(hours=1))
    assert spend["total_usd"] == 0.75 and spend["by_session"] == {"s1": 0.5} and spend["no_session"] == {"review": 0.25}


# -- documents and the stores built on them ---------------------------------------------------


def test_documents_read_update_write_delete(state: State) -> None:
    doc = state.backend.document("scheduler.json", dict)
    assert doc.read() == {}
    with doc.update() as data:
        data["ticks"] = 1
    with pytest.raises(RuntimeError), doc.update() as data:
        data["ticks"] = 99
        raise RuntimeError("a failed block writes nothing")
    assert doc.read() == {"ticks": 1}
    doc.write({"ticks": 2})
    assert doc.read() == {"ticks": 2} and "scheduler.json" in state.backend.documents()
    doc.delete()
    assert doc.read() == {} and "scheduler.json" not in state.backend.documents()


def test_the_files_list_each_hosts_holds_and_not_a_gates_file_left_from_before_holds(tmp_path: Path) -> None:
    """`state migrate` moves what `documents()` lists: the holds, never the old name's leftovers."""
    home = tmp_path / "factory"
    home.mkdir()
    backend = open_backend("", Paths(home))
    for name in ("tasks.json", "holds.json", "holds/w1.json"):
        backend.document(name, dict).write({"updated": "2026-12-05T12:00:00.000Z"})
    (home / "state" / "gates").mkdir()  # what a scheduler wrote before issue 23 named them holds
    (home / "state" / "gates.json").write_text("{}")
    (home / "state" / "gates" / "w1.json").write_text("{}")
    assert backend.documents() == ["tasks.json", "holds.json", "holds/w1.json"]


def test_a_document_of_the_wrong_shape_is_one_clear_line_and_is_left_as_it_was(state: State) -> None:
    state.corrupt("review-queue.json", "[1, 2]")
    queue = ReviewQueue(state.backend.document("review-queue.json", empty_queue))
    with pytest.raises(FactoryError, match=r"review-queue\.json .*holds a JSON list where a dict belongs") as info:
        queue.add_pending(entry("brl/s1/a"))
    assert "\n" not in str(info.value)
    assert json.loads(state.raw("review-queue.json")) == [1, 2]


def test_a_bad_task_record_is_skipped_named_and_kept(state: State) -> None:
    bad = {"id": "seven", "title": "x"}
    state.corrupt("tasks.json", json.dumps({"next_id": 3, "tasks": [bad]}))
    tasks = state.backend.task_queue(state.log())
    added = tasks.add("Fix the login test", priority="high")
    assert [t.id for t in tasks.all()] == [added.id]
    assert len(tasks.problems()) == 1 and "task 0: field 'id'" in tasks.problems()[0]
    assert bad in json.loads(state.raw("tasks.json"))["tasks"]


def test_tasks_are_added_claimed_and_moved(state: State) -> None:
    tasks = state.backend.task_queue(state.log())
    low = tasks.add("low one", priority="low")
    high = tasks.add("high one", priority="high")
    claimed = tasks.claim("s1")
    assert claimed is not None and claimed.id == high.id and claimed.status == "assigned"
    assert tasks.claim("s1") is not None and tasks.claim("s1").id == high.id  # type: ignore[union-attr]
    other = tasks.claim("s2")
    assert other is not None and other.id == low.id and tasks.claim("s3") is None
    tasks.transition(high.id, "pushed", note="brl/s1/x")
    assert tasks.get(high.id).status == "pushed"
    assert [e.data["action"] for e in state.log().tail(10, EventFilter(types=frozenset({"task"})))][-1] == "pushed"


def test_the_queues_rules_hold_on_every_backend(state: State) -> None:
    tasks = state.backend.task_queue(state.log())
    reserved = tasks.add("for s2 only", session="s2")
    tried = tasks.add("tried twice", priority="urgent")
    plain = tasks.add("plain")
    for _ in range(2):  # two attempts that failed
        assert tasks.claim("s3") is not None
        tasks.transition(tried.id, "in_progress")
        tasks.transition(tried.id, "requeued", note="failed")
    assert tasks.get(tried.id).attempts == 2
    got = tasks.claim("s1", max_attempts=2)  # the urgent one is left for the scheduler to park
    assert got is not None and got.id == plain.id
    assert tasks.assign(reserved.id, "s1") is None  # reserved for another session
    assert tasks.assign(reserved.id, "s2", still_idle=lambda s: False) is None
    assigned = tasks.assign(reserved.id, "s2")
    assert assigned is not None and assigned.status == "assigned" and assigned.session == "s2"
    other = tasks.add("another")
    assert tasks.assign(other.id, "s2") is None  # s2 has its own work already
    released = tasks.release(reserved.id, "s2", "its session died")
    assert released is not None and released.status == "queued" and released.session is None
    parked = tasks.park(tried.id, "kept failing")
    assert parked is not None and parked.status == "parked" and tasks.claim("s4", max_attempts=2) is not None
    revived = tasks.transition(tried.id, "requeued", note="a person retries it")
    assert revived.status == "queued" and revived.attempts == 0
    first, new = tasks.add_once("#issue-7", "From GitHub", body="see #issue-7")
    again, new_again = tasks.add_once("#issue-7", "From GitHub", body="see #issue-7")
    assert new and not new_again and again.id == first.id
    cancelled = tasks.transition(tasks.add("not wanted after all").id, "cancelled")
    with pytest.raises(UsageError, match="only open tasks can change"):
        tasks.transition(cancelled.id, "pushed")


def entry(branch: str) -> ReviewEntry:
    return ReviewEntry(branch=branch, session="s1", queued="2026-12-05T12:00:00.000Z")


def test_the_review_queue_keeps_entries_and_their_changes(state: State) -> None:
    queue = ReviewQueue(state.backend.document("review-queue.json", empty_queue))
    queue.add_pending(entry("brl/s1/a"))
    queue.add_pending(entry("brl/s2/b"))
    queue.add_pending(entry("brl/s1/a"))  # queued once
    assert [e.branch for e in queue.read().pending()] == ["brl/s1/a", "brl/s2/b"]
    queue.update("brl/s1/a", status=QueueStatus.REJECTED, reasons=("conflict",))
    assert queue.find("brl/s1/a").status is QueueStatus.REJECTED
    assert [e.branch for e in queue.read().pending()] == ["brl/s2/b"]


def test_heartbeats_are_kept_per_session(state: State) -> None:
    beats = Heartbeats(state.backend.document("sessions.json", dict), state.now)
    beats.beat("s1", "cycle", task=4)
    beats.beat("s2", "idle")
    beats.beat("s1", "cycle", task=None)
    assert beats.of("s1")["state"] == "cycle" and "task" not in beats.of("s1")
    assert beats.of("s1")["cycle_started"] == "2026-12-05T12:00:00.000Z"
    assert beats.of("s1")["host"] == socket.gethostname() and beats.of("s1")["pid"] == os.getpid()
    assert sorted(beats.read()) == ["s1", "s2"]


def test_a_baseline_is_computed_once_per_commit_and_checks(state: State) -> None:
    baselines = Baselines(state.backend, state.log())
    specs = [CheckSpec(name="pytest", command=["pytest"], parser="pytest")]
    ts = "2026-12-05T12:00:00.000Z"
    runs = {"pytest": CheckRun("pytest", Counts(passed=3, failed=1, total=4), ts, ts, 1.0, heavy=True)}
    calls: list[int] = []

    def compute() -> dict[str, CheckRun]:
        calls.append(1)
        return runs

    first, computed = baselines.get("abc123", specs, compute, session="s1")
    again, computed_again = baselines.get("abc123", specs, compute, session="s2")
    assert computed and not computed_again and len(calls) == 1 and first == again
    assert first["pytest"].failed == 1
    baselines.record_health("abc123", specs, first, ["pytest: 1 failing"], "2026-12-05T12:00:00.000Z")
    assert baselines.health() == ("abc123", ("pytest: 1 failing",))
    assert baselines.read("abc123", "x") is None


def test_an_alert_is_not_repeated_within_its_quiet_period(state: State) -> None:
    log = state.log()
    sent: list[str] = []

    class Recorder:
        def notify(self, alert: Alert) -> None:
            sent.append(alert.key)

    alerts = Alerts(log, lambda: state.backend.exclusive("alerts"), [Recorder()], quiet=timedelta(hours=1))
    assert alerts.send(Alert("ram", "RAM 91%"))
    assert not alerts.send(Alert("ram", "RAM 92%"))
    state.clock[0] = T0 + timedelta(hours=2)
    assert alerts.send(Alert("ram", "RAM 93%")) and sent == ["ram", "ram"]


# -- locks -------------------------------------------------------------------------------------

HOLDER = """
import time
with state.job_lock("review"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_job_lock_holder_is_refused_and_a_dead_holders_lock_comes_back(state: State) -> None:
    holder = spawn(HOLDER, state.arg)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with (
        pytest.raises(AlreadyRunning, match=rf"review is already running \(pid {holder.pid}"),
        state.backend.job_lock("review"),
    ):
        pass
    with state.backend.job_lock("standup"):  # another job is free
        pass
    holder.kill()
    holder.communicate()
    deadline = time.monotonic() + 10
    while True:
        try:
            with state.backend.job_lock("review"):
                break
        except AlreadyRunning:  # the server notices a killed client's connection a moment later
            assert time.monotonic() < deadline
            time.sleep(0.05)


SECTION = """
import time, sys
for _ in range(20):
    with state.exclusive("alerts"):
        t0 = time.time()
        time.sleep(0.005)
        print(t0, time.time(), flush=True)
"""


def test_a_critical_section_admits_one_process_at_a_time(state: State) -> None:
    procs = [spawn(SECTION, state.arg) for _ in range(4)]
    spans = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        spans += [tuple(map(float, line.split())) for line in out.splitlines()]
    spans.sort()
    assert len(spans) == 80
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


# -- many writers at once ----------------------------------------------------------------------

APPENDER = """
import sys
log = state.event_log(__import__("factoryctl.core.clock", fromlist=["utcnow"]).utcnow)
log._secrets = ()
w = int(sys.argv[2])
for i in range(int(sys.argv[3])):
    big = "x" * (9000 + i) if i % 50 == 0 else ""   # some events over 8 KiB
    log.append("bench", session=f"s{w}", data={"w": w, "i": i, "big": big})
"""


def test_eight_writers_lose_no_event_and_tear_none(state: State) -> None:
    procs = [spawn(APPENDER, state.arg, str(w), "300") for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    events = list(state.log().iter_forward())
    assert len(events) == 2400
    assert sum(1 for e in events if len(e.data["big"]) > 8192) == 8 * 6
    for w in range(8):  # each writer's events all there, in its own order
        assert [e.data["i"] for e in events if e.data["w"] == w] == list(range(300))
    assert [e.ts for e in events] == sorted(e.ts for e in events)


TASK_WORKER = """
import sys
from factoryctl.core.clock import utcnow
tasks = state.task_queue(state.event_log(utcnow))
w, session = sys.argv[2], f"s{int(sys.argv[2]) + 1}"
for i in range(int(sys.argv[3])):   # adding while the others already claim
    tasks.add(f"task {w}-{i}")
while (task := tasks.claim(session)) is not None:   # the last to finish adding drains the queue
    tasks.transition(task.id, "pushed", note="done")
    print(task.id, flush=True)
"""


def test_eight_processes_adding_and_claiming_at_once_lose_no_task_and_take_each_once(state: State) -> None:
    procs = [spawn(TASK_WORKER, state.arg, str(w), "15") for w in range(8)]
    taken: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        taken += [int(x) for x in out.split()]
    tasks = state.backend.task_queue(state.log())
    assert sorted(t.title for t in tasks.all()) == sorted(f"task {w}-{i}" for w in range(8) for i in range(15))
    assert sorted(t.id for t in tasks.all()) == list(range(1, 121))
    assert sorted(taken) == list(range(1, 121))  # every task claimed once, none twice
    assert {t.status for t in tasks.all()} == {"pushed"}


STORE_WRITER = """
from factoryctl.core.clock import utcnow
store = state.document("store.json", lambda: {"n": 0, "blob": ""})
log = state.event_log(utcnow)
log._secrets = ()
while True:
    with store.update() as doc:
        doc["n"] += 1
        doc["blob"] = str(doc["n"]) * 100000
        n = doc["n"]
    log.append("step", data={"n": n, "pad": "y" * 20000})
    print(n, flush=True)
"""


def test_a_writer_killed_mid_write_never_corrupts_a_document_or_loses_an_earlier_event(state: State) -> None:
    confirmed: set[int] = set()
    store = state.backend.document("store.json", lambda: {"n": 0, "blob": ""})
    for attempt in range(6):
        proc = spawn(STORE_WRITER, state.arg)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # it is writing: kill it a moment later, mid-update or mid-append
        time.sleep(0.02 + 0.03 * attempt)
        proc.kill()
        out, _ = proc.communicate()
        confirmed.update(int(x) for x in (first + out).split())
        doc = store.read()
        assert doc["blob"] == str(doc["n"]) * 100000  # always whole
        assert doc["n"] >= max(confirmed, default=0)
        logged = [e.data["n"] for e in state.log().iter_forward()]
        assert confirmed <= set(logged) and logged == sorted(set(logged))
    assert len(confirmed) >= 6
