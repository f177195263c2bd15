"""A short compressed day (bench/factory_day.py) on its own sandbox host: every job at once holds.

PM2 (scheduler, bot, serve), cron (review, standup, doctor, bot improve on minute schedules),
eight loops of the scripted agent playing the day's mix (hostile, hanging and crash-looping
agents included), a task feed through the HTTP trigger and the bot, and a person steering
from the bot stand-in, for a few minutes. Then the day is stopped and what must hold is
checked. The last test breaks the host on purpose and shows the checks notice.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import REPO, SandboxHost, missing_reason, run_name, sandbox_up

sys.path.insert(0, str(REPO / "bench"))

from factory_day import MARK, Day, Host, Person, Plan, Sampler, collect, guarded_files, host_now, run_day, target_mb

from provision import layout

pytestmark = pytest.mark.host

SHORT = Plan(
    minutes=4,
    cycle_s=15,
    schedules=(("review", "*/1 * * * *"), ("standup", "*/2 * * * *"), ("doctor", "*/2 * * * *"),
               ("bot-improve", "*/3 * * * *")),
)  # fmt: skip


@pytest.fixture(scope="module")
def day_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxHost, Day]]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with sandbox_up(run_name("day")) as host:
        day = run_day(host, SHORT, tmp_path_factory.mktemp("day"))
        print("\n" + "\n".join(f"{k}: {v}" for k, v in day.figures.items()))
        yield host, day


@pytest.fixture(scope="module")
def day(day_host: tuple[SandboxHost, Day]) -> Day:
    return day_host[1]


def test_what_must_hold_at_the_end_of_the_day_holds(day: Day) -> None:
    """Main green, nothing hostile on main or in the state, no stray process, every landing tested,
    no traceback, standup and doctor files citing real branches, one set of figures everywhere."""
    assert day.problems == []


def test_the_day_did_real_work_of_every_kind(day: Day) -> None:
    f = day.figures
    assert f["landed"] >= 2 and f["commits_on_main"] >= 1
    assert {"pushed", "discarded", "failed"} <= set(f["verdicts"])
    assert f["rejected_by_reason"].get("conflict", 0) >= 1  # the conflicting pair
    assert f["failed_by_outcome"].get("timeout", 0) >= 1  # the hanging agent was cut off
    assert f["person"].get("http_task", 0) >= 1 and f["person"].get("bot_task", 0) >= 1
    assert f["person"].get("reject", 0) >= 1 and f["rejected_by_reason"].get("person", 0) >= 1
    assert f["person"].get("refused_http", 0) >= 1 and "stranger_got_in" not in f["person"]
    assert {"cycle", "review", "standup", "doctor"} <= set(f["model_calls"])
    assert f["standups_files"] >= 1 and f["doctor_files"] >= 1


def test_no_hostile_change_landed_and_the_crash_looping_agent_was_alerted_once(day: Day) -> None:
    f = day.figures
    assert f["hostile_landed"] == 0
    assert f["crash_loop_alerts"] == 1
    assert f["alerts_per_simulated_hour"] <= 6
    assert f["tracebacks"] == [] and all(n == 0 for n in f["pm2_restarts"].values())


def test_long_lived_processes_stay_small_and_checks_cost_half_the_seed_design(day: Day) -> None:
    f = day.figures
    assert {"scheduler", "bot", "serve", "s1"} <= set(f["rss"])
    for role, v in f["rss"].items():
        assert v["peak_mb"] <= target_mb(role), (role, v)
    assert f["check_runs_per_landed"] <= f["seed_check_runs_per_landed"] / 2


def test_the_checks_notice_a_broken_day(day_host: tuple[SandboxHost, Day], tmp_path: Path) -> None:
    """Attack the end-of-day checks: a commit pushed past the gate, state the agent wrote, a stray
    daemon and a traceback in a job's log must each be reported."""
    sandbox, _ = day_host
    host = Host(sandbox)
    guarded, first = guarded_files(host), host_now(host)
    origin = layout.SAMPLE_ORIGIN
    sneak = (
        f"cd /tmp && rm -rf sneak && git clone -q -b main {origin} sneak && cd sneak && echo '# {MARK}' > sneak.py "
        "&& git add sneak.py && git -c user.name=x -c user.email=x@x commit -qm sneak "
        f"&& git -C {origin} fetch -q /tmp/sneak HEAD:refs/heads/main-sneak "
        f"&& git -C {origin} update-ref refs/heads/main refs/heads/main-sneak"
    )
    assert host.as_factory(sneak).returncode == 0
    host.sh(f"echo '{MARK} pwned' >> {layout.STATE_DIR}/tasks.json")
    host.sh(f"echo 'DAY_MARK=1' >> {layout.SECRETS_FILE}")  # still a file factory-run can source
    host.sh(f"echo 'Traceback (most recent call last):' >> {layout.LOGS_DIR}/review.log")
    host.as_factory("setsid -f sleep 3600 </dev/null >/dev/null 2>&1")
    broken = collect(host, SHORT, (first, host_now(host)), Sampler(host), Person(host, SHORT.feed_every_s), guarded)
    said = "\n".join(broken.problems)
    for expected in ("hostile content on main", "no landing", "the hostile agent wrote into",
                     "secrets.env", "tracebacks in", "processes outlived their jobs"):  # fmt: skip
        assert expected in said, said
