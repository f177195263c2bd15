"""Shared state under real concurrent processes: no torn, lost or interleaved writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factoryctl.core.errors import AlreadyRunning, FactoryError
from factoryctl.state.eventlog import EventLog
from factoryctl.state.locks import Semaphore, job_lock
from factoryctl.state.stores import JsonStore

PY = sys.executable


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PY, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


APPENDER = """
import sys
from pathlib import Path
from factoryctl.state.eventlog import EventLog
log = EventLog(Path(sys.argv[1]), secrets=())
w = int(sys.argv[2])
for i in range(int(sys.argv[3])):
    big = "x" * (9000 + i) if i % 50 == 0 else ""   # some lines over 8 KiB
    log.append("bench", session=f"s{w}", data={"w": w, "i": i, "big": big})
"""


def test_eight_writers_of_2000_events_leave_16000_parseable_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    procs = [spawn(APPENDER, str(path), str(w), "2000") for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    events = [json.loads(line) for line in lines[:-1]]
    assert len(events) == 16000
    assert sum(1 for e in events if len(e["data"]["big"]) > 8192) == 8 * 40
    for w in range(8):  # each writer's events all there, in its own order
        assert [e["data"]["i"] for e in events if e["data"]["w"] == w] == list(range(2000))
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


STORE_WRITER = """
import sys, json
from pathlib import Path
from factoryctl.state.stores import JsonStore
from factoryctl.state.eventlog import EventLog
store = JsonStore(Path(sys.argv[1]), lambda: {"n": 0, "blob": ""})
log = EventLog(Path(sys.argv[2]), secrets=())
n = 0
while True:
    with store.update() as doc:
        doc["n"] += 1
        doc["blob"] = str(doc["n"]) * 200000   # ~200 KB+, so kills land mid-write
        n = doc["n"]
    log.append("step", data={"n": n, "pad": "y" * 20000})
    print(n, flush=True)
"""


def test_a_writer_killed_mid_write_never_corrupts_a_store_or_loses_an_earlier_event(tmp_path: Path) -> None:
    store_path, log_path = tmp_path / "store.json", tmp_path / "log.jsonl"
    confirmed: set[int] = set()
    for attempt in range(12):
        proc = spawn(STORE_WRITER, str(store_path), str(log_path))
        assert proc.stdout is not None
        # Killed once it has written (a loaded machine may take longer than any fixed sleep to start
        # Python): the kill lands among its writes, at a different point each time.
        first = proc.stdout.readline()
        assert first, proc.communicate()[1]
        time.sleep(0.05 * (attempt % 5))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        printed = [int(x) for x in (first + out).split()]
        doc = json.loads(store_path.read_text())  # always whole, valid JSON
        assert doc["blob"] == str(doc["n"]) * 200000
        confirmed.update(printed)
        assert doc["n"] >= max(confirmed, default=0)
        logged = [e.data["n"] for e in EventLog(log_path, secrets=()).tail(10**6)]
        assert confirmed <= set(logged)  # every event a writer saw written is still there
        assert logged == sorted(set(logged))  # once each, in order
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 12  # a killed writer may leave its temp file, never a broken store
    assert len(confirmed) > 12


TASK_ADDER = """
import sys
from pathlib import Path
from factoryctl.jobs.context import Context
ctx = Context.load(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    ctx.tasks().add(f"task {sys.argv[2]}-{i}")
"""


def test_eight_processes_adding_tasks_at_once_lose_none(home: Path) -> None:
    procs = [spawn(TASK_ADDER, str(home), str(w), "25") for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    doc = json.loads((home / "state" / "tasks.json").read_text())
    titles = sorted(t["title"] for t in doc["tasks"])
    assert titles == sorted(f"task {w}-{i}" for w in range(8) for i in range(25))
    assert sorted(t["id"] for t in doc["tasks"]) == list(range(1, 201))
    assert doc["next_id"] == 201


SEM_HOLDER = """
import sys, time, os
from pathlib import Path
from factoryctl.state.locks import Semaphore
sem = Semaphore(Path(sys.argv[1]), "heavy", int(sys.argv[3]))
with sem.hold(timeout_s=60, poll_s=0.01):
    t0 = time.time()
    time.sleep(float(sys.argv[2]))
    print(t0, time.time(), flush=True)
"""


def test_the_semaphore_never_admits_more_than_its_slots_across_processes(tmp_path: Path) -> None:
    procs = [spawn(SEM_HOLDER, str(tmp_path), "0.2", "2") for _ in range(8)]
    spans = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        start, end = map(float, out.split())
        spans.append((start, end))
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    inside = peak = 0
    for _, step in edges:
        inside += step
        peak = max(peak, inside)
    assert peak == 2


def test_a_dead_holders_slot_comes_back(tmp_path: Path) -> None:
    sem = Semaphore(tmp_path, "heavy", 1)
    holder = spawn(SEM_HOLDER, str(tmp_path), "60", "1")
    deadline = time.monotonic() + 10
    while not sem.holders() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sem.holders() == [str(holder.pid)]
    assert sem.try_acquire() is None
    holder.kill()
    holder.communicate()
    got = sem.try_acquire()
    assert got is not None
    os.close(got[1])


def test_a_second_job_lock_holder_is_refused(tmp_path: Path) -> None:
    code = """
import sys, time
from pathlib import Path
from factoryctl.state.locks import job_lock
with job_lock(Path(sys.argv[1]), "review"):
    print("held", flush=True)
    time.sleep(60)
"""
    holder = spawn(code, str(tmp_path))
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with (
        pytest.raises(AlreadyRunning, match=rf"review is already running \(pid {holder.pid}\)"),
        job_lock(tmp_path, "review"),
    ):
        pass
    holder.kill()
    holder.communicate()
    with job_lock(tmp_path, "review"):
        pass  # free again once the holder is gone


def test_an_invalid_store_is_a_clear_error_and_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    path.write_text("{broken")
    store = JsonStore(path, dict)
    with pytest.raises(FactoryError, match="is not valid JSON") as info, store.update() as doc:
        doc["x"] = 1
    assert "\n" not in str(info.value)
    assert path.read_text() == "{broken"
