"""The task queue's rules, on a real store in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from factoryctl.core.errors import UsageError
from factoryctl.state.eventlog import EventLog
from factoryctl.state.tasks import TaskQueue


def queue(tmp_path: Path) -> TaskQueue:
    return TaskQueue.at(tmp_path / "tasks.json", EventLog(tmp_path / "log.jsonl", secrets=()))


def test_claim_takes_the_best_queued_task_and_keeps_it(tmp_path: Path) -> None:
    q = queue(tmp_path)
    q.add("low", priority="low")
    urgent = q.add("urgent", priority="urgent")
    q.add("for s2", priority="urgent", session="s2")
    got = q.claim("s1")
    assert got is not None and got.id == urgent.id and got.status == "assigned" and got.session == "s1"
    again = q.claim("s1")  # its own open task comes back, nothing new is taken
    assert again is not None and again.id == urgent.id
    assert [t.status for t in q.all()] == ["queued", "assigned", "queued"]


def test_claim_leaves_tasks_tried_too_often_for_the_scheduler_to_park(tmp_path: Path) -> None:
    q = queue(tmp_path)
    task = q.add("flaky")
    for _ in range(3):
        q.claim("s1")
        q.transition(task.id, "in_progress")
        q.transition(task.id, "requeued", note="checks got worse")
    assert q.get(task.id).attempts == 3
    assert q.claim("s1", max_attempts=3) is None
    assert q.claim("s1", max_attempts=4) is not None


def test_finished_tasks_do_not_change(tmp_path: Path) -> None:
    q = queue(tmp_path)
    task = q.add("x")
    q.cancel(task.id)
    with pytest.raises(UsageError, match="is cancelled; only open tasks can change"):
        q.transition(task.id, "in_progress")


def test_a_parked_task_can_be_retried_or_cancelled_and_interrupted_tries_are_refunded(tmp_path: Path) -> None:
    q = queue(tmp_path)
    task = q.add("flaky")
    q.claim("s1")
    q.transition(task.id, "in_progress")
    q.transition(task.id, "requeued", note="stopped (SIGTERM)", refund=True)
    assert q.get(task.id).attempts == 0
    q.claim("s1")
    q.transition(task.id, "in_progress")
    q.transition(task.id, "requeued", note="checks got worse")
    assert q.get(task.id).attempts == 1
    assert q.park(task.id, "tried too often") is not None
    assert q.get(task.id).status == "parked"
    again = q.transition(task.id, "requeued", note="retried by a person")
    assert (again.status, again.attempts) == ("queued", 0)
    q.park(task.id, "tried too often")
    assert q.cancel(task.id).status == "cancelled"
