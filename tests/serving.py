"""The HTTP app for a test: in this process through FastAPI's TestClient (`in_process`), or the real
`factoryctl serve` (uvicorn) on a free 127.0.0.1 port (`serving`) where the server itself is the point."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import stop_process, tool

TOKEN = "test-token-0123456789abcdef"
GITHUB_SECRET = "github-webhook-secret-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Asker:
    """Ask the app: `request` builds the body and headers (`json_body` encoded, the bearer token), `send` sends."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        token: str | None = TOKEN,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Reply:
        sent = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return self.send(method, path, body, sent)

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        raise NotImplementedError


@dataclass
class Server(Asker):
    """The real `factoryctl serve` (uvicorn), asked over HTTP."""

    url: str
    proc: subprocess.Popen[bytes]
    home: Path

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()})
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read(), {k.lower(): v for k, v in err.headers.items()})


@dataclass
class InProcess(Asker):
    """The app of `create_app` behind TestClient, asked like `Server` (no cookie is kept between requests)."""

    client: Any
    home: Path
    url: str = "http://127.0.0.1"

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        try:
            resp = self.client.request(method, path, content=body, headers=headers)
        finally:
            self.client.cookies.clear()
        return Reply(resp.status_code, resp.content, {k.lower(): v for k, v in resp.headers.items()})


def update_toml(home: Path, text: str) -> None:
    with open(home / "factory.toml", "a", encoding="utf-8") as fh:
        fh.write("\n" + text + "\n")


@contextmanager
def in_process(home: Path, *, github: bool = True) -> Iterator[InProcess]:
    """The serve app for this home in this process, its client at 127.0.0.1 (what `serve` builds, minus uvicorn)."""
    from fastapi.testclient import TestClient

    from factoryctl.jobs.context import Context
    from factoryctl.jobs.serve.app import create_app

    app = create_app(Context.load(home), token=TOKEN, github_secret=GITHUB_SECRET if github else "")
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as client:
        yield InProcess(client, home)


@contextmanager
def serving(home: Path, *, env: Mapping[str, str] | None = None, github: bool = True) -> Iterator[Server]:
    """`factoryctl serve` for this home on a free port; stopped with SIGTERM after the test."""
    port = free_port()
    update_toml(home, f'[http]\nbind = "127.0.0.1:{port}"')
    environ = {**os.environ, "FACTORY_HOME": str(home), "FACTORY_HTTP_TOKEN": TOKEN, **(env or {})}
    if github:
        environ["FACTORY_GITHUB_SECRET"] = GITHUB_SECRET
    log = open(home / "serve-test.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([tool("factoryctl"), "serve"], env=environ, stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, home)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}: {(home / 'serve-test.log').read_text()}")
            try:
                if server.request("GET", "/healthz", token=None).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield server
    finally:
        stop_process(proc, 15)
        log.close()
