"""A local stand-in for the Anthropic Messages API: the real `claude` CLI runs against it offline.

    python -m tests.support.messages_standin --port 8082 --script FILE   (serves; prints its URL)

Point the CLI at it with `ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`, any `ANTHROPIC_API_KEY`
and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`. It speaks what the CLI uses (POST
/v1/messages, streamed as server-sent events or as one JSON message; count_tokens) on
127.0.0.1, stdlib only, and plays a scripted model. The script (JSON, or a dict in-process):

    {"rotate": false,                      # true: among matching plays, the least used serves next
     "plays": [{
        "match": "text",                   # chosen by the conversation's first user message
        "unless": ["text"],                # ... never for one that also holds one of these
        "once": false,                     # true: serves one conversation, then the next match
        "steps": [                         # one per model turn; the CLI runs each tool and asks again
           {"tool": "Write", "input": {"file_path": "a.py", "content": "..."}},
           {"tool": "Bash", "input": {"command": "pytest -q", "description": "run the tests"}},
           {"text": "what I did"}],        # the closing answer (end_turn)
        "forever": {"tool": "Bash", "input": {...}},   # or: a model that never stops calling tools
        "error": 529,                      # or: every request answered with this HTTP error (529, 401, 500)
        "cut": true,                       # or: the stream stops mid-message and the connection closes
        "delay_s": 0.0,                    # before each answer: a slow model
        "usage": {"input_tokens": 1000, "output_tokens": 200}}]}   # per turn

A conversation is the first user message's text: its turn is the number of assistant
messages in the request, so the stand-in keeps no state but which play serves which
conversation. Strings in a step may hold `{n}` (the conversation's number, from 1, unique on
this server), `{session}` (sN from the prompt's "You are sN,") and `{cwd_name}` (the name of the
CLI's working directory, from its system prompt). Requests that match no play (the CLI's own
side requests) get a short text.
Every request is kept (`requests`, and one JSON line each in `--log FILE`) for tests to read.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ERRORS = {
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "rate limited"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
DEFAULT_USAGE = {"input_tokens": 1000, "output_tokens": 200}


class ScriptError(ValueError):
    pass


def check_script(script: object) -> dict[str, Any]:
    """The script, validated: one clear error for a play the stand-in cannot play."""
    if not isinstance(script, dict) or not isinstance(script.get("plays"), list):
        raise ScriptError("a script is an object with a 'plays' list")
    for i, play in enumerate(script["plays"]):
        if not isinstance(play, dict):
            raise ScriptError(f"plays[{i}]: must be an object")
        kinds = [k for k in ("steps", "forever", "error", "cut") if k in play]
        if len(kinds) != 1:
            raise ScriptError(f"plays[{i}]: needs exactly one of steps, forever, error, cut (has {kinds})")
        for j, step in enumerate(play.get("steps", [])):
            if not isinstance(step, dict) or len({"tool", "text"} & set(step)) != 1:
                raise ScriptError(f"plays[{i}].steps[{j}]: needs 'tool' (with 'input') or 'text'")
        unless = play.get("unless", [])
        if not isinstance(unless, list) or not all(isinstance(u, str) and u for u in unless):
            raise ScriptError(f"plays[{i}]: unless must be a list of non-empty strings")
        if "error" in play and play["error"] not in ERRORS:
            raise ScriptError(f"plays[{i}]: error must be one of {sorted(ERRORS)}")
    return script


def prompt_of(body: dict[str, Any]) -> str:
    """The text of the first user message (the prompt the CLI was given)."""
    for message in body.get("messages") or []:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")
    return ""


def turn_of(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")


@dataclass
class Model:
    """The scripted model: which play serves which conversation."""

    script: dict[str, Any]
    assigned: dict[str, tuple[int, int]] = field(default_factory=dict)  # conversation -> (play, its number)
    used: dict[int, int] = field(default_factory=dict)  # play -> conversations it served
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    log: Path | None = None

    def play_for(self, prompt: str) -> tuple[dict[str, Any], int] | None:
        """The play serving this conversation and the conversation's number (None: no play matches)."""
        key = hashlib.sha256(prompt.encode()).hexdigest()
        with self.lock:
            if key in self.assigned:
                index, number = self.assigned[key]
                return self.script["plays"][index], number
            plays = self.script["plays"]
            matching = [i for i, play in enumerate(plays) if play.get("match", "") in prompt
                        and not any(u in prompt for u in play.get("unless", []))
                        and not (play.get("once") and self.used.get(i))]  # fmt: skip
            if not matching:
                return None
            if self.script.get("rotate"):
                matching.sort(key=lambda i: self.used.get(i, 0))  # stable: ties keep the script's order
            index = matching[0]
            self.used[index] = self.used.get(index, 0) + 1
            number = len(self.assigned) + 1
            self.assigned[key] = (index, number)
            return plays[index], number

    def record(self, body: dict[str, Any], path: str) -> None:
        entry = {"path": path, "turn": turn_of(body), "prompt": prompt_of(body),
                 "system": _system_text(body)[:20000], "model": body.get("model"),
                 "tools": [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)],
                 "last": _last_user_blocks(body)}  # fmt: skip
        with self.lock:
            self.requests.append(entry)
            if self.log is not None:
                with self.log.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry) + "\n")

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):024d}"


_SESSION = re.compile(r"You are (s\d+),")
_CWD = re.compile(r"(?:Primary working directory|Working directory): *(\S+)")


def _session(prompt: str) -> str:
    found = _SESSION.search(prompt)
    return found.group(1) if found else "agent"


def _cwd_name(body: dict[str, Any]) -> str:
    found = _CWD.search(_system_text(body) + "\n" + prompt_of(body))
    return found.group(1).rstrip("/").rsplit("/", 1)[-1] if found else ""


def fill(value: Any, names: dict[str, str]) -> Any:
    """`value` with {n}, {session} and {cwd_name} filled in every string (other braces kept)."""
    if isinstance(value, str):
        for name, text in names.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, str):
        return system
    return "\n".join(b.get("text", "") for b in system or [] if isinstance(b, dict))


def _last_user_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the CLI sent back last (what its tools did), shortened. (The CLI may end the
    messages with a `system` one, e.g. its budget note: the last user message is the one.)"""
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    if len(users) < 2 or not isinstance(users[-1].get("content"), list):
        return []
    out = []
    for block in users[-1]["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            content = block.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            out.append({"is_error": bool(block.get("is_error")), "content": text[:2000]})
    return out


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._json(200, {})

    def do_GET(self) -> None:
        self._json(200, {"data": [], "has_more": False})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._error(400, "invalid_request_error", "body is not JSON")
            return
        path = self.path.split("?", 1)[0]
        if path.endswith("/count_tokens"):
            self._json(200, {"input_tokens": max(1, len(json.dumps(body)) // 4)})
            return
        if not path.endswith("/v1/messages"):
            self._error(404, "not_found_error", f"no route {path}")
            return
        model = self.server.model
        model.record(body, path)
        prompt = prompt_of(body)
        found = model.play_for(prompt)
        if found is None:
            self._answer(body, {"text": "ok"}, {"input_tokens": 10, "output_tokens": 2})
            return
        play, number = found
        time.sleep(float(play.get("delay_s", 0)))
        usage = {**DEFAULT_USAGE, **play.get("usage", {})}
        names = {"n": str(number), "session": _session(prompt), "cwd_name": _cwd_name(body) or _session(prompt)}
        if "error" in play:
            kind, message = ERRORS[play["error"]]
            self._error(play["error"], kind, message)
        elif "cut" in play:
            self._cut(body)
        elif "forever" in play:
            self._answer(body, fill(play["forever"], names), usage)
        else:
            steps = play["steps"]
            self._answer(body, fill(steps[min(turn_of(body), len(steps) - 1)], names), usage)

    # -- answers -----------------------------------------------------------------
    def _answer(self, body: dict[str, Any], step: dict[str, Any], usage: dict[str, int]) -> None:
        model = self.server.model
        if "tool" in step:
            block = {"type": "tool_use", "id": model.next_id("toolu"), "name": step["tool"],
                     "input": step.get("input", {})}  # fmt: skip
            stop = "tool_use"
        else:
            block = {"type": "text", "text": step["text"]}
            stop = "end_turn"
        message = {"id": model.next_id("msg"), "type": "message", "role": "assistant",
                   "model": body.get("model") or "claude-sonnet-4-5", "content": [block],
                   "stop_reason": stop, "stop_sequence": None, "usage": usage}  # fmt: skip
        if not body.get("stream"):
            self._json(200, message)
            return
        self._start_stream()
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        self._event("message_start", {"type": "message_start", "message": start})
        if block["type"] == "tool_use":
            self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {**block, "input": {}}})  # fmt: skip
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}})  # fmt: skip
            delta = {"type": "text_delta", "text": block["text"]}
        self._event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": usage["output_tokens"]}})  # fmt: skip
        self._event("message_stop", {"type": "message_stop"})
        self._end_stream()

    def _cut(self, body: dict[str, Any]) -> None:
        """The stream starts, says half a sentence and the connection drops."""
        self._start_stream()
        message = {"id": self.server.model.next_id("msg"), "type": "message", "role": "assistant",
                   "model": body.get("model") or "claude-sonnet-4-5", "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}  # fmt: skip
        self._event("message_start", {"type": "message_start", "message": message})
        self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})  # fmt: skip
        self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": "I will now"}})  # fmt: skip
        self.wfile.write(b"0\r\n")  # a chunk header with no end: the stream is broken, not finished
        self.wfile.flush()
        self.close_connection = True

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", self.server.model.next_id("req"))
        self.end_headers()

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _error(self, status: int, kind: str, message: str) -> None:
        self._json(status, {"type": "error", "error": {"type": kind, "message": message}})

    def _json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("request-id", "req_standin")
        self.end_headers()
        self.wfile.write(raw)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, script: dict[str, Any], log: Path | None = None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.model = Model(check_script(script), log=log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (the CLI closing a kept-alive connection) is no error of ours."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def play(self, script: dict[str, Any]) -> None:
        """A new script; conversations start afresh."""
        model = self.model
        with model.lock:
            model.script = check_script(script)
            model.assigned.clear()
            model.used.clear()

    def prompts(self) -> list[str]:
        """The first user message of each conversation, in order of their first request."""
        with self.model.lock:
            return list(dict.fromkeys(r["prompt"] for r in self.model.requests if r["turn"] == 0))

    def start(self) -> Server:
        threading.Thread(target=self.serve_forever, name="messages-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def client_env(url: str) -> dict[str, str]:
    """What the real CLI needs in its environment to talk to the stand-in, and nothing else."""
    return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-standin-0000",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "1"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, required=True, help="the plays, as JSON")
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    try:
        script = json.loads(args.script.read_text(encoding="utf-8"))
        server = Server(args.port, script, args.log)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"messages stand-in: {exc}\n")
    print(server.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
