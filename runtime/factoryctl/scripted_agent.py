"""A scripted stand-in for the agent CLI: same interface, behaviour from a scenario file.

    factory-scripted-agent --scenario FILE [--save-prompt FILE] [claude-style flags, ignored]

It reads the prompt on stdin, runs in its working directory, takes the next call of
the scenario whose `match` (if any) occurs in the prompt, carries out its actions and
prints a Claude Code style JSON result. The scenario (JSON):

    {"repeat": false,              # when every call is used: start over (true) or fail
     "calls": [{
        "match": "text",           # optional: only for prompts containing this
        "actions": [{"write": "src/a.ts", "content": "..."}, {"append": "f", "content": "..."},
                    {"delete": "f"}, {"run": ["argv", "..."]}, {"commit": "message"},
                    {"sleep": 2.5}],
        "result": "summary text", "cost_usd": 0.05, "num_turns": 3,
        "subtype": "success", "is_error": false,
        "usage": {"input_tokens": 1200, "output_tokens": 300},   # optional: printed as is
        "exit": 0,                 # exit code
        "stdout": "raw text",      # printed instead of the JSON result (malformed output)
        "stderr": "raw text"}]}

Text in actions may hold `{n}` (the call number) and `{cwd_name}` (the folder's name).
Calls used so far are kept in FILE.state (under a lock: parallel agents share it).
The whole scenario is validated before anything is done; a bad one exits 2 with one line.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ACTIONS = {"write", "append", "delete", "run", "commit", "sleep"}
CALL_KEYS = {
    "match", "actions", "result", "cost_usd", "num_turns", "subtype", "is_error", "exit", "stdout", "stderr", "usage",
}  # fmt: skip


class ScenarioError(Exception):
    pass


def load_scenario(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario {path}: no such file") from None
    except ValueError as exc:
        raise ScenarioError(f"scenario {path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("calls"), list) or not data["calls"]:
        raise ScenarioError(f"scenario {path}: needs an object with a non-empty 'calls' list")
    for i, call in enumerate(data["calls"]):
        _check_call(path, i, call)
    return data


def _check_call(path: Path, i: int, call: object) -> None:
    where = f"scenario {path}: calls[{i}]"
    if not isinstance(call, dict):
        raise ScenarioError(f"{where}: must be an object")
    unknown = set(call) - CALL_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(CALL_KEYS)}")
    if "usage" in call and not isinstance(call["usage"], dict):
        raise ScenarioError(f'{where}: \'usage\' must be an object like {{"input_tokens": 10, "output_tokens": 5}}')
    for j, action in enumerate(call.get("actions", [])):
        kinds = set(action) & ACTIONS if isinstance(action, dict) else set()
        if len(kinds) != 1:
            raise ScenarioError(f"{where}.actions[{j}]: needs exactly one of {sorted(ACTIONS)}")
        (kind,) = kinds
        value = action[kind]
        if kind in {"write", "append", "delete"}:
            _inside(Path("."), str(value), f"{where}.actions[{j}]")
        if kind == "run" and not (isinstance(value, list) and value and all(isinstance(a, str) for a in value)):
            raise ScenarioError(f"{where}.actions[{j}]: 'run' takes an argv list of strings")
        if kind == "sleep" and not isinstance(value, int | float):
            raise ScenarioError(f"{where}.actions[{j}]: 'sleep' takes seconds")


def _inside(root: Path, rel: str, where: str) -> Path:
    target = (root / rel).resolve()
    if Path(rel).is_absolute() or not target.is_relative_to(root.resolve()):
        raise ScenarioError(f"{where}: path {rel!r} must stay inside the working directory")
    return target


def next_call(path: Path, data: dict[str, Any], prompt: str) -> tuple[int, dict[str, Any]]:
    """Pick (and mark used) the first unused call that matches the prompt."""
    state = path.with_name(path.name + ".state")
    with open(state, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        used: dict[str, Any] = json.loads(fh.read() or '{"used": [], "n": 0}')
        calls = data["calls"]

        def candidates() -> list[int]:
            return [
                i for i, c in enumerate(calls)
                if i not in used["used"] and str(c.get("match", "")) in prompt
            ]  # fmt: skip

        free = candidates()
        if not free and data.get("repeat"):
            matching = {i for i, c in enumerate(calls) if str(c.get("match", "")) in prompt}
            used["used"] = [i for i in used["used"] if i not in matching]
            free = candidates()
        if not free:
            raise ScenarioError(f"scenario {path}: no unused call matches this prompt")
        used["used"].append(free[0])
        used["n"] += 1
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(used))
        return used["n"], calls[free[0]]


def perform(call: dict[str, Any], cwd: Path, n: int) -> None:
    def fill(text: str) -> str:
        return text.replace("{n}", str(n)).replace("{cwd_name}", cwd.name)

    for action in call.get("actions", []):
        if "write" in action or "append" in action:
            rel = action.get("write", action.get("append"))
            target = _inside(cwd, fill(str(rel)), "action")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w" if "write" in action else "a", encoding="utf-8") as fh:
                fh.write(fill(str(action.get("content", ""))))
        elif "delete" in action:
            _inside(cwd, fill(str(action["delete"])), "action").unlink(missing_ok=True)
        elif "run" in action:
            subprocess.run([fill(a) for a in action["run"]], cwd=cwd, check=False)
        elif "commit" in action:
            ident = ["-c", "user.name=scripted-agent", "-c", "user.email=agent@factory.invalid"]
            subprocess.run(["git", "add", "-A"], cwd=cwd, check=False)
            subprocess.run(["git", *ident, "commit", "-q", "-m", fill(str(action["commit"]))], cwd=cwd, check=False)
        elif "sleep" in action:
            time.sleep(float(action["sleep"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="factory-scripted-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=os.environ.get("FACTORY_SCENARIO"))
    parser.add_argument("-p", "--print", action="store_true", help="ignored (Claude Code compatibility)")
    parser.add_argument("--save-prompt", metavar="FILE", help="also write the prompt received to FILE")
    parser.add_argument("--version", action="store_true")
    args, _ignored = parser.parse_known_args(argv)
    if args.version:
        print("factory-scripted-agent 1 (Claude Code compatible)")
        return 0
    if not args.scenario:
        print("factory-scripted-agent: no scenario (pass --scenario FILE or set FACTORY_SCENARIO)", file=sys.stderr)
        return 2
    try:
        path = Path(args.scenario)
        data = load_scenario(path)
        prompt = sys.stdin.read()
        if args.save_prompt:
            Path(args.save_prompt).write_text(prompt, encoding="utf-8")
        n, call = next_call(path, data, prompt)
        perform(call, Path.cwd(), n)
    except ScenarioError as exc:
        print(f"factory-scripted-agent: {exc}", file=sys.stderr)
        return 2
    if call.get("stderr"):
        print(call["stderr"], file=sys.stderr)
    if "stdout" in call:
        print(call["stdout"])
    else:
        subtype = call.get("subtype", "success")
        result: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": bool(call.get("is_error", subtype != "success")),
            "result": call.get("result", "done"),
            "total_cost_usd": call.get("cost_usd", 0.0),
            "num_turns": call.get("num_turns", 1),
            "duration_ms": 0,
            "session_id": str(uuid.uuid4()),
        }
        if "usage" in call:
            result["usage"] = call["usage"]
        print(json.dumps(result))
    return int(call.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
