"""The alert quiet period is `[alerts] quiet_s`, and every job's alerts honour it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factoryctl.adapters.pm2 import Pm2
from factoryctl.adapters.telegram import Reply
from factoryctl.core.config import Settings
from factoryctl.core.configfile import settings_as_dict, settings_from_mapping
from factoryctl.core.errors import ConfigError
from factoryctl.core.paths import Paths
from factoryctl.core.records import Alert
from factoryctl.core.tomltext import to_toml
from factoryctl.jobs.bot.notifier import Notifier
from factoryctl.jobs.context import Context
from factoryctl.jobs.doctor import Doctor
from factoryctl.jobs.review.record import Recorder
from factoryctl.jobs.review.tree import ReviewTree
from factoryctl.jobs.scheduler import Scheduler
from tests.helpers import FakeClock

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def context(tmp_path: Path, quiet_s: int, clock: FakeClock | None = None) -> Context:
    settings = settings_from_mapping({"alerts": {"quiet_s": quiet_s}}, source="test")
    return Context(Paths(tmp_path), settings, clock=clock or FakeClock(NOW))


def test_the_quiet_period_defaults_to_an_hour_and_is_shown_with_the_defaults() -> None:
    assert Settings().alerts.quiet_s == 3600
    assert "[alerts]\nquiet_s = 3600\n" in to_toml(settings_as_dict(Settings()))


@pytest.mark.parametrize(("value", "expected"), [(9, "greater than or equal to 10"), (8 * 86400, "less than")])
def test_a_quiet_period_under_10_s_or_over_a_week_is_refused(value: int, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"alerts\.quiet_s: must be {expected}"):
        settings_from_mapping({"alerts": {"quiet_s": value}}, source="test")


def test_a_jobs_alert_key_comes_back_once_the_configured_quiet_period_has_passed(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    alerts = context(tmp_path, quiet_s=20, clock=clock).alerts()
    assert alerts.send(Alert("budget:closed", "budget reached"))
    clock.now += timedelta(seconds=19)
    assert not alerts.send(Alert("budget:closed", "budget reached"))
    clock.now += timedelta(seconds=2)
    assert alerts.send(Alert("budget:closed", "budget reached"))


def test_the_scheduler_the_doctor_and_the_merge_gate_alert_with_the_configured_quiet_period(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    ctx = context(tmp_path, quiet_s=20, clock=clock)
    made = {
        "scheduler": Scheduler(ctx, pm2=Pm2(environ={})).alerts,
        "doctor": Doctor(ctx).alerts,
        "review": Recorder(ctx, ReviewTree(ctx), say=lambda text: None).alerts,
    }
    sent = {}
    for job, alerts in made.items():  # each job's key: raised, held back 19 s later, raised again 21 s later
        clock.now = NOW
        first = alerts.send(Alert(f"{job}:k", "x"))
        clock.now = NOW + timedelta(seconds=19)
        held = alerts.send(Alert(f"{job}:k", "x"))
        clock.now = NOW + timedelta(seconds=21)
        sent[job] = (first, held, alerts.send(Alert(f"{job}:k", "x")))
    assert sent == dict.fromkeys(made, (True, False, True))


def test_the_bots_notices_repeat_a_key_after_the_quiet_period_too(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    ctx = context(tmp_path, quiet_s=20, clock=clock)
    delivered: list[str] = []

    async def send(chat: int, reply: Reply) -> None:
        delivered.append(f"{clock.now - NOW}")

    notifier = Notifier(ctx, send=send, chats=[1])
    notifier.cursor()  # it starts at the log's end
    for seconds in (0, 19, 21):  # the same alert key logged three times (as another process would)
        clock.now = NOW + timedelta(seconds=seconds)
        ctx.log.append("alert", data={"key": "budget:closed", "message": "budget reached"})
        asyncio.run(notifier.poll())
    assert delivered == ["0:00:00", "0:00:21"]
