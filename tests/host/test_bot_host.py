"""The deployed Telegram bot on its own sandbox host: `factory-bot` online under PM2 as the
factory user, answering the Bot API stand-in running on the host; `bot improve` in cron.

The stand-in (tests/support/telegram_standin.py, stdlib only) is copied to the host and
started before the deploy; the deploy gets a bot token and points `telegram.api_url` at it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import REPO, SandboxHost, missing_reason, run_name, sandbox_up
from test_deploy import Run, as_factory, deploy, pm2_state, wait_for

from factoryctl.core.jobspecs import JOBS
from inventory import DEMO
from provision import layout

pytestmark = pytest.mark.host

TOKEN = "424242:host-test-bot-token-abcdefghij"
CHAT = 111
PORT = 8081
STANDIN = "/root/telegram_standin.py"
DEMO_CONFIG = {**DEMO["factory_config"], "telegram": {"api_url": f"http://127.0.0.1:{PORT}", "notify_poll_s": 1}}


def copy_to(host: SandboxHost, source: Path, target: str) -> None:
    subprocess.run(
        ["ssh", "-F", str(host.ssh_config), "-o", "BatchMode=yes", host.name, f"cat > {shlex.quote(target)}"],
        input=source.read_text(), text=True, check=True, timeout=60,
    )  # fmt: skip


def say(host: SandboxHost, text: str, replies: int = 1) -> str:
    argv = ["python3", STANDIN, "--port", str(PORT), "--token", TOKEN, "--say", text, "--replies", str(replies)]
    done = host.ssh(shlex.join(argv), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def bot_host() -> Iterator[tuple[SandboxHost, Run]]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with sandbox_up(run_name("bot")) as host:
        copy_to(host, REPO / "tests" / "support" / "telegram_standin.py", STANDIN)
        started = host.ssh(f"setsid -f python3 {STANDIN} --port {PORT} --token {TOKEN} "
                           "</dev/null >/root/standin.log 2>&1")  # fmt: skip
        assert started.returncode == 0, started.stderr
        run = deploy(host, "-y", "--data", f"factory_telegram_chat_ids=[{CHAT}]",
                     "--data", f"factory_config={json.dumps(DEMO_CONFIG)}",
                     env={"TELEGRAM_BOT_TOKEN": TOKEN})  # fmt: skip
        assert run.code == 0, run.out[-5000:]
        yield host, run


def test_factory_bot_is_online_under_pm2_as_the_factory_user(bot_host: tuple[SandboxHost, Run]) -> None:
    host, _ = bot_host
    wait_for(lambda: pm2_state(host)[0].get("factory-bot") == "online", 60, "factory-bot online")
    assert "factory-bot" in pm2_state(host)[1]  # saved: it comes back after a reboot
    rows = host.ssh("ps -eo user=,args= | grep '[f]actoryctl bot'").stdout.splitlines()
    assert rows and {row.split()[0] for row in rows} == {"factory"}, rows


def test_the_deployed_bot_answers_the_standin(bot_host: tuple[SandboxHost, Run]) -> None:
    host, _ = bot_host
    status = say(host, "/status")
    assert status.startswith("Factory status") and "sessions: 2" in status
    queued = say(host, "/task Fix <the> login & signup")
    assert queued.startswith("queued task #") and "Fix <the> login & signup" in queued
    listed = as_factory(host, "factoryctl task list").stdout
    assert "Fix <the> login & signup" in listed


def test_bot_improve_is_in_the_crontab(bot_host: tuple[SandboxHost, Run]) -> None:
    host, _ = bot_host
    cron = host.ssh(f"cat {layout.CRON_FILE}").stdout
    (job,) = [j for j in JOBS if j.name == "bot-improve"]
    assert f"{job.schedule} factory umask 027; flock -n {layout.LOCKS_DIR}/cron-bot-improve.lock" in cron
    assert "bot improve" in cron
    assert as_factory(host, "factoryctl bot improve --json").returncode == 0


def test_the_token_stays_in_the_secrets_file(bot_host: tuple[SandboxHost, Run]) -> None:
    host, run = bot_host
    assert TOKEN not in run.out
    found = host.ssh(f"grep -rl {TOKEN} /home /opt /etc 2>/dev/null || true").stdout.split()
    assert found == [str(layout.SECRETS_FILE)], found
