"""Headless Chromium (Debian's package) driven over the DevTools protocol, for the page tests."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

from tests.serving import free_port


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One tab; `call` sends a DevTools command and returns its result."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        got = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return got.get("result", {}).get("value")

    def open(self, url: str, timeout: float = 20) -> None:
        self.call("Page.navigate", url=url)
        self.wait_loaded(url.split("#")[0], timeout)

    def wait_loaded(self, prefix: str = "", timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.evaluate("document.readyState + ' ' + location.href")
            if state and state.startswith("complete") and prefix in state:
                return
            time.sleep(0.1)
        raise TimeoutError(f"page did not load: {prefix}")

    def wait_until(self, expression: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(expression):
                    return
            except RuntimeError:
                pass  # between two documents
            time.sleep(0.1)
        raise TimeoutError(f"never true: {expression}")

    def screen(self, width: int, height: int, mobile: bool = False) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)  # fmt: skip

    def screenshot(self, path: Path) -> None:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        width = int(self.evaluate("document.documentElement.clientWidth"))
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def browser(profile: Path) -> Iterator[Browser]:
    exe = chromium()
    assert exe is not None
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                    pages = [t for t in json.load(resp) if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.2)
        ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        try:
            yield Browser(ws)
        finally:
            ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def shoot(url: str, token: str, out: Path, profile: Path, width: int = 1280) -> None:
    """Sign in to the status page at `url` with `token` and save a full-page PNG (the demo uses it)."""
    with browser(profile) as tab:
        tab.screen(width, 900)
        tab.open(url.rstrip("/") + "/")
        tab.evaluate(f"document.querySelector('#token').value = {token!r}; document.querySelector('form').submit()")
        tab.wait_until("document.title == 'factory status' && document.readyState == 'complete'")
        tab.screenshot(out)


if __name__ == "__main__":  # python -m tests.browser URL OUT.png (the token from FACTORY_HTTP_TOKEN)
    import os
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        shoot(sys.argv[1], os.environ["FACTORY_HTTP_TOKEN"], Path(sys.argv[2]), Path(tmp))
    print(f"saved {sys.argv[2]}")
