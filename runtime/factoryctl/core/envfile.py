"""The deploy's 0600 secrets file, read by `factoryctl` itself: a job a person starts by hand on the
server (`factoryctl review`) gets the model's credential and settings as cron and PM2 jobs do
through `factory-run`.

Only names the factory knows (secrets and model settings) are taken, only those not already in
the environment, and only from a regular file of the user running it that no one else can read.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable, MutableMapping
from pathlib import Path


def read_env_file(text: str) -> dict[str, str]:
    """`KEY='value'` lines (sh quoting, as the deploy writes them); comments and bad lines skipped."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        name, eq, rest = line.partition("=")
        if not eq or line.startswith("#") or not name.isidentifier():
            continue
        try:
            words = shlex.split(rest)
        except ValueError:
            continue
        found[name] = words[0] if len(words) == 1 else ""
    return found


def fill_environ(path: Path, names: Iterable[str], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set the `names` the environment lacks from the file at `path`; return those set."""
    env = os.environ if environ is None else environ
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return []
        values = read_env_file(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []
    added = [n for n in names if n in values and values[n] and not env.get(n)]
    for name in added:
        env[name] = values[name]
    return added
