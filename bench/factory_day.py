"""A day in the factory, compressed: every job at once on the sandbox host, under load and attack.

    .venv/bin/python bench/factory_day.py [--minutes 10] [--json day.json] [--keep]
    .venv/bin/python bench/factory_day.py --hosts 3 [--minutes 8] [--sessions 3]   (bench/fleet_day.py)

Brings up a sandbox host (systemd-nspawn, as the host tests do), deploys the whole factory
onto it with pyinfra with compressed schedules (a cycle every 20 s instead of 15 min, the
scheduler every 10 s, the review every 2 min, the standup every 3, the doctor every 4, bot
improve every 5), 8 sessions of the scripted agent playing bench/day_scenarios.py's mix
(mostly discarded work, some good changes, a conflicting pair, a hostile agent, one that
hangs, one that crash-loops), a task feed through the HTTP trigger and the Telegram bot
(the stand-in on the host), and a person approving and rejecting from the bot. It runs for
`--minutes` of wall time, stops the day (cron off, the factory paused, running jobs let to
end, one last review), then prints the figures and checks what must hold:

- main passes its checks; nothing from the hostile agent reached main or the state;
- no process outlived its job; every landed change is a merge commit the gate tested;
- no job's log (cron and PM2 logs, the loops' tmux panes) holds a traceback;
- the standup and doctor files exist and cite real branches;
- the status page, the bot's /status and `factoryctl report` give the same figures.

Simulated time: the design's 15-minute cycle interval over the day's (`compression`, 45 by
default); alert rates and per-day figures are per simulated hour and day. Run as root
(the sandbox host needs it); the host is torn down at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "host")]

from day_scenarios import CRASHING_SESSION, HOSTILE_SESSION, LEAK_DIR, MARK, scenarios  # noqa: E402
from sandbox_helpers import SandboxHost, missing_reason, sandbox_up  # noqa: E402

from factoryctl.core.clock import parse_ts  # noqa: E402
from factoryctl.core.defaults import MODEL_ENV, SECRET_ENV  # noqa: E402
from factoryctl.core.paths import tmux_socket  # noqa: E402
from factoryctl.rules import metrics  # noqa: E402
from factoryctl.state.eventlog import Event  # noqa: E402
from inventory import DEFAULTS  # noqa: E402
from provision import layout  # noqa: E402
from tests.support.messages_standin import client_env  # noqa: E402
from tests.support.plays import plays_from  # noqa: E402

PYINFRA = str(Path(sys.executable).parent / "pyinfra")
BOT_TOKEN = "4242:factory-day-bot-token-not-a-secret"
HTTP_TOKEN = "factory-day-http-token-0123456789"
CHAT = 111
STANDIN_PORT = 8081
STANDIN = "/root/telegram_standin.py"
MODEL_PORT = 8082  # the Messages API stand-in on the host: the real claude's model
MODEL_STANDIN = "/root/messages_standin.py"
DESIGN_CYCLE_S = 900  # the design's cycle.interval_s: what one compressed cycle interval stands for
SEED = {"cycles_per_day_5_sessions": (40, 60), "merges_per_day": (15, 25)}
CLAUDE_AGENT = DEFAULTS["factory_agent_command"]
CLAUDE_REVIEWER = DEFAULTS["factory_reviewer_command"]
TARGETS = {"scheduler": 60.0, "bot": 80.0, "serve": 100.0, "loop": 60.0}  # RSS, MB


def target_mb(role: str) -> float:
    """The resident-memory target of a long-lived process: s1..sN are the loops."""
    return TARGETS["loop" if re.fullmatch(r"s\d+", role) else role]


LONG_LIVED = re.compile(r"bin/factoryctl (scheduler|bot|serve|loop (s\d+))$")
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Plan:
    """How long and how compressed the day is."""

    minutes: float = 10.0
    sessions: int = 8
    agent: str = "claude"  # the real Claude Code against the stand-in; "scripted": the scripted agent
    cycle_s: int = 20
    tick_s: int = 10
    agent_timeout_s: int = 30
    schedules: tuple[tuple[str, str], ...] = (
        ("review", "*/2 * * * *"),
        ("standup", "*/3 * * * *"),
        ("doctor", "*/4 * * * *"),
        ("bot-improve", "*/5 * * * *"),
    )
    feed_every_s: float = 15.0  # the person's pace: one action each this often

    @property
    def compression(self) -> float:
        return DESIGN_CYCLE_S / self.cycle_s

    def factory_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "cycle": {"interval_s": self.cycle_s, "backoff_max_s": 4 * self.cycle_s},
            "agent": {"timeout_s": self.agent_timeout_s},
            "reviewer": {"timeout_s": 60},
            "scheduler": {"tick_s": self.tick_s, "watchdog_window_s": 120, "stall_after_s": 10 * self.cycle_s},
            # the design's 3 h, but long enough to hold error_loop_after (3) failures at full backoff
            "doctor": {
                "window_s": max(int(3 * 3600 / self.compression), 16 * self.cycle_s),
                "pause_error_looping": True,
            },
            "telegram": {"api_url": f"http://127.0.0.1:{STANDIN_PORT}", "notify_poll_s": 2},
        }
        config["alerts"] = {"quiet_s": max(10, int(3600 / self.compression))}  # compressed like the rest
        return config

    @property
    def review_s(self) -> float:
        """Seconds between two reviews (from the review's */N minute schedule)."""
        minutes = dict(self.schedules)["review"].split()[0]
        return 60.0 * (int(minutes[2:]) if minutes.startswith("*/") else 60)

    def checks(self) -> list[dict[str, Any]]:
        return [{
            "name": "unittest",
            "command": ["python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"],
            "parser": "regex",
            "pattern": r"Ran (?P<total>\d+) tests?|failures=(?P<failed>\d+)|errors=(?P<errors>\d+)",
            "timeout_s": 60,
        }]  # fmt: skip

    def host_data(self, scenarios_dir: Path) -> list[str]:
        config = self.factory_config()
        config["sandbox"] = {"writable": [layout.DEMO_DIR, LEAK_DIR]}  # the scenario's state, the probe's leaks
        data: dict[str, Any] = {}
        if self.agent == "claude":
            data["factory_agent_command"] = CLAUDE_AGENT
            data["factory_reviewer_command"] = CLAUDE_REVIEWER
        data |= {
            "factory_sessions": self.sessions,
            "factory_budget_daily_usd": 500.0,
            "factory_checks": self.checks(),
            "factory_telegram_chat_ids": [CHAT],
            "factory_schedules": dict(self.schedules),
            "factory_scenarios": str(scenarios_dir),
            "factory_config": config,
        }
        return [arg for key, value in data.items() for arg in ("--data", f"{key}={json.dumps(value)}")]


# -- the host --------------------------------------------------------------------------


class Host:
    """The sandbox host, reached over ssh; commands as root or as the factory user."""

    def __init__(self, sandbox: SandboxHost) -> None:
        self.sandbox = sandbox

    def sh(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.sandbox.ssh(command, timeout=timeout)

    def factoryctl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = ["runuser", "-u", layout.USER, "--", layout.RUN, "factoryctl", *args]
        return self.sh(shlex.join(argv), timeout=timeout)

    def as_factory(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.sh(f"runuser -u {layout.USER} -- sh -c {shlex.quote(command)}", timeout=timeout)

    def read(self, path: str) -> str:
        return self.sh(f"cat {shlex.quote(path)} 2>/dev/null", timeout=300).stdout

    def put(self, text: str, target: str) -> None:
        subprocess.run(
            [
                "ssh",
                "-F",
                str(self.sandbox.ssh_config),
                "-o",
                "BatchMode=yes",
                self.sandbox.name,
                f"cat > {shlex.quote(target)}",
            ],
            input=text,
            text=True,
            check=True,
            timeout=60,
        )

    def say(self, text: str, replies: int = 1) -> str:
        """A message from the person's chat to the bot (through the stand-in); the bot's replies."""
        argv = [
            "python3",
            STANDIN,
            "--port",
            str(STANDIN_PORT),
            "--token",
            BOT_TOKEN,
            "--say",
            text,
            "--replies",
            str(replies),
        ]
        return self.sh(shlex.join(argv), timeout=120).stdout

    def http(self, method: str, path: str, body: dict[str, Any] | None = None, token: str = HTTP_TOKEN) -> str:
        """curl on the host against `factoryctl serve` (loopback only); 'CODE body'."""
        argv = [
            "curl",
            "-s",
            "-o",
            "/dev/stdout",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "-H",
            f"Authorization: Bearer {token}",
        ]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        out = self.sh(shlex.join([*argv, f"http://127.0.0.1:8787{path}"]), timeout=60).stdout
        text, _, code = out.rpartition("\n")
        return f"{code} {text}"


def deploy(host: Host, plan: Plan, scenarios_dir: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in (*SECRET_ENV, *MODEL_ENV) and not k.startswith("FACTORY_")}
    env |= {
        "FACTORY_SANDBOX_NAME": host.sandbox.name,
        "FACTORY_HTTP_TOKEN": HTTP_TOKEN,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
    }
    if plan.agent == "claude":  # what a user sets for a model gateway; the key is the stand-in's
        env |= client_env(f"http://127.0.0.1:{MODEL_PORT}")
    started = time.monotonic()
    done = subprocess.run(
        [PYINFRA, "inventory.py", "deploy.py", "-y", *plan.host_data(scenarios_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"the deploy failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return time.monotonic() - started


def start_model(host: Host, script: dict[str, Any]) -> None:
    """The Messages API stand-in on the host, playing the day's scenarios for the real claude."""
    host.put((ROOT / "tests" / "support" / "messages_standin.py").read_text(), MODEL_STANDIN)
    host.put(json.dumps(script), "/root/day-plays.json")
    started = host.sh(
        f"pkill -f '^python3 {MODEL_STANDIN} ' ; setsid -f python3 {MODEL_STANDIN} --port {MODEL_PORT} "
        "--script /root/day-plays.json --log /root/messages-standin.log </dev/null >/root/messages.err 2>&1"
    )
    if started.returncode != 0:
        raise SystemExit(f"the Messages API stand-in did not start: {started.stderr.strip()}")


def start_standin(host: Host) -> None:
    host.put((ROOT / "tests" / "support" / "telegram_standin.py").read_text(), STANDIN)
    started = host.sh(
        f"pgrep -f '^python3 {STANDIN} --port {STANDIN_PORT} --token {BOT_TOKEN}' >/dev/null || "
        f"setsid -f python3 {STANDIN} --port {STANDIN_PORT} --token {BOT_TOKEN} </dev/null >/root/standin.log 2>&1"
    )
    if started.returncode != 0:
        raise SystemExit(f"the Bot API stand-in did not start: {started.stderr.strip()}")


# -- during the day --------------------------------------------------------------------


@dataclass
class Person:
    """Feeds tasks (HTTP trigger, bot) and steers from the bot: approves fair waiting branches, rejects hostile ones."""

    host: Host
    every_s: float
    actions: Counter[str] = field(default_factory=Counter)
    decided: dict[str, str] = field(default_factory=dict)  # branch -> approve | reject
    problems: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        step = 0
        while not stop.wait(self.every_s):
            step += 1
            try:
                self.act(step)
            except (subprocess.SubprocessError, OSError) as exc:
                self.problems.append(f"person step {step}: {exc}")

    def act(self, step: int) -> None:
        if step % 3 == 1:
            answer = self.host.http("POST", "/trigger/task", {"title": f"Tracker issue {step}: a helper for ranges"})
            self.actions["http_task" if answer.startswith("201") else "http_task_failed"] += 1
        if step % 4 == 2:
            self.host.say(f"/task From the phone {step}: a helper for spreads")
            self.actions["bot_task"] += 1
        if step % 5 == 3:  # a stranger's token: refused, nothing queued
            refused = self.host.http("POST", "/trigger/task", {"title": "not yours"}, token="x" * 32)
            code = refused.split(" ", 1)[0]
            self.actions[
                "refused_http" if code == "401" else "stranger_got_in" if code.startswith("2") else "http_error"
            ] += 1
        if step % 7 == 4:
            self.host.say("how many changes landed today?")  # not a command: bot improve learns from it
            self.actions["free_text"] += 1
        if step % 2 == 0:
            self.review()

    def review(self) -> None:
        listing = self.host.say("/queue")
        if "Review queue" not in listing:  # a notice (alert, landing) arrived first: ask once more
            listing = self.host.say("/queue")
        self.actions["queue"] += 1
        for branch in re.findall(r"^\d+\. (\S+) \(waits for you\)", listing, re.M):
            if branch in self.decided:
                continue
            session = branch.split("/")[1] if branch.count("/") >= 2 else ""
            if session == HOSTILE_SESSION:
                self.host.say(f"/reject {branch} it changes how the tests run")
                self.decided[branch] = "reject"
            else:
                self.host.say(f"/approve {branch}")
                self.decided[branch] = "approve"
            self.actions[self.decided[branch]] += 1


@dataclass
class Sampler:
    """Resident memory of the long-lived processes, every few seconds: role -> MB samples."""

    host: Host
    every_s: float = 5.0
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    misses: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            try:
                self.sample()
            except (subprocess.SubprocessError, OSError) as exc:
                self.misses.append(str(exc)[:200])

    def sample(self) -> dict[str, float]:
        out = self.host.sh(f"ps -u {layout.USER} -o rss=,args=", timeout=30).stdout
        now: dict[str, float] = {}
        for line in out.splitlines():
            rss, _, args = line.strip().partition(" ")
            match = LONG_LIVED.search(args.strip())
            if match and rss.isdigit() and not args.lstrip().startswith(("/bin/sh", "sh ", "bash", "tmux", "flock")):
                role = match.group(2) or match.group(1)
                now[role] = max(now.get(role, 0.0), int(rss) / 1024)
        for role, mb in now.items():
            self.samples[role].append(mb)
        return now


@contextmanager
def running(*workers: Callable[[threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    threads = [threading.Thread(target=w, args=(stop,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)


# -- the end of the day ----------------------------------------------------------------

BUSY = re.compile(r"factoryctl (cycle|review|standup|doctor|bot improve)\b|factory-scripted-agent|bwrap")


def stop_the_day(host: Host, say: Callable[[str], None]) -> list[str]:
    """Cron off, every session paused, running jobs let to end; then one last review. What went wrong."""
    host.sh(f"mv -f {layout.CRON_FILE} /root/factory.cron.day")
    host.factoryctl("pause", "--reason", "the end of the compressed day")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        busy = [p for p in host.sh(f"ps -u {layout.USER} -o args=").stdout.splitlines() if BUSY.search(p)]
        status = host.factoryctl("status", "--json")
        try:
            busy += [s["name"] for s in json.loads(status.stdout)["sessions"] if s["state"] == "cycle"]
        except (ValueError, KeyError, TypeError):
            busy.append(f"status unreadable: {status.stderr.strip()[:200]}")
        if not busy:
            break
        time.sleep(3)
    else:
        return [f"jobs still running 10 min after the day stopped: {busy[:5]}"]
    review = host.factoryctl("review", timeout=900)
    say(f"last review: exit {review.returncode}: {review.stdout.strip().splitlines()[-1:] or review.stderr[-300:]}")
    return [] if review.returncode == 0 else [f"the last review exited {review.returncode}: {review.stderr[-300:]}"]


def events_of(text: str) -> list[Event]:
    return [e for line in text.splitlines() if line and (e := Event.from_line(line.encode())) is not None]


@dataclass
class Day:
    """What the day produced: its figures and the broken promises (`problems`, empty when all held)."""

    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def p95(values: list[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1) if ordered else None


def host_now(host: Host) -> str:
    """The host's clock, as the experiment log writes it."""
    return host.sh("date -u +%Y-%m-%dT%H:%M:%S.%3NZ").stdout.strip()


def collect(host: Host, plan: Plan, window: tuple[str, str], sampler: Sampler, person: Person, guarded: str) -> Day:
    """The figures of the events within `window` (the day, as the host's clock saw it: not the
    deploy, not the end-of-day wait), and the invariants over everything the host holds."""
    day = Day()
    home = layout.FACTORY_HOME
    every = events_of(host.read(f"{layout.STATE_DIR}/experiment-log.jsonl"))
    events = [e for e in every if window[0] <= e.ts <= window[1]]
    start, end = parse_ts(window[0]), parse_ts(window[1])
    wall_s = (end - start).total_seconds()
    sim_hours = wall_s * plan.compression / 3600
    totals = metrics.outcomes(events, since=start, until=end).as_dict()
    cycles = [e for e in events if e.type == "ralph_cycle"]
    reviews = [e for e in events if e.type == "cto_review"]
    calls = Counter(str(e.data.get("purpose")) for e in events if e.type == "agent_call")
    landed = [e for e in reviews if e.data.get("verdict") == "approve" and e.data.get("landed")]
    reviewed = {str(e.data.get("branch")) for e in reviews if e.data.get("verdict") in ("approve", "reject")}
    finished = [c for c in cycles if c.data.get("verdict") in ("pushed", "discarded", "failed")]
    failed_calls = [c for c in finished if c.data.get("verdict") == "failed"]
    pushed_at = {
        str(c.data["branch"]): parse_ts(c.ts)
        for c in cycles
        if c.data.get("verdict") == "pushed" and c.data.get("branch")
    }
    push_to_land = [
        (parse_ts(e.ts) - pushed_at[b]).total_seconds() for e in landed if (b := str(e.data.get("branch"))) in pushed_at
    ]
    n = len(landed)
    # The seed design: two full runs of every check per cycle, one per branch at review.
    checks = len(plan.checks())
    seed_runs = checks * (2 * len(finished) + len(reviewed))
    seed_runs_low = checks * (2 * len(finished) - len(failed_calls) + len(reviewed))  # a failed call: one run
    alerts = [e for e in events if e.type == "alert"]
    rss = {
        role: {"peak_mb": round(max(v), 1), "final_mb": round(v[-1], 1)} for role, v in sorted(sampler.samples.items())
    }
    worktrees_mb = host.sh(f"du -sm {home}/worktrees | cut -f1").stdout.strip()
    logs = host.sh(
        f"grep -c {shlex.quote(TRACEBACK)} {home}/logs/*.log {layout.HOME}/.pm2/logs/*.log 2>/dev/null | grep -v ':0$'"
    ).stdout.split()
    panes = tmux_panes(host, plan)
    pane_tracebacks = [s for s, text in panes.items() if TRACEBACK in text]
    day.check(all(panes.values()), f"unreadable tmux panes: {[s for s, text in panes.items() if not text]}")
    error_lines = host.sh(f"grep -h '^Error: ' {home}/logs/*.log 2>/dev/null").stdout.splitlines()
    restarts = pm2_restarts(host)
    day.figures = {
        "wall_minutes": round(wall_s / 60, 1),
        "compression": plan.compression,
        "simulated_hours": round(sim_hours, 2),
        "sessions": plan.sessions,
        "cycles": len(cycles),
        "verdicts": dict(Counter(str(c.data.get("verdict")) for c in cycles)),
        "discarded_by_reason": totals["discarded_by_reason"],
        "failed_by_outcome": totals["failed_by_outcome"],
        "discard_rate": totals["discard_rate"],
        "landed": n,
        "rejected_by_reason": totals["rejected_by_reason"],
        "awaiting_person": sum(1 for e in reviews if e.data.get("verdict") == "awaiting_human"),
        "person": dict(person.actions),
        "cycles_per_simulated_day_per_session": round(len(cycles) / plan.sessions / (sim_hours / 24), 1),
        "landed_per_simulated_day": round(n / (sim_hours / 24), 1),
        "model_calls": dict(calls),
        "model_calls_per_landed": round(sum(calls.values()) / n, 2) if n else None,
        "check_runs": totals["check_runs"],
        "check_runs_per_landed": round(totals["check_runs"] / n, 2) if n else None,
        "seed_check_runs": seed_runs,
        "seed_check_runs_per_landed": round(seed_runs / n, 2) if n else None,
        "seed_check_runs_per_landed_low": round(seed_runs_low / n, 2) if n else None,
        "push_to_land_review_intervals": round(statistics.median(push_to_land) / plan.review_s, 2)
        if push_to_land
        else None,
        "push_to_land_s": {
            "median": round(statistics.median(push_to_land), 1) if push_to_land else None,
            "p95": p95(push_to_land),
        },
        "rss": rss,
        "worktrees_mb": int(worktrees_mb) if worktrees_mb.isdigit() else None,
        "alerts": len(alerts),
        "alerts_per_simulated_hour": round(len(alerts) / sim_hours, 2),
        "alert_keys": dict(Counter(str(e.data.get("key")).split(":")[0] for e in alerts)),
        "crash_loop_alerts": sum(1 for e in alerts if e.session == CRASHING_SESSION),
        "crash_loop_alert_texts": [
            f"{e.ts[11:19]} {e.data.get('message')}" for e in alerts if e.session == CRASHING_SESSION
        ],
        "alert_texts": [f"{e.ts[11:19]} {e.session or '-'}: {e.data.get('message')}" for e in alerts],
        "tracebacks": logs + [f"pane {s}" for s in pane_tracebacks],
        "error_lines": len(error_lines),
        "pm2_restarts": restarts,
        "spend_usd": totals["spend_usd"],
    }
    day.figures["error_samples"] = error_lines[:5]
    landed_all = [
        e for e in every if e.type == "cto_review" and e.data.get("verdict") == "approve" and e.data.get("landed")
    ]
    invariants(day, host, every, landed_all, guarded, person)
    day.check(not sampler.misses, f"the memory sampler missed: {sampler.misses[:2]}")
    return day


def tmux_panes(host: Host, plan: Plan) -> dict[str, str]:
    """What each loop printed (its tmux pane's history); a pane that cannot be read says so."""
    socket = tmux_socket(Path(layout.FACTORY_HOME))  # a socket name: tmux -L
    out = {}
    for i in range(1, plan.sessions + 1):
        argv = ["runuser", "-u", layout.USER, "--", "tmux", "-L", socket, "capture-pane", "-p", "-S", "-5000",
                "-t", f"=factory-s{i}:"]  # fmt: skip
        done = host.sh(shlex.join(argv))
        out[f"s{i}"] = done.stdout if done.returncode == 0 and done.stdout.strip() else ""
    return out


def pm2_restarts(host: Host) -> dict[str, int]:
    done = host.sh(f"runuser -u {layout.USER} -- env PM2_HOME={layout.PM2_HOME} pm2 jlist 2>/dev/null")
    try:
        apps = json.loads(done.stdout.strip().splitlines()[-1])
        return {a["name"]: int(a.get("pm2_env", {}).get("restart_time", 0)) for a in apps}
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return {f"pm2 jlist unreadable: {done.stdout[-200:]!r}": -1}


def guarded_files(host: Host) -> str:
    return host.sh(f"sha256sum {layout.CONFIG_FILE} {layout.SECRETS_FILE} {layout.GATE_KEY}").stdout


def invariants(day: Day, host: Host, events: list[Event], landed: list[Event], guarded: str, person: Person) -> None:
    origin, home = layout.SAMPLE_ORIGIN, layout.FACTORY_HOME
    check = day.check
    # main passes its checks, as the factory runs them
    main_checks = host.as_factory(
        f"rm -rf /tmp/day-main && git clone -q -b main {origin} /tmp/day-main && cd /tmp/day-main "
        "&& python3 -m unittest discover -s tests -t . -q"
    )
    outcome = (main_checks.stdout + main_checks.stderr).strip()
    check(main_checks.returncode == 0, f"main fails its checks: {outcome[-500:]}")
    # nothing hostile on main or in the state
    marked = host.as_factory(
        f"git -C {origin} grep -l {MARK} main -- ; git -C {origin} log main --format=%B | grep -c {MARK}"
    )
    check(marked.stdout.strip() in ("0", ""), f"hostile content on main: {marked.stdout.strip()}")
    on_main = host.as_factory(f"git -C {origin} ls-tree -r --name-only main").stdout.split()
    check(not any(p == "conftest.py" or p.startswith(".github/") for p in on_main), f"hostile files on main: {on_main}")
    pwned = host.sh(
        f"grep -rl --exclude-dir=demo --exclude-dir=cache '{MARK} pwned' {home} {layout.HOME}/.ssh 2>/dev/null"
    ).stdout  # (cache: the agents' own HOME, where claude keeps its transcripts)
    check(not pwned.strip(), f"the hostile agent wrote into: {pwned.split()}")
    check(guarded_files(host) == guarded, "factory.toml, secrets.env or gate.key changed during the day")
    leaks = host.sh(f"cat {LEAK_DIR}/leak-*.txt 2>/dev/null").stdout
    check(bool(leaks), "the hostile probe never ran (no leak file)")
    # (what it "wrote" under FACTORY_HOME went to the sandbox's own tmpfs: the real files are compared above)
    for secret in (HTTP_TOKEN, BOT_TOKEN, "push exit 0"):
        check(secret.split(":")[-1] not in leaks, f"the hostile probe got through: {secret[:12]}... in its leak file")
    hostile_landed = [e.data.get("branch") for e in landed if e.session == HOSTILE_SESSION]
    day.figures["hostile_landed"] = len(hostile_landed)
    check(not hostile_landed, f"hostile branches landed: {hostile_landed}")
    # no process outlived its job (the day is stopped: only PM2, tmux and the loops remain)
    procs = host.sh(f"ps -u {layout.USER} -o pid=,ppid=,args=").stdout.splitlines()
    stray = [p for p in procs if BUSY.search(p) or "factory-day-daemon" in p or "sleep 3600" in p]
    orphans = [p for p in procs if p.split()[1] == "1" and not re.search(r"PM2|tmux", p)]
    day.figures["stray_processes"] = len(stray) + len(orphans)
    check(not stray and not orphans, f"processes outlived their jobs: {(stray + orphans)[:5]}")
    # every landed change is a merge commit the gate tested, or one in a batch whose tip it tested
    untraced = untraced_landings(host, landed)
    count = host.as_factory(f"git -C {origin} rev-list --count --first-parent main").stdout.strip()
    day.figures["commits_on_main"] = int(count) - 1 if count.isdigit() else None  # not the initial commit
    check(not untraced, f"changes on main that trace to no tested merge commit: {untraced[:3]}")
    # logs
    check(not day.figures["tracebacks"], f"tracebacks in: {day.figures['tracebacks']}")
    # standup and doctor files, citing real branches
    known = {str(e.data.get("branch")) for e in events if e.data.get("branch")}
    for folder in ("standups", "doctor"):
        text = host.sh(f"cat {home}/{folder}/*.md 2>/dev/null").stdout
        cited = set(re.findall(r"\bbrl/s\d+/[\w.-]+", text))
        day.figures[f"{folder}_files"] = int(
            host.sh(f"ls {home}/{folder}/*.md 2>/dev/null | wc -l").stdout.strip() or 0
        )
        check(bool(text), f"no {folder} file")
        check(not cited - known, f"{folder} cites branches that never existed: {sorted(cited - known)[:3]}")
        day.figures[f"{folder}_branches_cited"] = len(cited)
    check(
        day.figures["doctor_branches_cited"] + day.figures["standups_branches_cited"] > 0,
        "neither the standup nor the doctor cites a branch",
    )
    # one set of figures: the status page, the bot's /status and `factoryctl report`
    agree(day, host)
    check(not person.problems, f"the person's feed failed: {person.problems[:3]}")
    check(person.actions["stranger_got_in"] == 0, "a stranger's token queued a task")
    failed = {k: person.actions[k] for k in ("http_task_failed", "http_error") if person.actions[k]}
    check(not failed, f"the HTTP trigger failed the person: {failed}")


def held(data: Mapping[str, Any]) -> bool:
    """A landing's checks ran on its commit and were no worse than main's before it."""
    before, after = data.get("before") or {}, data.get("after") or {}
    return bool(after) and all(
        int(counts.get(k) or 0) <= int((before.get(name) or {}).get(k) or 0)
        for name, counts in after.items() for k in ("errors", "failed")
    ) and not any(counts.get("crashed") for counts in after.values())  # fmt: skip


def untraced_landings(host: Host, landed: list[Event]) -> list[str]:
    """Main's first-parent history against the gate's landings: what does not trace to a tested merge commit.

    Each landing names its branch and the commit main moved to (`landed`), which its checks ran
    on (`tested`). A batch lands several branches in one move: their merge commits sit below the
    tested tip, above the tip main had before. Anything else on main (a commit no landing
    accounts for, or a landing whose merge commit is not in its segment) is reported.
    """
    log = host.as_factory(f"git -C {layout.SAMPLE_ORIGIN} log --first-parent --format='%H %s' main").stdout
    chain = [line.split(" ", 1) for line in log.splitlines()][:-1]  # newest first, without the initial commit
    index = {sha: i for i, (sha, _) in enumerate(chain)}
    merged = {m.group(1): i for i, (_, subject) in enumerate(chain) if (m := re.match(r"Merge (\S+)", subject))}
    tips = {str(e.data["landed"]) for e in landed if e.data.get("tested") == e.data.get("landed") and held(e.data)}
    problems: list[str] = []
    if chain and chain[0][0] not in tips:
        problems.append(f"main's tip {chain[0][0][:10]} was never tested")
    covered: set[int] = set()
    for e in landed:
        branch, tip = str(e.data.get("branch")), str(e.data.get("landed"))
        at, top = merged.get(branch), index.get(tip)
        if tip not in tips or at is None or top is None or at < top:
            problems.append(f"{branch}: landed as {tip[:10]}, not a tested merge above its own")
            continue
        if any(t in tips for t in (chain[i][0] for i in range(top + 1, at + 1))):
            problems.append(f"{branch}: its merge commit lies below another tested tip than its own")
        covered.add(at)
    problems += [f"{chain[i][0][:10]} {chain[i][1][:60]}: no landing" for i in range(len(chain)) if i not in covered]
    return problems


SUMMARY = re.compile(r"today: (\d+) cycles?, (\d+) landed, discard rate (-|\d+ %)")


def agree(day: Day, host: Host) -> None:
    """The status page, the bot's /status and `factoryctl report` (since UTC midnight, as "today") agree."""
    midnight = host_now(host)[:10] + "T00:00:00Z"
    done = host.factoryctl("report", "--since", midnight, "--json")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        day.check(False, f"factoryctl report failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return
    rate = "-" if report["discard_rate"] is None else f"{report['discard_rate'] * 100:.0f} %"
    want = (str(report["cycles"]), str(report["landed"]), rate)
    page = SUMMARY.search(host.http("GET", "/"))
    said = None
    for _ in range(3):  # a notice (a landing, an alert) may arrive before the reply
        said = SUMMARY.search(host.say("/status"))
        if said:
            break
    got = {"page": page.groups() if page else None, "bot": said.groups() if said else None}
    day.figures["surfaces"] = {"report": want, **got}
    for surface, figures in got.items():
        day.check(figures == want, f"the {surface} says {figures}, factoryctl report {want}")


# -- the whole day ---------------------------------------------------------------------


def run_day(sandbox: SandboxHost, plan: Plan, workdir: Path, say: Callable[[str], None] = print) -> Day:
    host = Host(sandbox)
    agent, reviewer = scenarios()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "agent.json").write_text(json.dumps(agent, indent=1))
    (workdir / "reviewer.json").write_text(json.dumps(reviewer, indent=1))
    start_standin(host)
    host.sh(f"mkdir -p {LEAK_DIR} && chmod 1777 {LEAK_DIR}")
    if plan.agent == "claude":
        start_model(host, plays_from(agent, reviewer))
    say(f"deploying {plan.sessions} sessions with compressed schedules ({plan.compression:.0f}x) ...")
    say(f"deployed in {deploy(host, plan, workdir):.0f} s; the day runs {plan.minutes:g} min")
    guarded = guarded_files(host)
    person, sampler = Person(host, plan.feed_every_s), Sampler(host)
    started, first = time.monotonic(), host_now(host)
    with running(person.run, sampler.run):
        while (left := plan.minutes * 60 - (time.monotonic() - started)) > 0:
            time.sleep(min(60.0, left))
            status = host.factoryctl("status").stdout.splitlines()
            say(f"  {(time.monotonic() - started) / 60:4.1f} min: {next((s for s in status if 'today:' in s), '?')}")
    last = host_now(host)
    sampler.sample()  # the final resident memory, before the day stops
    say("stopping the day (cron off, sessions paused, jobs let to end, one last review) ...")
    stopped = stop_the_day(host, say)
    day = collect(host, plan, (first, last), sampler, person, guarded)
    day.problems += stopped
    return day


def show(day: Day, plan: Plan) -> None:
    f = day.figures
    seed_cycles = [round(x / 5, 1) for x in SEED["cycles_per_day_5_sessions"]]
    rows = [
        ("wall time / simulated", f"{f['wall_minutes']} min / {f['simulated_hours']} h ({f['compression']:.0f}x)"),
        ("cycles (verdicts)", f"{f['cycles']} {f['verdicts']}"),
        (
            "cycles per session per simulated day",
            f"{f['cycles_per_simulated_day_per_session']} (seed: {seed_cycles[0]}-{seed_cycles[1]})",
        ),
        (
            "landed",
            f"{f['landed']} ({f['landed_per_simulated_day']} per simulated day, "
            f"{f['landed_per_simulated_day'] * 5 / f['sessions']:.1f} per 5 sessions; seed: 15-25 per day)",
        ),
        ("discard rate", f"{f['discard_rate']} {f['discarded_by_reason']} failed {f['failed_by_outcome']}"),
        ("rejected at the gate", f"{f['rejected_by_reason']}; person: {f['person']}"),
        ("model calls", f"{sum(f['model_calls'].values())} {f['model_calls']}"),
        ("model calls per landed change", f"{f['model_calls_per_landed']}"),
        (
            "check runs per landed change",
            f"{f['check_runs_per_landed']} ({f['check_runs']} runs); seed design on the "
            f"same events: {f['seed_check_runs_per_landed']} "
            f"({f['seed_check_runs_per_landed_low']} if a failed call skips a run)",
        ),
        (
            "push to land",
            f"median {f['push_to_land_s']['median']} s, p95 {f['push_to_land_s']['p95']} s "
            f"(median {f['push_to_land_review_intervals']} review intervals)",
        ),
        (
            "resident memory (peak/final MB)",
            ", ".join(f"{r} {v['peak_mb']}/{v['final_mb']}" for r, v in f["rss"].items()),
        ),
        ("worktrees on disk", f"{f['worktrees_mb']} MB"),
        (
            "alerts",
            f"{f['alerts']} ({f['alerts_per_simulated_hour']} per simulated hour) {f['alert_keys']}; "
            f"crash-looping agent: {f['crash_loop_alerts']}",
        ),
        (
            "errors",
            f"tracebacks {len(f['tracebacks'])}, 'Error:' lines {f['error_lines']}, PM2 restarts {f['pm2_restarts']}",
        ),
        ("hostile changes landed", f"{f.get('hostile_landed')}"),
        ("surfaces agree", f"{f.get('surfaces')}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("\nwhat must hold: " + ("all held" if not day.problems else f"{len(day.problems)} broken"))
    for p in day.problems:
        print(f"  BROKEN: {p}")


def targets(day: Day) -> list[str]:
    """The issue's targets that were missed (the figures are printed either way)."""
    f, missed = day.figures, []
    for role, v in f["rss"].items():
        limit = target_mb(role)
        if v["peak_mb"] > limit:
            missed.append(f"{role} RSS {v['peak_mb']} MB > {limit}")
    if f["alerts_per_simulated_hour"] > 6:
        missed.append(f"{f['alerts_per_simulated_hour']} alerts per simulated hour > 6")
    if f["crash_loop_alerts"] != 1:
        missed.append(f"the crash-looping agent was alerted {f['crash_loop_alerts']} times, not once")
    if f["check_runs_per_landed"] and f["check_runs_per_landed"] > f["seed_check_runs_per_landed"] / 2:
        missed.append("check runs per landed change above half the seed design's")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time of the day (default 10)")
    parser.add_argument("--json", type=Path, help="also write the figures and problems here")
    parser.add_argument(
        "--agent",
        choices=("claude", "scripted"),
        default="claude",
        help="the real Claude Code against the Messages API stand-in (default), or the scripted agent",
    )
    parser.add_argument("--name", default="day", help="the sandbox host's name (default: day)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the sandbox host up to look around (paused, its crontab in /root/factory.cron.day)",
    )
    parser.add_argument(
        "--hosts",
        type=int,
        choices=(1, 3),
        default=1,
        help="3: the fleet's day (bench/fleet_day.py): one host against a gate and two workers, the scripted agent",
    )
    parser.add_argument("--sessions", type=int, default=3, help="with --hosts 3: sessions per host (default 3)")
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        print(f"Error: {reason}", file=sys.stderr)
        return 2
    if args.hosts == 3:
        from fleet_day import main_fleet

        return main_fleet(args.minutes, args.sessions, args.json)
    plan = Plan(minutes=args.minutes, agent=args.agent)
    state = subprocess.run([sys.executable, "-m", "sandbox", "status", "--name", args.name, "--json"], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout  # fmt: skip
    if '"absent"' not in state:
        fix = f".venv/bin/python -m sandbox down --name {args.name}, or pick another --name"
        print(f"Error: a sandbox host {args.name!r} exists: a day starts on a fresh one ({fix})", file=sys.stderr)
        return 2
    with sandbox_up(args.name, keep=args.keep) as sandbox:
        day = run_day(sandbox, plan, Path("/tmp") / f"factory-day-{args.name}")
    show(day, plan)
    missed = targets(day)
    for m in missed:
        print(f"  TARGET MISSED: {m}")
    if args.json:
        args.json.write_text(json.dumps({"figures": day.figures, "problems": day.problems, "missed": missed}, indent=2))
    return 1 if day.problems else 0


if __name__ == "__main__":
    sys.exit(main())
