"""The agent adapter: one door to the coding agent and the reviewer model.

Any executable can be the agent (DESIGN.md "Agent interface"): the prompt on stdin,
cwd the working directory, one JSON object on stdout shaped like Claude Code's
`--output-format json` result, or Claude Code's `stream-json` lines ending in that result
(read as they arrive: what the agent is doing now reaches the cycle's progress). A call
succeeds only on exit 0 with subtype "success" and is_error false; everything else is a
typed failure with a short reason. Tools the CLI denied (`permission_denials`) are kept:
a call whose every tool call was denied is its own outcome, `denied`.
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
    DENIED = "denied"  # every tool call was refused: the permission mode, not the agent, stopped it
    OVERLOADED = "overloaded"  # the model service answered 529/429 (after the CLI's own retries)
    API_ERROR = "api_error"  # any other error status from the model service
    STREAM_CUT = "stream_cut"  # the model's answer broke off (a connection cut mid-message)


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
    denied: tuple[str, ...] = ()  # tools the CLI refused (permission_denials), in order, once each
    tool_calls: int | None = None  # tool calls seen in a stream (None: the output said nothing of them)

    @property
    def ok(self) -> bool:
        return self.outcome is CallOutcome.SUCCESS


MAX_ACTIVITY = 120  # characters of one "what the agent is doing" line


def describe_tool(name: str, tool_input: Mapping[str, Any], cwd: Path | None = None) -> str:
    """One short line for a tool call: "Edit src/calc.py", "Bash: pytest -q"."""
    name = _printable(name)[:40] or "tool"
    if name == "Bash":
        return _clip(f"Bash: {_printable(str(tool_input.get('command', '')))}")
    for key in ("file_path", "notebook_path", "path", "pattern", "url", "description"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            if key == "file_path" and cwd is not None and value.startswith(str(cwd) + "/"):
                value = value[len(str(cwd)) + 1 :]
            return _clip(f"{name} {_printable(value)}")
    return name


def _printable(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ACTIVITY else text[: MAX_ACTIVITY - 1] + "…"


class StreamReader:
    """Claude Code's `stream-json` read line by line as it is printed: the result, the tool calls,
    and each tool call told to `on_activity` as it happens. Other output is ignored."""

    def __init__(self, cwd: Path | None = None, on_activity: Callable[[str], None] | None = None) -> None:
        self.cwd = cwd
        self.on_activity = on_activity
        self.result: dict[str, Any] | None = None
        self.tool_calls = 0
        self.streamed = False  # saw at least one message of a stream (not only a result)

    def line(self, text: str) -> None:
        obj = json_dict(text)
        if obj is None:
            return
        kind = obj.get("type")
        if kind == "result":
            self.result = obj
        elif kind == "assistant":
            self.streamed = True
            message = obj.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    self.tool_calls += 1
                    tool_input = block.get("input")
                    activity = describe_tool(str(block.get("name", "")), as_mapping(tool_input), self.cwd)
                    if self.on_activity is not None:
                        self.on_activity(activity)


def as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json_object(stdout: str) -> dict[str, Any] | None:
    """The result object: the last line that is a `"type": "result"` object, else the whole output
    or its last line that is a JSON object with a type (an agent printing one object)."""
    text = stdout.strip()
    if not text:
        return None
    lines = text.splitlines()
    for candidate in reversed(lines):
        if _RESULT_LINE.match(candidate.strip()) and (obj := json_dict(candidate)) is not None:
            return obj
    if len(lines) > 1 and _SYSTEM_LINE.match(lines[0].strip()):
        return None  # a stream that never reached its result: cut short
    for candidate in [text, *reversed(lines)]:
        obj = json_dict(candidate)
        if obj is not None and "type" in obj:
            return obj
    return None


_RESULT_LINE = re.compile(r'\{\s*"type"\s*:\s*"result"')
_SYSTEM_LINE = re.compile(r'\{\s*"type"\s*:\s*"system"')


def json_dict(text: str) -> dict[str, Any] | None:
    """`text` as a JSON object, or None (not JSON, not an object, nested too deep)."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = jsonio.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


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


MAX_DENIED = 20  # tool names kept from permission_denials


def parse_denials(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the tools the CLI refused, in order, once each."""
    raw = obj.get("permission_denials")
    names = (
        [_printable(str(d.get("tool_name", "")))[:40] for d in raw if isinstance(d, Mapping)]
        if isinstance(raw, list)
        else []
    )
    return tuple(dict.fromkeys(n for n in names if n))[:MAX_DENIED]


_ROOT_REFUSED = "cannot be used with root/sudo privileges"
_CUT = re.compile(r"empty or malformed response|connection error|terminated|socket hang up|premature close", re.I)


def parse_result(done: Completed, timeout_s: float, stream: StreamReader | None = None) -> AgentResult:
    """Classify a finished agent process (pure: facts in, verdict out)."""
    base: dict[str, Any] = {"exit_code": done.returncode, "duration_s": round(done.duration_s, 3)}
    if stream is not None and stream.streamed:
        base["tool_calls"] = stream.tool_calls
    if done.timed_out:
        return AgentResult(CallOutcome.TIMEOUT, f"no answer within {timeout_s:g}s; killed with its children", **base)
    obj = stream.result if stream is not None and stream.result is not None else _json_object(done.stdout)
    if obj is None:
        printed = done.tail(200)
        if _ROOT_REFUSED in printed:
            return AgentResult(
                CallOutcome.EXIT_NONZERO,
                "Claude Code refuses to skip permissions as root outside a "
                "sandbox: run the factory as an unprivileged user, or keep sandbox.enabled = true "
                "(the sandbox tells it so with IS_SANDBOX=1)",
                **base,
            )
        if stream is not None and stream.streamed:
            return AgentResult(
                CallOutcome.STREAM_CUT,
                f"the agent's stream ended without a result (exit "
                f"{done.returncode}): {_one_line(done.stderr[-200:]) or 'no message'}",
                **base,
            )
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
    base["denied"] = denied = parse_denials(obj)
    subtype = str(obj.get("subtype") or "")
    is_error = obj.get("is_error") is True
    status = obj.get("api_error_status")
    if subtype == "success" and not is_error and done.returncode == 0:
        calls = base.get("tool_calls")
        if denied and calls is not None and calls <= len(obj.get("permission_denials") or []):
            return AgentResult(
                CallOutcome.DENIED,
                f"the CLI refused every tool call ({', '.join(denied)}); "
                "agent.command needs a permission mode, e.g. --permission-mode bypassPermissions "
                "inside the sandbox",
                **base,
            )
        return AgentResult(CallOutcome.SUCCESS, "ok", **base)
    if status in (401, 403) or _NOT_LOGGED_IN.search(text):
        return AgentResult(CallOutcome.NOT_LOGGED_IN, f"not logged in: {_one_line(text)}", **base)
    if status in (429, 529):
        return AgentResult(
            CallOutcome.OVERLOADED, f"the model service is overloaded ({status}): {_one_line(text)}", **base
        )
    if isinstance(status, int) and not isinstance(status, bool):
        return AgentResult(CallOutcome.API_ERROR, f"the model service answered {status}: {_one_line(text)}", **base)
    if is_error and text.startswith("API Error") and _CUT.search(text):
        return AgentResult(CallOutcome.STREAM_CUT, f"the model's answer broke off: {_one_line(text)}", **base)
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
        self,
        prompt: str,
        *,
        cwd: Path,
        session: str | None,
        purpose: str,
        launch: Launch | None = None,
        on_activity: Callable[[str], None] | None = None,
    ) -> AgentResult:
        """One call: the prompt on stdin, in `cwd`; sandboxed (and with launch's environment) when given.

        `on_activity` hears each tool call as the agent makes it ("Edit src/calc.py"), when the
        agent streams (Claude Code's `--output-format stream-json`).
        """
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
        stream = StreamReader(cwd, on_activity)
        try:
            done = self.runner(argv, cwd=cwd, input=prompt, timeout=self.spec.timeout_s, env=env, on_line=stream.line)
            result = parse_result(done, self.spec.timeout_s, stream)
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
                **({"denied": list(result.denied)} if result.denied else {}),
                **({"tool_calls": result.tool_calls} if result.tool_calls is not None else {}),
            },
        )
