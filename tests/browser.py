"""Headless Chromium (Debian's package) driven over the DevTools protocol, for the page tests."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
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
        # No scrollbar: a full-page capture lays the page out without one, so a width measured
        # with one (15 px less) would cut off the right edge of the page.
        self.call("Emulation.setScrollbarsHidden", hidden=True)

    def screenshot(self, path: Path) -> None:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        width = int(self.evaluate("Math.max(window.innerWidth, document.documentElement.scrollWidth)"))
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))


def group_members(pgid: int) -> list[psutil.Process]:
    """The live processes of process group `pgid` (zombies are gone already: only not yet reaped)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def _wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Stop Chromium and every process it started (its own process group), and wait for all of them.

    SIGTERM lets the browser close its profile; a process of the group still alive after `grace`
    (a renderer, the zygote, the crash handler: on a fresh machine Chromium is slow to quit) gets
    SIGTERM, then SIGKILL. Only then is its profile free to remove.
    """
    pgid = proc.pid  # start_new_session: the browser leads its own group
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        if _wait_gone(pgid, 0 if sig is signal.SIGTERM else 0.5):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        if _wait_gone(pgid, wait):
            break
    proc.wait(timeout=10)


def remove_tree(path: Path, tries: int = 20) -> None:
    """Remove the browser's scratch folder; a file that appears meanwhile (ENOTEMPTY) is retried, never fatal."""
    for _ in range(tries):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)
    sys.stderr.write(f"warning: could not remove the browser's folder {path}; remove it by hand\n")


@contextmanager
def browser(profile: Path | None = None, *, exe: Sequence[str] | None = None) -> Iterator[Browser]:
    """Headless Chromium with one tab; on exit every process it started has ended.

    Without `profile` it uses a temporary one of its own; that and Chromium's temporary files are
    removed afterwards. `exe` is the command that starts Chromium (default: the installed one).
    """
    command = list(exe) if exe else [chromium() or "chromium"]
    # One folder of our own for the profile and Chromium's temporary files (its TMPDIR), removed at the end.
    scratch = Path(tempfile.mkdtemp(prefix="factory-chromium-"))
    (scratch / "tmp").mkdir()
    profile = scratch / "profile" if profile is None else profile
    port = free_port()
    proc = subprocess.Popen(
        [*command, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "TMPDIR": str(scratch / "tmp")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # a fresh machine builds its font cache first
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
            with contextlib.suppress(Exception):  # ask first: a browser that closes itself flushes its profile
                ws.send(json.dumps({"id": 0, "method": "Browser.close"}))
            ws.close()
    finally:
        stop_group(proc)
        remove_tree(scratch)


def shoot(url: str, token: str, out: Path, profile: Path | None = None, width: int = 1280) -> None:
    """Sign in to the status page at `url` with `token` and save a full-page PNG (the demo uses it)."""
    with browser(profile) as tab:
        tab.screen(width, 900)
        tab.open(url.rstrip("/") + "/")
        tab.evaluate(f"document.querySelector('#token').value = {token!r}; document.querySelector('form').submit()")
        tab.wait_until("document.title == 'factory status' && document.readyState == 'complete'")
        tab.screenshot(out)


if __name__ == "__main__":  # python -m tests.browser URL OUT.png (the token from FACTORY_HTTP_TOKEN)
    shoot(sys.argv[1], os.environ["FACTORY_HTTP_TOKEN"], Path(sys.argv[2]))
    print(f"saved {sys.argv[2]}")
