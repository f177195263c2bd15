"""One factory over several hosts: a gate and two workers (three FACTORY_HOMEs on this machine)
sharing one real PostgreSQL database and one git origin.

Worker w1 runs w1-s1 and w1-s2, worker w2 runs w2-s1 and w2-s2, the gate runs no loops. Cycles
run in-process with the scripted agent; the CLI runs in-process (`run_cli`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from factoryctl.adapters.pm2 import Pm2
from factoryctl.adapters.sandbox import Policy, Sandbox
from factoryctl.core.clock import utcnow
from factoryctl.core.errors import AlreadyRunning
from factoryctl.core.facts import Reading
from factoryctl.core.records import QueueStatus
from factoryctl.jobs.context import Context
from factoryctl.jobs.cycle import Cycle
from factoryctl.jobs.loop import Loop, pause_reason
from factoryctl.jobs.review.gate import MergeGate
from factoryctl.jobs.scheduler import Scheduler
from factoryctl.state.backend import all_jobs_stopped, scheduler_lock
from factoryctl.state.heartbeats import Heartbeats
from tests.factories import Factory, git, make_factory
from tests.helpers import FakeClock, meanwhile, run_cli
from tests.integration.test_review import APPROVE, session_call
from tests.support.postgres import PgServer

WORKERS = "{ w1 = 2, w2 = 2 }"
E_TEST = "def test_e() -> None:\n    assert 2 * 2 == 4\n"
F_TEST = "def test_f() -> None:\n    assert 3 - 1 == 2\n"


def host(tmp_path: Path, name: str, role: str, url: str, origin: Path | None = None) -> Factory:
    """One host of the fleet: its own FACTORY_HOME, main clone and scripted agent; the shared database and origin."""
    factory = make_factory(tmp_path / name, extra=f'[state]\nurl = "{url}"\n[fleet]\nworkers = {WORKERS}\n')
    config = factory.home / "factory.toml"
    config.write_text(config.read_text().replace("[factory]\n", f'[factory]\nrole = "{role}"\nhost = "{name}"\n', 1))
    if origin is not None:  # every host pushes to and fetches from the one remote
        git(factory.home / "repo", "remote", "set-url", "origin", str(origin))
        factory.origin = origin
    return factory


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> tuple[Factory, Factory, Factory]:
    gate = host(tmp_path, "gate", "gate", pg_url)
    return (
        gate,
        host(tmp_path, "w1", "worker", pg_url, gate.origin),
        host(tmp_path, "w2", "worker", pg_url, gate.origin),
    )


def review_of(session: str, answer: str, actions: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"match": f"by session {session}", "result": answer, "actions": actions or []}


def no_pm2(tmp_path: Path) -> Pm2:
    return Pm2(environ={"PM2_HOME": str(tmp_path / "no-pm2"), "PATH": "/usr/bin:/bin"})


def test_cycles_from_two_workers_land_through_one_review_on_the_gate_and_status_groups_by_host(
    fleet: tuple[Factory, Factory, Factory],
) -> None:
    gate, w1, w2 = fleet
    w1.script([session_call("w1-s1", [{"write": "tests/test_e.py", "content": E_TEST}], "Add test e")])
    w2.script([session_call("w2-s2", [{"write": "tests/test_f.py", "content": F_TEST}], "Add test f")])
    one = Cycle(w1.ctx(), "w1-s1").run()
    two = Cycle(w2.ctx(), "w2-s2").run()
    assert (one.verdict, two.verdict) == ("pushed", "pushed"), (one.reason, two.reason)
    assert one.branch and one.branch.startswith("brl/w1-s1/") and two.branch and two.branch.startswith("brl/w2-s2/")
    before = gate.main_sha()
    gate.script([review_of("w1-s1", APPROVE), review_of("w2-s2", APPROVE)])
    outcomes = MergeGate(gate.ctx()).run()
    assert [o.verdict for o in outcomes] == ["approve", "approve"]
    assert gate.main_sha() != before
    assert {"tests/test_e.py", "tests/test_f.py"} <= set(
        git(gate.origin, "ls-tree", "-r", "--name-only", "main").split()
    )
    queue = gate.ctx().review_queue()
    assert queue.find(one.branch).status is QueueStatus.LANDED and queue.find(two.branch).status is QueueStatus.LANDED

    done = run_cli("status", "--json", home=gate.home)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(h["name"], h["sessions"]) for h in report["hosts"]] == [("w1", ["w1-s1", "w1-s2"]),
                                                                      ("w2", ["w2-s1", "w2-s2"])]  # fmt: skip
    assert [(s["name"], s["host"]) for s in report["sessions"]][::3] == [("w1-s1", "w1"), ("w2-s2", "w2")]
    text = run_cli("status", home=gate.home).stdout
    host_lines = [line for line in text.splitlines() if line.startswith("  host ")]
    assert [line.split(":")[0] for line in host_lines] == ["  host w1", "  host w2"]
    w1_block = text.split("  host w1:")[1].split("  host w2:")[0]
    assert "    w1-s1: idle between cycles" in w1_block and "last cycle" in w1_block and "w2-s" not in w1_block


def test_a_pause_from_the_gate_stops_a_worker_session_before_its_next_cycle(
    fleet: tuple[Factory, Factory, Factory],
) -> None:
    gate, w1, _ = fleet
    done = run_cli("pause", "w1-s2", home=gate.home)
    assert done.returncode == 0 and done.stdout.startswith("paused w1-s2"), done.stderr
    ctx = w1.ctx()
    assert str(pause_reason(ctx, "w1-s2")).startswith("paused (paused.w1-s2)")
    assert pause_reason(ctx, "w1-s1") is None  # only that session
    lines: list[str] = []

    def sleep(seconds: float) -> None:  # a person resumes it from the gate while the loop waits
        run_cli("resume", "w1-s2", home=gate.home)

    w1.script([{"result": "nothing"}], repeat=True)
    Loop(ctx, "w1-s2", out=lines.append, sleep=sleep, max_cycles=1).run()
    waiting = [i for i, line in enumerate(lines) if "waiting: paused (paused.w1-s2)" in line]
    started = [i for i, line in enumerate(lines) if "cycle 1 starting" in line]
    assert waiting and started and waiting[0] < started[0], lines
    status = json.loads(run_cli("status", "--json", home=gate.home).stdout)
    assert status["holds"]["paused"] == []
    assert run_cli("sessions", "stop", "w1-s1", home=gate.home).returncode != 0  # tmux acts only where it runs


def test_a_worker_whose_heartbeats_stop_is_lost_and_its_task_goes_back_to_the_queue(
    fleet: tuple[Factory, Factory, Factory], tmp_path: Path
) -> None:
    gate, w1, _ = fleet
    then = datetime(2026, 12, 5, 12, 0, tzinfo=utcnow().tzinfo)
    ctx = w1.ctx()
    Heartbeats(ctx.state.document("sessions.json", dict), lambda: then).beat("w1-s1", "cycle")
    task = ctx.tasks().add("Fix the flaky test")
    claimed = ctx.tasks().claim("w1-s1")
    assert claimed is not None and claimed.id == task.id

    clock = FakeClock(then + timedelta(seconds=190))
    gate_ctx = Context.load(gate.home, clock=clock)
    report = Scheduler(gate_ctx, pm2=no_pm2(tmp_path), reading=lambda: Reading(ram_percent=10.0)).tick()
    why = "no heartbeat from host w1 for 3m 10s"
    assert report.lost == {"w1-s1": why}  # w1-s2 never started: not lost
    assert report.actions == [f"requeue task #{task.id} of w1-s1: session w1-s1 is lost: {why}"]
    back = gate_ctx.tasks().get(task.id)
    assert back.status == "queued" and back.session is None and why in back.history[-1]["note"]
    events = [e for e in gate_ctx.log.tail(20) if e.type == "scheduler"]
    assert events and events[-1].data["lost"] == {"w1-s1": why}

    status = json.loads(run_cli("status", "--json", home=gate.home).stdout)
    s1 = next(s for s in status["sessions"] if s["name"] == "w1-s1")
    assert s1["lost"].startswith("no heartbeat from host w1 for ") and s1["state_text"].startswith("lost: ")
    assert status["hosts"][0]["lost"] == ["w1-s1"]
    rows = json.loads(run_cli("sessions", "list", "--json", home=gate.home).stdout)
    assert rows[0]["name"] == "w1-s1" and rows[0]["lost"].startswith("no heartbeat from host w1")
    assert rows[0]["running"] == "on w1"
    again = Scheduler(gate_ctx, pm2=no_pm2(tmp_path), reading=lambda: Reading(ram_percent=10.0)).tick()
    assert again.actions == []  # requeued once; the session stays lost until it beats again


def test_a_worker_scheduler_that_cannot_reach_the_database_waits_says_so_and_goes_on(
    fleet: tuple[Factory, Factory, Factory], pg_server: PgServer, tmp_path: Path
) -> None:
    _, w1, _ = fleet
    ctx = w1.ctx()
    ctx.log.append("before")  # connected once: the schema is there
    lines: list[str] = []
    stop = threading.Event()

    def out(text: str) -> None:
        lines.append(text)
        if " tick: " in text:
            stop.set()

    class NoTmux:
        def panes(self) -> dict[str, object]:
            return {}

        def start(self, session: str) -> bool:
            return True

    pg_server.stop()
    threading.Timer(1.5, pg_server.start_again).start()
    quiet = NoTmux()
    sched = Scheduler(ctx, sessions=quiet, pm2=no_pm2(tmp_path), reading=lambda: Reading(ram_percent=10.0), out=out)  # type: ignore[arg-type]
    started = time.monotonic()
    assert sched.run(stop=stop) == 0
    assert time.monotonic() - started < 20
    where = ctx.state.describe()
    waiting = [line for line in lines if line.startswith(f"waiting for the shared state at {where}: ")]
    assert len(waiting) == 1 and "no tick runs until it can be recorded" in waiting[0], lines
    assert any(line.startswith(f"the shared state at {where} is back") for line in lines)
    assert "Traceback" not in "\n".join(lines)
    assert ctx.holds_document().path.as_posix() == "holds/w1.json" and ctx.holds().updated


def test_postgresql_restarted_during_a_review_on_the_gate_fails_in_one_line_and_the_next_run_lands(
    fleet: tuple[Factory, Factory, Factory], pg_server: PgServer
) -> None:
    gate, w1, _ = fleet
    w1.script([session_call("w1-s1", [{"write": "tests/test_e.py", "content": E_TEST}], "Add test e")])
    pushed = Cycle(w1.ctx(), "w1-s1").run()
    assert pushed.verdict == "pushed" and pushed.branch
    before = gate.main_sha()
    gate.script([review_of("w1-s1", APPROVE, meanwhile(gate.scenario.parent, pg_server.restart)),
                 review_of("w1-s1", APPROVE)])  # fmt: skip
    done = run_cli("review", home=gate.home)
    assert done.returncode != 0
    error = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(error) == 1 and error[0].startswith("Error: ") and "unreachable" in error[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert gate.main_sha() == before and pushed.branch in gate.origin_branches()
    assert gate.ctx().review_queue().find(pushed.branch).status is QueueStatus.PENDING
    again = run_cli("review", home=gate.home)  # no lock left behind: the next run takes it and lands
    assert again.returncode == 0, again.stderr
    assert gate.main_sha() != before
    assert gate.ctx().review_queue().find(pushed.branch).landed == gate.main_sha()


def test_a_sandboxed_call_cannot_reach_a_socket_in_a_hidden_folder() -> None:
    folder = Path(tempfile.mkdtemp(prefix="factory-db-", dir="/var/tmp"))  # not under /tmp: the sandbox has its own
    path = folder / ".s.PGSQL.5432"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)
    probe = [
        "/usr/bin/python3",
        "-c",
        "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
        str(path),
    ]
    policy = Policy(workdir=folder.parent, writable=False)
    try:
        seen = subprocess.run(Sandbox(True, hide=()).wrap(probe, policy), capture_output=True, text=True, timeout=30)
        assert seen.returncode == 0, seen.stderr  # without hiding, the socket is reachable from the sandbox
        # Sealed: hidden even though the call's own folder (its parent here) is bound after the hiding.
        hidden = subprocess.run(
            Sandbox(True, hide=(), sealed=(folder,)).wrap(probe, policy), capture_output=True, text=True, timeout=30
        )
        assert hidden.returncode != 0 and "FileNotFoundError" in hidden.stderr, hidden.stderr
    finally:
        server.close()
        path.unlink(missing_ok=True)
        folder.rmdir()
    sealed = Context.load(Path(tempfile.gettempdir()) / "no-such-factory").sandbox().sealed
    assert sealed == (Path("/run/postgresql"), Path("/run/factory-db"))


def test_a_worker_loop_waits_for_the_stopped_database_says_so_once_and_resumes(
    fleet: tuple[Factory, Factory, Factory], pg_server: PgServer
) -> None:
    _, w1, _ = fleet
    ctx = w1.ctx()
    ctx.log.append("before")
    w1.script([{"result": "nothing"}], repeat=True)
    lines: list[str] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            pg_server.start_again()

    pg_server.stop()
    try:
        Loop(ctx, "w1-s1", out=lines.append, sleep=sleep, max_cycles=1).run()
    finally:
        if len(waits) < 2:
            pg_server.start_again()
    where = ctx.state.describe()
    waiting = [i for i, line in enumerate(lines) if f"w1-s1 waiting for the shared state at {where}: " in line]
    back = [i for i, line in enumerate(lines) if f"the shared state at {where} is back" in line]
    started = [i for i, line in enumerate(lines) if "cycle 1 starting" in line]
    assert len(waiting) == 1 and back and started and waiting[0] < back[0] < started[0], lines
    assert waits[:2] == [1.0, 2.0]
    assert Context.load(w1.home).heartbeats().of("w1-s1")["state"] == "stopped"


def test_every_host_runs_its_own_scheduler_at_once(fleet: tuple[Factory, Factory, Factory], tmp_path: Path) -> None:
    """A fleet's job locks are fleet-wide: the scheduler's is one per host, so a worker's running
    scheduler does not keep the gate's (which requeues lost sessions' tasks) from running."""
    gate, w1, _w2 = fleet
    w1_ctx = w1.ctx()
    with Scheduler(w1_ctx, pm2=no_pm2(tmp_path)).job_lock():  # w1's scheduler is running
        gate_scheduler = Scheduler(gate.ctx(), pm2=no_pm2(tmp_path), reading=lambda: Reading(ram_percent=10.0))
        assert gate_scheduler.run(once=True) == 0
        with pytest.raises(AlreadyRunning), w1_ctx.job_lock(scheduler_lock("w1")):  # a second one on w1 is refused
            pass
        ticked = run_cli("scheduler", "--json", home=w1.home)  # a tick by hand on w1 waits its turn too
        assert ticked.stdout == "" and ticked.stderr.startswith("scheduler-w1 is already running"), ticked
        assert ticked.stderr.count("\n") == 1, ticked.stderr  # no tick ran, in one line
        # What must be stopped before the state moves: every scheduler of the fleet the host knows.
        with pytest.raises(AlreadyRunning, match="scheduler-w1"), all_jobs_stopped(gate.ctx().state, (), ("w1",)):
            pass
