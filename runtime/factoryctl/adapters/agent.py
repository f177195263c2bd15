"""The agent adapter: one door to the coding agent and the reviewer model.

Any executable can be the agent (DESIGN.md "Agent interface"): the prompt on stdin,
cwd the working directory, one JSON object on stdout shaped like Claude Code's
`--output-format json` result. A call succeeds only on exit 0 with subtype "success"
and is_error false; everything else is a typed failure with a short reason.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from factoryctl.adapters.runner import Completed, run
from factoryctl.adapters.sandbox import Launch
from factoryctl.core import jsonio
from factoryctl.core.config import AgentSection
from factoryctl.core.defaults import WITHHELD_ENV
from factoryctl.core.errors import ToolMissing
from factoryctl.core.records import EventSink

_NOT_LOGGED_IN = re.compile(r"not logged in|please run /login|invalid api key|authentication_error", re.I)


def agent_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for code the agent wrote or runs: without the bot and HTTP tokens."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k not in WITHHELD_ENV}


class CallOutcome(StrEnum):
    SUCCESS = "success"
    TIMEOUT = "timeout"
    NOT_LOGGED_IN = "not_logged_in"
    MALFORMED = "malformed_output"
    EXIT_NONZERO = "exit_nonzero"
    MAX_TURNS = "max_turns"
    BUDGET = "budget"
    ERROR = "error"
    MISSING = "missing_command"


@dataclass(frozen=True)
class AgentResult:
    outcome: CallOutcome
    reason: str
    text: str = ""
    cost_usd: float = 0.0
    num_turns: int = 0
    session_id: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome is CallOutcome.SUCCESS


def _json_object(stdout: str) -> dict[str, Any] | None:
    """The result object: the whole output, or else its last line that is a JSON object."""
    text = stdout.strip()
    if not text:
        return None
    candidates = [text, *reversed(text.splitlines())]
    for candidate in candidates:
        candidate = candidate.strip()
        if not candidate.startswith("{"):
            continue
        try:
            obj = jsonio.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict) and "type" in obj:
            return obj
    return None


MAX_CALL_USD = 1000.0  # no single call costs more: a bigger figure is a broken answer, not spend
MAX_TURNS = 100_000


def _number(value: object, kind: type[float] | type[int], limit: float) -> Any:
    """A finite, non-negative number at most `limit`; absent is 0; anything else is None (malformed)."""
    if value is None:
        return kind(0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= limit:
        return None
    return kind(value)


MAX_TOKENS = 10**9  # per call; a larger count is garbage, not usage
INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _tokens(value: object) -> int:
    """One token count from the agent's output: a finite, non-negative, bounded integer, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0 or value > MAX_TOKENS:
        return 0
    return int(value)


def parse_usage(obj: Mapping[str, Any]) -> tuple[int, int]:
    """(input, output) tokens from Claude Code's `usage` object; input counts cache reads and writes too."""
    usage = obj.get("usage")
    if not isinstance(usage, Mapping):
        return 0, 0
    return min(sum(_tokens(usage.get(k)) for k in INPUT_KEYS), MAX_TOKENS), _tokens(usage.get("output_tokens"))


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_result(done: Completed, timeout_s: float) -> AgentResult:
    """Classify a finished agent process (pure: facts in, verdict out)."""
    base: dict[str, Any] = {"exit_code": done.returncode, "duration_s": round(done.duration_s, 3)}
    if done.timed_out:
        return AgentResult(CallOutcome.TIMEOUT, f"no answer within {timeout_s:g}s; killed with its children", **base)
    obj = _json_object(done.stdout)
    if obj is None:
        printed = done.tail(200)
        if _NOT_LOGGED_IN.search(printed):
            return AgentResult(CallOutcome.NOT_LOGGED_IN, f"not logged in: {_one_line(printed)}", **base)
        if done.returncode != 0:
            return AgentResult(
                CallOutcome.EXIT_NONZERO, f"exited {done.returncode}: {_one_line(printed) or 'no output'}", **base
            )
        return AgentResult(CallOutcome.MALFORMED, f"no JSON result in output: {_one_line(printed) or 'empty'}", **base)
    raw_text = obj.get("result")
    text = raw_text if isinstance(raw_text, str) else ""
    cost = _number(obj.get("total_cost_usd"), float, MAX_CALL_USD)
    turns = _number(obj.get("num_turns"), int, MAX_TURNS)
    if cost is None or turns is None:
        bad = "total_cost_usd" if cost is None else "num_turns"
        shown = _one_line(repr(obj.get(bad)), 40)
        return AgentResult(CallOutcome.MALFORMED, f"{bad} is not a finite number in range: {shown}", **base)
    base.update(text=text, cost_usd=cost, num_turns=turns, session_id=str(obj.get("session_id") or "")[:200])
    base["input_tokens"], base["output_tokens"] = parse_usage(obj)
    subtype = str(obj.get("subtype") or "")
    is_error = obj.get("is_error") is True
    if subtype == "success" and not is_error and done.returncode == 0:
        return AgentResult(CallOutcome.SUCCESS, "ok", **base)
    if _NOT_LOGGED_IN.search(text):
        return AgentResult(CallOutcome.NOT_LOGGED_IN, f"not logged in: {_one_line(text)}", **base)
    if subtype == "error_max_turns":
        return AgentResult(CallOutcome.MAX_TURNS, f"stopped at the turn limit after {base['num_turns']} turns", **base)
    if "budget" in subtype:
        return AgentResult(CallOutcome.BUDGET, f"stopped at the spending limit ({subtype})", **base)
    if done.returncode != 0:
        return AgentResult(CallOutcome.EXIT_NONZERO, f"exited {done.returncode}: {_one_line(text) or subtype}", **base)
    if subtype != "success" or is_error:
        detail = _one_line(text) or subtype or "is_error"
        return AgentResult(CallOutcome.ERROR, f"agent reported an error ({subtype or 'no subtype'}): {detail}", **base)
    return AgentResult(CallOutcome.MALFORMED, "result object without a success subtype", **base)  # pragma: no cover


class Agent:
    """Calls one configured agent command and records every call as an `agent_call` event."""

    def __init__(
        self,
        spec: AgentSection,
        log: EventSink,
        *,
        runner: Callable[..., Completed] = run,
        environ: Mapping[str, str] | None = None,
        launch_for: Callable[[Path], Launch] | None = None,
    ) -> None:
        self.spec = spec
        self.log = log
        self.runner = runner
        self.env = agent_env(environ)
        # How a call in a folder starts when the caller names no launch (the sandbox, from the context).
        self.launch_for = launch_for

    def call(
        self, prompt: str, *, cwd: Path, session: str | None, purpose: str, launch: Launch | None = None
    ) -> AgentResult:
        """One call: the prompt on stdin, in `cwd`; sandboxed (and with launch's environment) when given."""
        argv, env = list(self.spec.command), self.env
        if launch is None and self.launch_for is not None:
            launch = self.launch_for(cwd)
        if launch is not None:
            if shutil.which(argv[0], path=launch.env.get("PATH")) is None:  # inside bwrap it would be bwrap's error
                result = AgentResult(
                    CallOutcome.MISSING, f"{argv[0]}: command not found (is it installed and on PATH?)"
                )
                self._record(result, session, purpose)
                return result
            argv, env = launch.argv(argv, cwd=cwd), dict(launch.env)
        try:
            done = self.runner(argv, cwd=cwd, input=prompt, timeout=self.spec.timeout_s, env=env)
            result = parse_result(done, self.spec.timeout_s)
        except ToolMissing as exc:
            result = AgentResult(CallOutcome.MISSING, str(exc))
        self._record(result, session, purpose)
        return result

    def _record(self, result: AgentResult, session: str | None, purpose: str) -> None:
        self.log.append(
            "agent_call",
            session=session,
            data={
                "purpose": purpose,
                "outcome": result.outcome.value,
                "reason": result.reason,
                "cost_usd": result.cost_usd,
                "num_turns": result.num_turns,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "duration_s": result.duration_s,
                "exit_code": result.exit_code,
                "agent": self.spec.command[0],
            },
        )
