"""The team's memory on a deployed host: cron runs standup and doctor, both write their files,
and the deploy seeds the starting skills without overwriting what is there."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator

import pytest
from sandbox_helpers import REPO, SandboxHost
from test_deploy import as_factory, deploy, wait_for

from factoryctl.core.jobspecs import JOBS
from provision import layout

pytestmark = pytest.mark.host
SEEDS = sorted(p.name for p in (REPO / "skills").glob("*.md"))


@pytest.fixture(scope="module")
def host(sandbox_host: SandboxHost) -> Iterator[SandboxHost]:
    run = deploy(sandbox_host, "-y")
    assert run.code == 0, run.out[-5000:]
    yield sandbox_host


def cron_command(host: SandboxHost, name: str) -> str:
    """The command cron runs for job `name` (the line after the schedule and the user)."""
    job = next(j for j in JOBS if j.name == name)
    cron = host.ssh(f"cat {layout.CRON_FILE}").stdout
    [line] = [line for line in cron.splitlines() if line.startswith(f"{job.schedule} factory umask 027; flock -n ")]
    assert f"cron-{name}.lock" in line
    return line.removeprefix(f"{job.schedule} factory ")


def test_cron_has_standup_and_doctor_and_both_run_and_write_their_files(host: SandboxHost) -> None:
    commands = {name: cron_command(host, name) for name in ("standup", "doctor")}

    def cycles() -> int:
        out = as_factory(host, "factoryctl log tail --json -n 20 --type ralph_cycle").stdout
        return sum(1 for line in out.splitlines() if line.strip())

    wait_for(lambda: cycles() >= 1, 120, "a first work cycle")
    for name, command in commands.items():  # exactly as cron would, as the factory user, through /bin/sh
        done = host.ssh(f"runuser -u factory -- /bin/sh -c {shlex.quote(command)}", timeout=300)
        log = as_factory(host, f"tail -n 40 {layout.LOGS_DIR}/{name}.log").stdout
        assert done.returncode == 0, (name, log)
    home = layout.FACTORY_HOME
    for folder in ("standups", "doctor"):
        listed = as_factory(host, f"ls {home}/{folder}").stdout.split()
        assert any(name.endswith(".md") for name in listed), (folder, listed)
    events = as_factory(host, "factoryctl log tail --json -n 200 --type team_standup --type doctor_analysis").stdout
    kinds = [json.loads(line)["type"] for line in events.splitlines() if line.strip()]
    assert "team_standup" in kinds and "doctor_analysis" in kinds
    standup = [json.loads(line) for line in events.splitlines() if '"team_standup"' in line][-1]["data"]
    assert not standup["skipped"] and standup["calls"] >= 4, standup


def test_the_starting_skills_are_seeded_and_never_overwritten(host: SandboxHost) -> None:
    skills = layout.SKILLS_DIR
    assert set(SEEDS) <= set(as_factory(host, f"ls {skills}").stdout.split())
    edited = f"{skills}/{SEEDS[0]}"
    assert as_factory(host, f"echo 'a person edited this' >> {edited}").returncode == 0
    assert deploy(host, "-y").code == 0
    assert "a person edited this" in as_factory(host, f"cat {edited}").stdout
    assert host.ssh(f"stat -c %U {edited}").stdout.strip() == "factory"
