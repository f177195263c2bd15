"""The deploy on a sandbox host installs a repository's detected toolchain, and a first cycle runs on it.

One fresh host per sample (tests/samples/uv-app with uv, tests/samples/ts-pnpm pinning
`"packageManager": "pnpm@10.28.0"`), its repository a bare clone on the host
(`file:///srv/samples/NAME.git`), the scripted demo agent, and no `factory_checks`: the
deploy's detection (factoryctl.rules.detect) picks setup and checks. The first deploy
clones (its facts are read before the clone exists); the second reads the clone, writes
the detected checks into factory.toml and installs their tools. Then `factoryctl cycle s1`
runs as the jobs run it (factory-run, the factory user): setup and the checks on main, in
the sandbox, with the registries reachable for setup only.

The sandbox image trusts the machine's extra CA certificates for Node (NODE_EXTRA_CA_CERTS),
but uv does not read the system store: without SSL_CERT_FILE its setup fails behind a proxy
with its own certificate authority ("invalid peer certificate: UnknownIssuer"). The cycle
gets it where the factory's jobs start, as the README says. About 2 minutes for both
samples on a warm image (each host: up, two deploys, one cycle, down ~1 min).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import REPO, SandboxHost, missing_reason, run_name, sandbox_up
from test_deploy import Run, as_factory, deploy

from provision import layout

pytestmark = pytest.mark.host

SAMPLES = REPO / "tests" / "samples"
PINNED_PNPM = "10.28.0"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SKIP = shutil.ignore_patterns("node_modules", ".venv", "__pycache__", "*.pyc", "dist", ".pytest_cache")


@dataclass(frozen=True)
class Sample:
    name: str
    setup: list[str]
    checks: list[str]  # the detected checks' names
    tool: str  # a command line printing the installed tool's version
    tool_version: str  # what it must print
    tests: str  # the check whose baseline counts tests


SAMPLE_CASES = {
    "uv-app": Sample("uv-app", ["uv", "sync", "--frozen"], ["pytest"], "uv --version", "uv ", "pytest"),
    "ts-pnpm": Sample(
        "ts-pnpm",
        ["npx", "--yes", f"pnpm@{PINNED_PNPM}", "install", "--frozen-lockfile"],
        ["tsc", "vitest"],
        "pnpm --version",
        PINNED_PNPM,
        "vitest",
    ),
}


@dataclass(frozen=True)
class Deployed:
    sample: Sample
    host: SandboxHost
    first: Run
    second: Run
    cycle: dict[str, Any]
    cycle_seconds: float


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def bare_repository(sample: str, work: Path) -> Path:
    """The sample as a bare repository with one commit on main (ts-pnpm pinned to its pnpm)."""
    src = work / sample
    shutil.copytree(SAMPLES / sample, src, ignore=SKIP)
    if sample == "ts-pnpm":
        package = json.loads((src / "package.json").read_text())
        package["packageManager"] = f"pnpm@{PINNED_PNPM}"
        (src / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        (src / ".gitignore").write_text("node_modules/\n")
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "the sample")
    bare = work / f"{sample}.git"
    git(work, "clone", "-q", "--bare", str(src), str(bare))
    return bare


def put_repository(host: SandboxHost, bare: Path) -> str:
    """Copy the bare repository to /srv/samples, owned by the factory user (the gate pushes to it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(bare, arcname=bare.name)
    # The factory user first, as the deploy makes it (a system user, this home and shell): a
    # repository owned by another user is refused by git ("dubious ownership").
    user = f"id -u {layout.USER} >/dev/null 2>&1 || useradd --system --create-home --home-dir {layout.HOME} " \
           f"--shell /bin/bash {layout.USER}"  # fmt: skip
    unpack = f"{user} && mkdir -p /srv/samples && tar -x -C /srv/samples && chown -R {layout.USER}: /srv/samples"
    done = subprocess.run(
        ["ssh", "-F", str(host.ssh_config), "-o", "BatchMode=yes", host.name, unpack],
        input=buffer.getvalue(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return f"file:///srv/samples/{bare.name}"


@pytest.fixture(scope="module", params=sorted(SAMPLE_CASES))
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    sample = SAMPLE_CASES[request.param]
    bare = bare_repository(sample.name, tmp_path_factory.mktemp(sample.name))
    started = time.monotonic()
    with sandbox_up(run_name("tc")) as host:
        url = put_repository(host, bare)
        data = [
            "--data", f"factory_repo_url={url}",
            "--data", "factory_checks=[]",
            "--data", "factory_sessions=1",
            "--data", "factory_jobs=[]",  # no loop: the one cycle below is the first
        ]  # fmt: skip
        first = deploy(host, "-y", *data)
        assert first.code == 0, first.out[-5000:]
        second = deploy(host, "-y", *data)
        assert second.code == 0, second.out[-5000:]
        cycle_started = time.monotonic()
        done = as_factory(host, f"SSL_CERT_FILE={CA_BUNDLE} {layout.RUN} factoryctl cycle s1 --json", timeout=900)
        cycle_seconds = time.monotonic() - cycle_started
        assert done.returncode in (0, 1), done.stderr[-3000:]
        start = done.stdout.find("{")  # the report, indented: after anything setup printed
        assert start >= 0, done.stdout[-3000:] + done.stderr[-3000:]
        report = json.loads(done.stdout[start:])
        yield Deployed(sample, host, first, second, report, cycle_seconds)
    print(
        f"\n{sample.name}: first deploy {first.seconds:.0f}s, second {second.seconds:.0f}s, "
        f"cycle {cycle_seconds:.0f}s, host up to down {time.monotonic() - started:.0f}s; "
        f"{report['verdict']}: {report['reason']}; baseline {report['before']}; {report['durations']}"
    )


def test_the_first_deploy_says_the_checks_come_with_the_next(deployed: Deployed) -> None:
    assert "no factory_checks and no clone yet" in deployed.first.out


def test_the_second_deploy_detects_the_checks_and_writes_them(deployed: Deployed) -> None:
    names = ", ".join(deployed.sample.checks)
    assert f"no factory_checks: detected in the repository: {names}" in deployed.second.out
    config = tomllib.loads(deployed.host.ssh(f"cat {layout.CONFIG_FILE}").stdout)
    assert config["repo"]["setup"] == deployed.sample.setup
    assert [c["name"] for c in config["checks"]] == deployed.sample.checks


def test_the_detected_toolchain_is_installed_for_the_factory_user(deployed: Deployed) -> None:
    done = as_factory(deployed.host, f"{layout.RUN} {deployed.sample.tool}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(deployed.sample.tool_version), done.stdout


def test_a_first_cycle_runs_setup_and_the_checks_on_main(deployed: Deployed) -> None:
    cycle = deployed.cycle
    assert cycle["verdict"] in ("pushed", "discarded"), (cycle["verdict"], cycle["reason"], cycle["notes"])
    before = cycle["before"]
    assert sorted(before) == sorted(deployed.sample.checks), before
    assert not any(counts["crashed"] for counts in before.values()), before
    tests = before[deployed.sample.tests]
    assert tests["total"] > 0 and tests["failed"] == 0 and tests["passed"] == tests["total"], tests
    assert cycle["durations"]["setup_s"] > 0 and cycle["baseline_computed"], cycle["durations"]


def test_setup_ran_the_installed_pinned_pnpm_and_downloaded_none(deployed: Deployed) -> None:
    """npx finds the deployed pnpm 10.28.0: main's setup (the shared caches) fetched no pnpm of its own."""
    if deployed.sample.name != "ts-pnpm":
        pytest.skip("the pinned pnpm is the TypeScript sample's")
    shared = layout.PATHS.caches_dir / "shared"
    store = deployed.host.ssh(f"find {shared}/pnpm-store -type f | head -n 1")
    assert store.stdout.strip(), f"main's setup did not use the shared pnpm store: {store.stderr}"
    fetched = deployed.host.ssh(f"find {shared}/npm -path '*/_npx/*' -path '*/pnpm/*' -name package.json")
    assert fetched.returncode == 0 and fetched.stdout.strip() == "", fetched.stdout
