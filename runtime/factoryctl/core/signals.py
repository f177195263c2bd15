"""SIGTERM and SIGINT: how long-running jobs stop cleanly."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(BaseException):
    """SIGTERM or SIGINT: finish cleanly. A BaseException so no `except Exception` eats it."""


@contextlib.contextmanager
def on_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """Route SIGTERM/SIGINT to `handler(signum)` for the block (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, lambda signum, frame: handler(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM/SIGINT raise StopRequested once; later ones are ignored while we clean up."""
    fired = False

    def handler(signum: int) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise StopRequested(signal.Signals(signum).name)

    with on_signals(handler):
        yield


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGTERM/SIGINT back while state is being settled; they arrive right after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
