"""The one error family: the CLI turns any FactoryError into `Error: ...` and exit 1."""

from __future__ import annotations


class FactoryError(Exception):
    """An expected failure, told to the user in one line that says what to fix."""

    exit_code = 1


class ConfigError(FactoryError):
    """factory.toml (or another input file) is malformed or holds a wrong value."""


class UsageError(FactoryError):
    """A command was given input it cannot use (empty title, unknown session, ...)."""

    exit_code = 2


class NotFound(FactoryError):
    """A named thing (task, branch, event) does not exist."""


class AlreadyRunning(FactoryError):
    """An exclusive job lock is held by another process."""

    exit_code = 0


class ToolMissing(FactoryError):
    """An external program the command needs is not installed."""


class BadRecord(FactoryError):
    """A record in a state file does not have the shape it must (names the field)."""


class StateUnreachable(FactoryError):
    """The shared state (the PostgreSQL database) cannot be reached: nothing can be recorded."""

    def __init__(self, message: str, summary: str = "") -> None:
        super().__init__(message)
        self.summary = summary or message  # the same words however it failed (a waiting loop says it once)
