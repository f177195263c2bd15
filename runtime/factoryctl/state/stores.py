"""JSON state files: locked read-modify-write, written whole and atomically replaced.

A reader sees the old content or the new, never a mix, even if a writer is SIGKILLed
mid-write: the new content goes to a temp file in the same folder, is fsynced, and
then `os.replace`d over the old one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from factoryctl.core import jsonio
from factoryctl.core.defaults import PRIVATE_FILE_MODE
from factoryctl.core.errors import FactoryError
from factoryctl.state.locks import exclusive


def atomic_write_text(path: Path, text: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace `path` with `text` in one step; the folder is fsynced too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class JsonStore:
    """One JSON document on disk with a locked update() and a lock-free read()."""

    def __init__(self, path: Path, default: Callable[[], Any]) -> None:
        self.path = path
        self.default = default

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def read(self) -> Any:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self.default()
        try:
            data = jsonio.loads(text)
        except ValueError as exc:
            raise FactoryError(f"{self.path} is not valid JSON ({exc}); fix it or move it aside") from None
        expected = type(self.default())
        if not isinstance(data, expected):
            raise FactoryError(
                f"{self.path} holds a JSON {type(data).__name__} where a {expected.__name__} belongs; "
                "fix it or move it aside"
            )
        return data

    @contextlib.contextmanager
    def update(self) -> Iterator[Any]:
        """Yield the document under an exclusive lock; write it back if the block succeeds."""
        with exclusive(self.lock_path):
            data = self.read()
            yield data
            atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def write(self, data: Any) -> None:
        """Replace the document whole (atomically: no lock needed)."""
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
