"""Scripted-agent scenarios as plays for the Messages API stand-in: the same behaviour, the real CLI.

    python -m tests.support.plays AGENT.json [REVIEWER.json ...] > plays.json

A scenario call (runtime/factoryctl/scripted_agent.py) becomes a play the real `claude`
carries out with its own tools: `write` is a Read then a Write (Claude Code writes a file it
has read), `append`, `delete`, `run` and `commit` are Bash commands, `result` is the closing
text, and `sleep` a model that takes that long to answer (a hanging agent). What a model cannot
make the CLI do becomes the model-level failure nearest to it: an error subtype is an
overloaded service (529), garbage on stdout a stream cut mid-answer, any other non-zero exit
a server error (500). `{n}` and `{cwd_name}` keep their meaning.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path, PurePosixPath
from typing import Any

_EOF = "FACTORY_PLAY_EOF"


def _bash(command: str, description: str) -> dict[str, Any]:
    return {"tool": "Bash", "input": {"command": command, "description": description}}


def _heredoc(path: str, content: str, op: str) -> str:
    parent = str(PurePosixPath(path).parent)
    mkdir = f"mkdir -p {shlex.quote(parent)} && " if parent != "." else ""
    body = content if content.endswith("\n") else content + "\n"
    return f"{mkdir}cat {op} {shlex.quote(path)} <<'{_EOF}'\n{body}{_EOF}"


def steps_of(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for action in actions:
        if "write" in action:
            path = str(action["write"])
            content = str(action.get("content", ""))
            steps += [{"tool": "Read", "input": {"file_path": path}},
                      {"tool": "Write", "input": {"file_path": path, "content": content}}]  # fmt: skip
        elif "append" in action:
            steps.append(_bash(_heredoc(str(action["append"]), str(action.get("content", "")), ">>"), "append"))
        elif "delete" in action:
            steps.append(_bash(f"rm -rf -- {shlex.quote(str(action['delete']))}", "delete"))
        elif "run" in action:
            steps.append(_bash(shlex.join(str(a) for a in action["run"]), "run"))
        elif "commit" in action:
            steps.append(_bash(f"git add -A && git commit -qm {shlex.quote(str(action['commit']))}", "commit"))
    return steps


def play_of(call: dict[str, Any]) -> dict[str, Any]:
    play: dict[str, Any] = {"match": call.get("match", "")}
    exit_code = int(call.get("exit", 0) or 0)
    failed = call.get("is_error") is True or str(call.get("subtype", "success")) != "success"
    if call.get("stdout"):
        play["cut"] = True
    elif failed and exit_code:
        play["error"] = 529
    elif exit_code:
        play["error"] = 500
    else:
        actions = call.get("actions", [])
        steps = steps_of([a for a in actions if "sleep" not in a])
        play["steps"] = [*steps, {"text": str(call.get("result", "done"))}]
        waits = [float(a["sleep"]) for a in actions if "sleep" in a]
        if waits:  # an agent that hangs: the model never answers (Claude Code cuts long sleeps short itself)
            play["delay_s"] = sum(waits)
        usage = call.get("usage")
        if isinstance(usage, dict):  # the scenario's figures are per call; the stand-in's per turn
            turns = len(play["steps"])
            play["usage"] = {k: max(1, int(v) // turns) for k, v in usage.items() if isinstance(v, int | float)}
    return play


# The first words of every cycle prompt (prompts/cycle.md): an agent call with no match of its own
# gets them, so it never answers a review or a standup. The doctor's prompt quotes the cycle
# prompt whole (it may propose a new one): an agent's play is never for a prompt that holds what
# the others' plays match.
CYCLE_PROMPT = "one of several AI engineers working in parallel"


def plays_from(agent: dict[str, Any], *others: dict[str, Any]) -> dict[str, Any]:
    """One script for the stand-in from the agent's scenario and others (the reviewer's): plays taken
    in turn among those that match, as the scripted agent takes its calls."""
    theirs = [play_of(call) for scenario in others for call in scenario["calls"]]
    unless = sorted({play["match"] for play in theirs if play["match"]})
    plays = [play_of({"match": CYCLE_PROMPT, **{k: v for k, v in call.items() if v or k != "match"}})
             for call in agent["calls"]]  # fmt: skip
    if unless:
        plays = [{**play, "unless": unless} for play in plays]
    return {"rotate": True, "plays": [*plays, *theirs]}


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m tests.support.plays SCENARIO.json [...] > plays.json", file=sys.stderr)
        return 2
    print(json.dumps(plays_from(*(json.loads(p.read_text(encoding="utf-8")) for p in paths)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
