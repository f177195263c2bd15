"""One error family: the CLI prints any SandboxError as one `Error: ...` line."""

from __future__ import annotations


class SandboxError(Exception):
    """An expected failure, told in one line that says what to do."""

    exit_code = 1


class NotRoot(SandboxError):
    """The command needs root (mounts, namespaces, nftables)."""


class ToolMissing(SandboxError):
    """An external program is not installed; the message names its apt package."""


class AddressInUse(SandboxError):
    """The sandbox's subnet is already used by an interface on this machine."""


class AlreadyUp(SandboxError):
    """`up` on a sandbox whose machine is running."""


class NotUp(SandboxError):
    """`ssh` or `reboot` on a sandbox that is not running."""


class BootFailed(SandboxError):
    """The machine did not come up (process died, or sshd never answered in time)."""


class LeftBehind(SandboxError):
    """`down` could not remove everything (mounts, namespaces, rules, processes)."""
