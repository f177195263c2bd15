"""A compressed day across several hosts: one gate and two workers against one host with the same sessions per host.

    .venv/bin/python bench/factory_day.py --hosts 3 [--minutes 8] [--sessions 3] [--json fleet.json]

Runs the same scripted day twice, one after the other, on sandbox hosts of this machine:

1. **one host** (role "all", the state in files) with `--sessions` sessions;
2. **a fleet**: three sandbox hosts on one private network, deployed in one pyinfra run:
   a gate (PostgreSQL, the merge gate, scheduler, standup, doctor, bot) and two workers with
   `--sessions` sessions each, their state in the gate's PostgreSQL.

Every session plays the same mix (good changes in files of their own, regressions, empty
cycles), the review runs every two minutes, cycles every 20 s. At the end of each run the
factory is paused, running cycles are let to end and one last review lands what was pushed.
It prints landed changes per simulated hour for both (target: the fleet at least 1.8x the one
host), and, for the fleet, the latency of appending an event to the gate's PostgreSQL, from
the gate (its unix socket) and from a worker (through its relay), p50 and p95, measured while
the fleet works (a job's first event, which connects, timed apart), the events a second the
fleet wrote, and the most connections the gate's PostgreSQL held at once (pg_stat_activity every
2 s, by host and purpose). Run as root; every host is torn down at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "host")]

from day_scenarios import empty, good, regression  # noqa: E402
from factory_day import DESIGN_CYCLE_S, PYINFRA, Host, Plan  # noqa: E402
from sandbox_helpers import sandbox_up, sandboxes_up  # noqa: E402

from provision import layout  # noqa: E402

REVIEW_S = 120
FLEET_NET = "fleetday"
YEARLY = "0 0 1 1 *"  # the standup and the doctor stay out of the way
DB_PASSWORD = "fleet-day-db-password-0123456789"


@dataclass(frozen=True)
class FleetPlan:
    minutes: float = 8.0
    sessions: int = 3  # per host (the one host, and each worker)
    cycle_s: int = 20
    tick_s: int = 10

    @property
    def compression(self) -> float:
        """What one compressed cycle interval stands for: the design's 15 minutes."""
        return DESIGN_CYCLE_S / self.cycle_s

    def config(self) -> dict[str, Any]:
        return {
            "cycle": {"interval_s": self.cycle_s, "backoff_max_s": 4 * self.cycle_s},
            "agent": {"timeout_s": 60},
            "scheduler": {"tick_s": self.tick_s, "stall_after_s": 10 * self.cycle_s},
        }

    def host_data(self, scenarios_dir: str) -> dict[str, Any]:
        return {
            "factory_sessions": self.sessions,
            "factory_budget_daily_usd": 500.0,
            "factory_checks": Plan().checks(),  # the compressed day's unittest check
            "factory_schedules": {"review": f"*/{REVIEW_S // 60} * * * *", "standup": YEARLY, "doctor": YEARLY},
            "factory_scenarios": scenarios_dir,
            "factory_config": self.config(),
        }


def good_change(session: str) -> dict[str, Any]:
    """A tested helper in files of its own (named after the session: `{n}` counts per host)."""
    name = f"f_{session.replace('-', '_')}_{{n}}"
    call = good(session)
    code = f'"""A helper."""\n\n\ndef {name}(values: list[float]) -> float:\n    return max(values) - min(values)\n'
    test = (
        f"import unittest\n\nfrom calc.{name} import {name}\n\n\nclass T(unittest.TestCase):\n"
        f"    def test_spread(self) -> None:\n        self.assertEqual({name}([1, 4, 2]), 3)\n"
    )
    call["actions"] = [
        {"write": f"calc/{name}.py", "content": code},
        {"write": f"tests/test_{name}.py", "content": test},
        {"commit": f"Add a spread helper from {session} #{{n}}"},
    ]
    return call


def scenario(sessions: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each session: good, regression, good, empty, over and over; the reviewer approves."""
    calls = [make(s) for s in sessions for make in (good_change, regression, good_change, empty)]
    approve = {"match": "reviewing one branch before it may reach main", "cost_usd": 0.01, "num_turns": 1,
               "result": '{"verdict": "approve", "reasons": ["a tested helper"], "risk": "low"}'}  # fmt: skip
    return {"calls": calls, "repeat": True}, {"calls": [approve], "repeat": True}


def write_scenarios(folder: Path, sessions: Sequence[str]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    agent, reviewer = scenario(sessions)
    (folder / "agent.json").write_text(json.dumps(agent, indent=1))
    (folder / "reviewer.json").write_text(json.dumps(reviewer, indent=1))
    return str(folder)


def pyinfra(env: dict[str, str], data: dict[str, Any], inventory: str = "inventory.py") -> float:
    """Deploy as a user would (only the given secrets); the seconds it took."""
    args = [arg for key, value in data.items() for arg in ("--data", f"{key}={json.dumps(value)}")]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FACTORY_", "ANTHROPIC_", "TELEGRAM_"))}
    argv = [PYINFRA, inventory, "deploy.py", "-y", *args]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=2400)
    if done.returncode != 0:
        raise SystemExit(f"the deploy failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return time.monotonic() - started


def landed_between(gate: Host, since: str) -> dict[str, Any]:
    done = gate.factoryctl("report", "--json", "--since", since)
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def wind_down(gate: Host, workers: Sequence[Host], say: Callable[[str], None]) -> None:
    """Pause the factory (the flag is shared state: it reaches every worker), let cycles end, review once."""
    for host in (gate, *workers):
        host.sh(f"mv -f {layout.CRON_FILE} /root/factory.cron.day 2>/dev/null; true")
    gate.factoryctl("pause", "--reason", "the end of the fleet day")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        busy = [h for h in workers if "factoryctl cycle" in h.sh(f"ps -u {layout.USER} -o args=").stdout]
        if not busy:
            break
        time.sleep(3)
    review = gate.factoryctl("review", timeout=900)
    say(f"  last review: exit {review.returncode}")


def host_now(host: Host) -> str:
    return host.sh("date -u +%Y-%m-%dT%H:%M:%S.000Z").stdout.strip()


def run_for(minutes: float, gate: Host, say: Callable[[str], None], probe: Callable[[], None] | None = None) -> None:
    started = time.monotonic()
    while (left := minutes * 60 - (time.monotonic() - started)) > 0:
        if probe is not None:
            probe()
        time.sleep(min(30.0, left))
        say(f"  {(time.monotonic() - started) / 60:4.1f} min")


PROBE = r"""
import json, sys, time
from factoryctl.jobs.context import Context
started = time.perf_counter()
ctx = Context.load()
ctx.log.append("probe", data={"n": 0})  # the first append opens the connection: timed apart
connect = (time.perf_counter() - started) * 1000
took = []
for i in range(1, int(sys.argv[1]) + 1):
    t = time.perf_counter()
    ctx.log.append("probe", data={"n": i})
    took.append((time.perf_counter() - t) * 1000)
    time.sleep(0.05)
print(json.dumps({"connect": connect, "append": took}))
"""


def append_latency(host: Host, count: int = 40) -> tuple[float, list[float]]:
    """(ms to load the context and append the first event, ms per later event): the shared log
    from `host`, as the factory's user writes it (a job connects once, then appends)."""
    host.put(PROBE, "/tmp/fleet-probe.py")
    argv = ["runuser", "-u", layout.USER, "--", layout.RUN, f"{layout.VENV}/bin/python", "/tmp/fleet-probe.py",
            str(count)]  # fmt: skip
    out = host.sh(shlex.join(argv), timeout=120)
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
        return float(data["connect"]), [float(x) for x in data["append"]]
    except (ValueError, IndexError, KeyError, TypeError):
        raise SystemExit(f"the latency probe failed on {host.sandbox.name}: {out.stderr[-600:]}") from None


# Every 2 s on the gate: the factory database's connections, by where they come from and what
# holds them (application_name: `factoryctl state`, `factoryctl cycle-w1-s1 lock`, ...).
SAMPLER = (
    "while :; do runuser -u postgres -- psql -XAtF'|' -d {db} -c "
    "\"SELECT now()::time(0), coalesce(host(client_addr), 'socket'), application_name, count(*) "
    "FROM pg_stat_activity WHERE datname = '{db}' GROUP BY 1, 2, 3\" >> /tmp/fleet-conns.log 2>&1; sleep 2; done"
)


def start_sampler(gate: Host) -> None:
    gate.sh(f"rm -f /tmp/fleet-conns.log; nohup sh -c {shlex.quote(SAMPLER.format(db=layout.DB_NAME))} "
            ">/dev/null 2>&1 & echo $! > /tmp/fleet-conns.pid")  # fmt: skip


def connections(gate: Host, names: dict[str, str]) -> dict[str, Any]:
    """The most connections the factory's database held at once, and who held them then."""
    gate.sh("kill $(cat /tmp/fleet-conns.pid) 2>/dev/null; true")
    samples: dict[str, list[tuple[str, str, int]]] = {}
    for line in gate.read("/tmp/fleet-conns.log").splitlines():
        parts = line.split("|")
        if len(parts) == 4 and parts[3].isdigit():
            samples.setdefault(parts[0], []).append((names.get(parts[1], parts[1]), parts[2], int(parts[3])))
    if not samples:
        return {"samples": 0}
    at, peak = max(samples.items(), key=lambda item: sum(n for _, _, n in item[1]))
    by_host: dict[str, int] = {}
    by_purpose: dict[str, int] = {}
    for where, app, n in peak:
        by_host[where] = by_host.get(where, 0) + n
        purpose = "lock" if app.endswith(" lock") else app.removeprefix("factoryctl ") or "other"
        by_purpose[purpose] = by_purpose.get(purpose, 0) + n
    return {"samples": len(samples), "peak": sum(by_host.values()), "at": at, "by_host": by_host,
            "by_purpose": by_purpose}  # fmt: skip


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else float("nan")


def event_rate(events: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """How hard the fleet wrote its shared log: events, their mean rate, the busiest 10 s."""
    per_window: dict[str, int] = {}
    for event in events:
        window = str(event.get("ts", ""))[:18]  # 2026-12-05T18:40:1 : ten seconds
        per_window[window] = per_window.get(window, 0) + 1
    return {
        "count": len(events),
        "per_s": round(len(events) / seconds, 2) if seconds else None,
        "peak_per_s_over_10s": round(max(per_window.values(), default=0) / 10, 2),
    }


def one_host_day(plan: FleetPlan, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    names = [f"s{i}" for i in range(1, plan.sessions + 1)]
    with sandbox_up("fleetday-one") as sandbox:
        host = Host(sandbox)
        say(f"one host: deploying {plan.sessions} sessions ...")
        scenarios = write_scenarios(workdir / "one", names)
        took = pyinfra({"FACTORY_SANDBOX_NAME": sandbox.name}, plan.host_data(scenarios))
        say(f"  deployed in {took:.0f} s; the day runs {plan.minutes:g} min")
        first = host_now(host)
        run_for(plan.minutes, host, say)
        wind_down(host, [host], say)
        figures = landed_between(host, first)
    return summarise(figures, plan, hosts=1)


def summarise(figures: dict[str, Any], plan: FleetPlan, hosts: int) -> dict[str, Any]:
    simulated_h = plan.minutes * 60 * plan.compression / 3600
    landed = int(figures.get("landed", 0))
    return {
        "hosts": hosts,
        "cycles": figures.get("cycles"),
        "landed": landed,
        "simulated_hours": round(simulated_h, 2),
        "landed_per_simulated_hour": round(landed / simulated_h, 2) if simulated_h else None,
    }


def fleet_day(plan: FleetPlan, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """The gate and two workers, deployed in one pyinfra run from a fleet file; the same day."""
    import inventory

    names = ["fleetday-gate", "fleetday-w1", "fleetday-w2"]
    with sandboxes_up(names, FLEET_NET) as (gate_box, w1_box, w2_box):
        members = [(gate_box.name, "gate", gate_box.private_address or "", 0),
                   (w1_box.name, "worker", w1_box.private_address or "", plan.sessions),
                   (w2_box.name, "worker", w2_box.private_address or "", plan.sessions)]  # fmt: skip
        folder = workdir / "fleet"
        folder.mkdir(parents=True, exist_ok=True)
        fleet_file, key = folder / "fleet.toml", folder / "deploy_key"
        fleet_file.write_text(inventory.sandbox_fleet(members))
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
        sessions = [f"{w}-s{i}" for w in ("w1", "w2") for i in range(1, plan.sessions + 1)]
        data = plan.host_data(write_scenarios(folder, sessions))
        data.pop("factory_sessions")  # the fleet file gives each worker its sessions
        say(f"fleet: deploying a gate and two workers of {plan.sessions} sessions in one pyinfra run ...")
        env = {"FACTORY_FLEET": str(fleet_file), "FACTORY_DB_PASSWORD": DB_PASSWORD, "FACTORY_DEPLOY_KEY": str(key)}
        took = pyinfra(env, data)
        gate, workers = Host(gate_box), [Host(w1_box), Host(w2_box)]
        say(f"  deployed in {took:.0f} s; the day runs {plan.minutes:g} min")
        latency: dict[str, list[float]] = {"gate": [], "worker": []}
        connect: dict[str, list[float]] = {"gate": [], "worker": []}

        def probe() -> None:  # the shared log's append latency while the fleet works
            for where, host in (("gate", gate), ("worker", workers[0])):
                first, appends = append_latency(host, 20)
                connect[where].append(first)
                latency[where] += appends

        first = host_now(gate)
        start_sampler(gate)
        run_for(plan.minutes, gate, say, probe)
        ended = host_now(gate)
        conns = connections(gate, {w1_box.private_address or "": "w1", w2_box.private_address or "": "w2"})
        wind_down(gate, workers, say)
        figures = landed_between(gate, first)
        logged = gate.factoryctl("log", "tail", "-n", "100000", "--since", first, "--json")
        events = [json.loads(line) for line in logged.stdout.splitlines()]
        by_host: dict[str, int] = {}
        for event in events:
            if event.get("type") == "cto_review" and event.get("data", {}).get("verdict") == "approve":
                host = str(event.get("session") or "?").split("-")[0]
                by_host[host] = by_host.get(host, 0) + 1
    out = summarise(figures, plan, hosts=3)
    out["landed_by_host"] = by_host
    out["connections"] = conns
    worked = [e for e in events if e.get("type") != "probe" and str(e.get("ts", "")) < ended]  # not the wind-down
    out["events"] = event_rate(worked, plan.minutes * 60)
    out["append_ms"] = {where: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "n": len(v)} for where, v in latency.items()}
    out["connect_and_first_append_ms"] = {
        where: {"p50": pct(v, 0.5), "max": pct(v, 1.0)} for where, v in connect.items()
    }
    return out


def main_fleet(minutes: float, sessions: int, json_out: Path | None, say: Callable[[str], None] = print) -> int:
    """The one-host day, then the fleet's; the comparison. 0 when the fleet reached 1.8x."""
    plan = FleetPlan(minutes=minutes, sessions=sessions)
    workdir = Path("/tmp/fleet-day")
    one = one_host_day(plan, workdir, say)
    say(f"  one host: {json.dumps(one)}")  # kept in the output whatever happens to the fleet's run
    fleet = fleet_day(plan, workdir, say)
    ratio = (fleet["landed_per_simulated_hour"] or 0) / (one["landed_per_simulated_hour"] or float("inf"))
    result = {"one_host": one, "fleet": fleet, "ratio": round(ratio, 2), "target": 1.8}
    hourly = "per simulated hour"
    print(f"one host, {sessions} sessions: {one['landed']} landed, {one['landed_per_simulated_hour']} {hourly}")
    print(
        f"gate + 2 workers x {sessions}: {fleet['landed']} landed, {fleet['landed_per_simulated_hour']} per simulated "
        f"hour (by host {fleet['landed_by_host']}): {ratio:.2f}x (target >= 1.8)"
    )
    rate = fleet["events"]
    print(
        f"the fleet wrote {rate['count']} events to its shared log: {rate['per_s']} a second on average, "
        f"{rate['peak_per_s_over_10s']} a second in its busiest 10 s (the probe's own left out)"
    )
    conns = fleet["connections"]
    print(
        f"the gate's PostgreSQL held at most {conns.get('peak')} connections at once ({conns.get('samples')} samples, "
        f"every 2 s): by host {conns.get('by_host')}, by purpose {conns.get('by_purpose')}"
    )
    for where, v in fleet["connect_and_first_append_ms"].items():
        print(f"a job's first event from the {where} (load, connect, append): p50 {v['p50']} ms, max {v['max']} ms")
    for where, v in fleet["append_ms"].items():
        print(
            f"append an event to the gate's PostgreSQL from the {where}: p50 {v['p50']} ms, p95 {v['p95']} ms "
            f"({v['n']} events)"
        )
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2))
    return 0 if ratio >= 1.8 else 1
